/* fuzz/fuzz_torchzip.c: the zip reader and pickle machine on arbitrary bytes,
 * through an in-memory file (memfd), as both a state dict and a numpy array. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "core/safetensors.h"
#include "core/torchzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz", 0);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  rdt_st *st = rdt_torch_open_state_dict(path);
  for (int i = 0; st && i < rdt_st_count(st); i++) {
    const rdt_tensor *t = rdt_st_get(st, i);
    int64_t n = rdt_numel(t);
    if (n <= 0 || n > (1 << 20)) continue;
    float *out = malloc(sizeof *out * (size_t)n);
    rdt_st_to_f32(t, out);
    free(out);
  }
  rdt_st_close(st);
  rdt_tensor t;
  if (rdt_torch_load_numpy(path, &t) == 0) free(t.data);
  close(fd);
  return 0;
}
