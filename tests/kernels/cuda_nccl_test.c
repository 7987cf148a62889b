/* tests/kernels/cuda_nccl_test.c: the NCCL all-reduce path on one GPU.
 *
 * With one rank a sum or a mean is the identity, so the buffer must come back
 * bit for bit, whatever the bucket size; work queued on the backend's stream
 * before the all-reduce must be seen by it, and work queued after the wait
 * must see its result.  A communicator of two ranks whose second rank never
 * joins must fail with a timeout message instead of hanging, and bad ids and
 * ranks must be refused.  Exits 77 (skipped) when no CUDA device is visible.
 */
#include <time.h>
#include "test.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/cuda/comm_nccl.h"

static k_backend *G;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void t_one_rank(void) {
  char id[RDT_NCCL_ID_HEX];
  CHECK(rdt_nccl_new_id(id) == 0);
  CHECK(strlen(id) == RDT_NCCL_ID_HEX - 1);
  rdt_nccl *c = rdt_nccl_open(G, id, 1, 0, 60.0);
  CHECK_MSG(c != NULL, "rdt_nccl_open: %s", rdt_error());
  if (!c) return;
  CHECK(rdt_nccl_rank(c) == 0 && rdt_nccl_size(c) == 1);

  size_t n = 100003;
  float *h = rdt_malloc(n * sizeof(float)), *back = rdt_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = (float)((double)(i % 1000) / 7.0 - 50.0);
  float *d = k_alloc(G, n * sizeof(float));
  k_upload(G, d, h, n * sizeof(float));

  size_t buckets[] = {(size_t)1 << 24, 30000, 7};
  for (int i = 0; i < 3; i++) {
    rdt_nccl_set_bucket(c, buckets[i]);
    k_scale_f32(G, d, n, 2.0f); /* queued before: the all-reduce must see it */
    CHECK_MSG(rdt_nccl_allreduce(c, d, n, i % 2) == 0, "allreduce: %s", rdt_error());
    k_scale_f32(G, d, n, 0.5f); /* queued after the wait: must see the result */
    k_download(G, back, d, n * sizeof(float));
    CHECK_MSG(memcmp(back, h, n * sizeof(float)) == 0, "bucket %zu average %d: buffer changed", buckets[i], i % 2);
  }
  /* start, then wait separately, over two buffers */
  float *d2 = k_alloc(G, n * sizeof(float));
  k_copy(G, d2, d, n * sizeof(float));
  CHECK(rdt_nccl_allreduce_start(c, d, n / 2, 0) == 0);
  CHECK(rdt_nccl_allreduce_start(c, d2 + n / 2, n - n / 2, 1) == 0);
  CHECK(rdt_nccl_wait(c) == 0);
  CHECK(rdt_nccl_wait(c) == 0); /* nothing pending: returns at once */
  k_download(G, back, d2, n * sizeof(float));
  CHECK(memcmp(back, h, n * sizeof(float)) == 0);
  /* all-gather of one rank's shards (the whole buffer, and a chunk past n): identity, stream-ordered */
  size_t chunks[] = {n, n + 64};
  for (int i = 0; i < 2; i++) {
    k_scale_f32(G, d2, n, 4.0f);
    CHECK_MSG(rdt_nccl_allgather_start(c, d2, n, chunks[i]) == 0, "allgather: %s", rdt_error());
    CHECK(rdt_nccl_wait(c) == 0);
    k_scale_f32(G, d2, n, 0.25f);
    k_download(G, back, d2, n * sizeof(float));
    CHECK_MSG(memcmp(back, h, n * sizeof(float)) == 0, "allgather chunk %zu: buffer changed", chunks[i]);
  }
  k_free(G, d), k_free(G, d2);
  free(h), free(back);
  rdt_nccl_close(c);
}

static void t_refused(void) {
  char id[RDT_NCCL_ID_HEX];
  CHECK(rdt_nccl_new_id(id) == 0);
  CHECK(rdt_nccl_open(G, "abc", 1, 0, 5.0) == NULL);
  fprintf(stderr, "  short id: %s\n", rdt_error());
  CHECK(rdt_nccl_open(G, id, 2, 2, 5.0) == NULL);
  fprintf(stderr, "  rank 2 of 2: %s\n", rdt_error());
  unsetenv("RDT_NCCL_ID");
  CHECK(rdt_nccl_open(G, NULL, 1, 0, 5.0) == NULL);
  fprintf(stderr, "  no id: %s\n", rdt_error());
}

/* Rank 0 of 2 alone: joining must time out with a message, not hang. */
static void t_missing_peer(void) {
  char id[RDT_NCCL_ID_HEX];
  CHECK(rdt_nccl_new_id(id) == 0);
  double t0 = now_s();
  rdt_nccl *c = rdt_nccl_open(G, id, 2, 0, 3.0);
  double dt = now_s() - t0;
  CHECK(c == NULL);
  fprintf(stderr, "  missing peer after %.1f s: %s\n", dt, rdt_error());
  CHECK(strstr(rdt_error(), "timed out") != NULL);
  CHECK(dt >= 3.0 && dt < 60.0);
  if (c) rdt_nccl_close(c);
}

int main(void) {
  if (!k_cuda_available()) {
    fprintf(stderr, "skipped: no CUDA device visible\n");
    return 77;
  }
  G = k_open("cuda", 0);
  if (!G) {
    fprintf(stderr, "cannot open the CUDA backend: %s\n", rdt_error());
    return 1;
  }
  RUN(t_one_rank);
  RUN(t_refused);
  RUN(t_missing_peer);
  k_close(G);
  return test_done();
}
