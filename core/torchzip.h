/* core/torchzip.h: read torch.save zip archives without Python.
 *
 * A torch.save file is a zip (entries stored, not compressed) holding
 * ARCHIVE/data.pkl (a pickle, protocol 2) and ARCHIVE/data/N storages.
 * Two payloads matter here:
 *  - state dicts (pytorch_model.bin): an OrderedDict of name -> tensor rebuilt
 *    with torch._utils._rebuild_tensor_v2 over persistent-load storages;
 *  - pickled numpy arrays (LIBERO .pruned_init files), bytes inline in the pickle.
 */
#ifndef RDT_TORCHZIP_H
#define RDT_TORCHZIP_H

#include "core/tensor.h"
#include <stddef.h>

/* A zip archive read into memory (or mapped). */
typedef struct rdt_zip rdt_zip;
rdt_zip *rdt_zip_open(const char *path);
void rdt_zip_close(rdt_zip *z);
int rdt_zip_count(const rdt_zip *z);
const char *rdt_zip_name(const rdt_zip *z, int i);
/* Pointer to a stored (uncompressed) or inflated entry's bytes; NULL if absent. */
const void *rdt_zip_data(rdt_zip *z, const char *name, size_t *len);

/* Load a pickled numpy array from a torch zip (e.g. a .pruned_init file) into a
 * freshly malloc'd tensor (caller frees out->data).  -1 + rdt_error(). */
int rdt_torch_load_numpy(const char *path, rdt_tensor *out);

/* Used by rdt_st_open for torch zips; exposed for tests. */
struct rdt_st *rdt_torch_open_state_dict(const char *path);

#endif
