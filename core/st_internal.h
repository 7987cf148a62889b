/* core/st_internal.h: the tensor handle's insides, shared by safetensors.c
 * (safetensors files, shard indexes) and torchzip.c (torch zips).  Not for use
 * outside core/. */
#ifndef RDT_ST_INTERNAL_H
#define RDT_ST_INTERNAL_H

#include "core/safetensors.h"
#include "core/torchzip.h"

struct rdt_st {
  char *path;
  int count, cap;
  rdt_tensor *tensors;   /* names are owned (malloc'd) */
  int *by_name;          /* tensor indices sorted by name, for lookup */
  int nmeta;
  char **meta_keys, **meta_values;
  int nmaps;             /* mapped files backing the tensors */
  void **map_addr;
  size_t *map_len;
  int nzips;             /* zip archives backing the tensors */
  rdt_zip **zips;
};

/* An empty handle for path. */
rdt_st *rdt_st_new(const char *path);
/* Append a tensor (name copied; data referenced). */
void rdt_st_push(rdt_st *st, const char *name, rdt_dtype dtype, int ndim, const int64_t *shape,
                 void *data, size_t nbytes);
/* Add a metadata pair (copied); a key already present keeps its first value. */
void rdt_st_push_meta(rdt_st *st, const char *key, const char *value);
/* The handle keeps zip z open until it is closed. */
void rdt_st_keep_zip(rdt_st *st, rdt_zip *z);
/* Build the name index; -1 (message without the file name) on a duplicate name. */
int rdt_st_finish(rdt_st *st);

#endif
