/* core/safetensors.h: read (mmap) and write safetensors files.
 *
 * rdt_st_open accepts a .safetensors file, a sharded model.safetensors.index.json,
 * a folder holding either, or a torch zip (pytorch_model.bin: see torchzip.h);
 * all give the same read-only handle.  Headers are fully validated: size bound,
 * well-formed JSON, known dtypes, offsets inside the data section, no overlaps,
 * shape x dtype = byte length.  Writes are atomic (temp file, fsync, rename).
 */
#ifndef RDT_SAFETENSORS_H
#define RDT_SAFETENSORS_H

#include "core/tensor.h"

typedef struct rdt_st rdt_st;

/* Open a tensor file, shard index, folder or torch zip; NULL + rdt_error() on failure. */
rdt_st *rdt_st_open(const char *path);
void rdt_st_close(rdt_st *st);
/* Read a safetensors image held in memory (len bytes; referenced, not copied:
 * keep it alive while the handle is open).  name is used in messages. */
rdt_st *rdt_st_open_memory(const void *data, size_t len, const char *name);

/* The path that was opened (for messages). */
const char *rdt_st_path(const rdt_st *st);
/* Number of tensors; tensors in file order (shards in index order). */
int rdt_st_count(const rdt_st *st);
const rdt_tensor *rdt_st_get(const rdt_st *st, int i);
/* Lookup by name; NULL if absent (no error recorded). */
const rdt_tensor *rdt_st_find(const rdt_st *st, const char *name);
/* __metadata__ value for key, or NULL. */
const char *rdt_st_metadata(const rdt_st *st, const char *key);

/* Copy a tensor into dst as f32 (any numeric source dtype). */
void rdt_st_to_f32(const rdt_tensor *t, float *dst);

/* Parse a safetensors header (the JSON after the 8-byte length) against a data
 * section of data_len bytes.  Exposed for the fuzzer; 0 or -1. */
int rdt_st_check_header(const char *json, size_t json_len, size_t data_len);

/* ---- writing ---- */
typedef struct rdt_st_writer rdt_st_writer;

rdt_st_writer *rdt_st_writer_new(void);
/* Add a tensor; data is referenced (not copied) until save.  -1 on a duplicate name. */
int rdt_st_writer_add(rdt_st_writer *w, const char *name, rdt_dtype dtype,
                      int ndim, const int64_t *shape, const void *data);
/* Add a __metadata__ string entry. */
int rdt_st_writer_meta(rdt_st_writer *w, const char *key, const char *value);
/* Write atomically to path; -1 + rdt_error() on failure (the old file is kept). */
int rdt_st_writer_save(rdt_st_writer *w, const char *path);
void rdt_st_writer_free(rdt_st_writer *w);

#endif
