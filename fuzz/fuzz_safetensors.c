/* fuzz/fuzz_safetensors.c: the safetensors reader on arbitrary bytes.
 *
 * The input is a whole file image (length prefix, header, data), read with
 * rdt_st_open_memory; every tensor found is then converted to f32, which
 * touches each byte the header claims.  The same bytes are also given to
 * rdt_st_check_header as a bare header. */
#include <stdint.h>
#include <stdlib.h>
#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rdt_st_check_header((const char *)data, size, size);
  rdt_st *st = rdt_st_open_memory(data, size, "fuzz.safetensors");
  if (!st) return 0;
  for (int i = 0; i < rdt_st_count(st); i++) {
    const rdt_tensor *t = rdt_st_get(st, i);
    if (rdt_st_find(st, t->name) == NULL) abort();   /* every tensor is found by name */
    int64_t n = rdt_numel(t);
    if (n <= 0 || n > (1 << 20)) continue;
    float *out = malloc(sizeof *out * (size_t)n);
    rdt_st_to_f32(t, out);
    free(out);
  }
  rdt_st_metadata(st, "format");
  rdt_st_close(st);
  return 0;
}
