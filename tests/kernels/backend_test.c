/* tests/kernels/backend_test.c: opening backends, memory accounting,
 * transfers, dtypes, and a clean failure for CUDA where no GPU is usable. */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include <sched.h>
#include "kref.h"

static void t_open_cpu(void) {
  k_backend *b = k_open("cpu", 0);
  CHECK(b != NULL);
  if (!b) return;
  cpu_set_t set;
  CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK(k_threads(b) == CPU_COUNT(&set));   /* 0 = every core this process may use */
  CHECK(k_kind_of(b) == K_CPU);
  CHECK(strcmp(k_name(b), "cpu") == 0);
  CHECK(k_act_dtype(b) == RDT_F32);
  CHECK(k_act_size(b) == 4);
  CHECK(k_set_act_dtype(b, RDT_BF16) == -1);   /* CPU activations are F32 only */
  CHECK(strstr(rdt_error(), "bf16") || strstr(rdt_error(), "BF16"));
  CHECK(k_set_act_dtype(b, RDT_F32) == 0);
  k_sync(b);
  k_close(b);
  CHECK(k_open("cpu", -1) == NULL);
  CHECK(k_open("tpu", 1) == NULL);
  CHECK(strstr(rdt_error(), "tpu") != NULL);
}

static void t_memory(void) {
  k_backend *b = k_open("cpu", 2);
  CHECK(k_bytes_in_use(b) == 0);
  size_t sizes[] = {1, 3, 1000, 1 << 20};
  void *p[4];
  size_t total = 0;
  for (int i = 0; i < 4; i++) {
    p[i] = k_alloc(b, sizes[i]);
    total += sizes[i];
    CHECK(((uintptr_t)p[i] & 255) == 0);   /* 256-byte aligned */
    int nonzero = 0;
    for (size_t j = 0; j < sizes[i]; j++) nonzero += ((unsigned char *)p[i])[j] != 0;
    CHECK(nonzero == 0);   /* zero-filled */
    memset(p[i], 0xAB, sizes[i]);   /* the whole block is writable */
  }
  CHECK(k_bytes_in_use(b) == total);
  k_memset0(b, p[2], 1000);
  CHECK(((unsigned char *)p[2])[999] == 0);
  for (int i = 0; i < 4; i++) k_free(b, p[i]);
  CHECK(k_bytes_in_use(b) == 0);
  k_free(b, NULL);

  float host[5] = {1, 2, 3, 4, 5}, back[5] = {0};
  void *d = k_alloc(b, sizeof host), *e = k_alloc(b, sizeof host);
  k_upload_act(b, d, host, 5);
  k_copy(b, e, d, sizeof host);
  k_download_act(b, back, e, 5);
  CHECK(memcmp(host, back, sizeof host) == 0);
  CHECK(k_act_at(b, d, 3) == (char *)d + 12);
  float f[5];
  k_act_to_f32(b, f, d, 5);
  k_f32_to_act(b, e, f, 5);
  k_download(b, back, e, sizeof back);
  CHECK(memcmp(host, back, sizeof host) == 0);
  k_free(b, d);
  k_free(b, e);
  k_close(b);
}

/* Without a usable GPU, asking for CUDA fails with a message, never a crash. */
static void t_cuda_unavailable(void) {
  if (k_cuda_available()) {
    fprintf(stderr, "note: a CUDA device is present; the failure path is not exercised\n");
    return;
  }
  rdt_error_clear();
  k_backend *b = k_open("cuda", 0);
  CHECK(b == NULL);
  CHECK(strlen(rdt_error()) > 0);
  fprintf(stderr, "k_open(cuda): %s\n", rdt_error());
  b = k_open("cuda:1", 0);
  CHECK(b == NULL);
  if (b) k_close(b);
}

int main(void) {
  RUN(t_open_cpu);
  RUN(t_memory);
  RUN(t_cuda_unavailable);
  return test_done();
}
