/* kernels/cuda/comm_nccl.cu: NCCL all-reduce with a timeout (see comm_nccl.h). */
#include "kernels/cuda/kcuda.cuh"
#if RDT_HAVE_NCCL
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kernels/cuda/comm_nccl.h"

struct rdt_nccl {
  k_backend *b;
  ncclComm_t comm;
  cudaStream_t stream;       /* where the all-reduces run */
  cudaEvent_t ready, done;   /* backend stream -> comm stream, and back */
  int rank, size;
  size_t bucket;
  double timeout_s;
  int pending, failed;
};

static_assert(sizeof(ncclUniqueId) * 2 + 1 == RDT_NCCL_ID_HEX, "RDT_NCCL_ID_HEX does not match ncclUniqueId");

static double kn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Abort the communicator (once) and record "nccl rank R/N: WHAT: WHY". */
static int kn_fail(rdt_nccl *c, const char *what, const char *why) {
  const char *detail = c->comm ? ncclGetLastError(c->comm) : "";
  int rc = rdt_fail("nccl rank %d of %d: %s: %s%s%s", c->rank, c->size, what, why,
                    detail && *detail ? ": " : "", detail ? detail : "");
  if (!c->failed && c->comm) ncclCommAbort(c->comm); /* already failing: its own result changes nothing */
  c->failed = 1;
  return rc;
}

static int kn_timeout(rdt_nccl *c, const char *what) {
  char why[160];
  snprintf(why, sizeof why, "timed out after %.0f s (a peer died, hangs, or never joined)", c->timeout_s);
  return kn_fail(c, what, why);
}

/* Poll until the communicator leaves ncclInProgress (non-blocking mode). */
static int kn_settle(rdt_nccl *c, const char *what) {
  double t0 = kn_now();
  for (;;) {
    ncclResult_t st = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(c->comm, &st);
    if (r != ncclSuccess) st = r;
    if (st == ncclSuccess) return 0;
    if (st != ncclInProgress) return kn_fail(c, what, ncclGetErrorString(st));
    if (kn_now() - t0 > c->timeout_s) return kn_timeout(c, what);
    usleep(1000);
  }
}

/* Check the return of an NCCL call made in non-blocking mode. */
static int kn_call(rdt_nccl *c, ncclResult_t r, const char *what) {
  if (r == ncclInProgress) return kn_settle(c, what);
  return r == ncclSuccess ? 0 : kn_fail(c, what, ncclGetErrorString(r));
}

int rdt_nccl_new_id(char *hex) {
  ncclUniqueId id;
  ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) return rdt_fail("nccl: cannot make a unique id: %s", ncclGetErrorString(r));
  const unsigned char *p = (const unsigned char *)&id;
  for (size_t i = 0; i < sizeof id; i++) snprintf(hex + 2 * i, 3, "%02x", p[i]);
  return 0;
}

/* Parse the hex form written by rdt_nccl_new_id. */
static int kn_parse_id(const char *hex, ncclUniqueId *id) {
  if (!hex) return rdt_fail("nccl: no unique id (pass one, or set RDT_NCCL_ID)");
  if (strlen(hex) != 2 * sizeof *id) return rdt_fail("nccl: unique id must be %d hex characters, got %zu",
                                                     (int)(2 * sizeof *id), strlen(hex));
  unsigned char *p = (unsigned char *)id;
  for (size_t i = 0; i < sizeof *id; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return rdt_fail("nccl: unique id: bad hex at character %zu", 2 * i);
    p[i] = (unsigned char)v;
  }
  return 0;
}

static void kn_free(rdt_nccl *c) {
  KC_CUDA(cudaStreamDestroy(c->stream));
  KC_CUDA(cudaEventDestroy(c->ready));
  KC_CUDA(cudaEventDestroy(c->done));
  free(c);
}

rdt_nccl *rdt_nccl_open(k_backend *b, const char *id_hex, int nranks, int rank, double timeout_s) {
  ncclUniqueId id;
  if (k_kind_of(b) != K_CUDA) {
    rdt_fail("nccl: backend %s is not a CUDA backend", k_name(b));
    return NULL;
  }
  if (kn_parse_id(id_hex ? id_hex : getenv("RDT_NCCL_ID"), &id) != 0) return NULL;
  if (nranks < 1 || rank < 0 || rank >= nranks) {
    rdt_fail("nccl: rank %d of %d is out of range", rank, nranks);
    return NULL;
  }
  kc_state *s = kc(b);
  KC_CUDA(cudaSetDevice(s->device));
  rdt_nccl *c = (rdt_nccl *)rdt_calloc(1, sizeof *c);
  c->b = b, c->rank = rank, c->size = nranks, c->timeout_s = timeout_s > 0 ? timeout_s : 1e30;
  c->bucket = (size_t)1 << 24;
  KC_CUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  KC_CUDA(cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming));
  KC_CUDA(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming));
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&c->comm, nranks, id, rank, &cfg);
  if (kn_call(c, r, "joining the communicator") != 0) {
    kn_free(c);
    return NULL;
  }
  return c;
}

int rdt_nccl_rank(const rdt_nccl *c) { return c->rank; }
int rdt_nccl_size(const rdt_nccl *c) { return c->size; }
void rdt_nccl_set_bucket(rdt_nccl *c, size_t elems) { c->bucket = elems ? elems : 1; }

int rdt_nccl_allreduce_start(rdt_nccl *c, float *buf, size_t n, int average) {
  if (c->failed) return rdt_fail("nccl rank %d: the communicator already failed", c->rank);
  kc_state *s = kc(c->b);
  KC_CUDA(cudaEventRecord(c->ready, s->stream));
  KC_CUDA(cudaStreamWaitEvent(c->stream, c->ready, 0));
  for (size_t off = 0; off < n; off += c->bucket) {
    size_t count = n - off < c->bucket ? n - off : c->bucket;
    ncclResult_t r = ncclAllReduce(buf + off, buf + off, count, ncclFloat32, average ? ncclAvg : ncclSum, c->comm,
                                   c->stream);
    if (kn_call(c, r, "all-reduce") != 0) return -1;
  }
  c->pending = 1;
  return 0;
}

int rdt_nccl_allgather_start(rdt_nccl *c, float *buf, size_t n, size_t chunk) {
  if (c->failed) return rdt_fail("nccl rank %d: the communicator already failed", c->rank);
  kc_state *s = kc(c->b);
  KC_CUDA(cudaEventRecord(c->ready, s->stream));
  KC_CUDA(cudaStreamWaitEvent(c->stream, c->ready, 0));
  /* uneven shards in place: one broadcast per owner, as one group */
  if (kn_call(c, ncclGroupStart(), "all-gather") != 0) return -1;
  for (int r = 0; r < c->size; r++) {
    size_t lo = (size_t)r * chunk < n ? (size_t)r * chunk : n, cnt = n - lo < chunk ? n - lo : chunk;
    if (cnt == 0) continue;
    ncclResult_t e = ncclBroadcast(buf + lo, buf + lo, cnt, ncclFloat32, r, c->comm, c->stream);
    if (e != ncclSuccess && e != ncclInProgress) {
      ncclGroupEnd();
      return kn_fail(c, "all-gather", ncclGetErrorString(e));
    }
  }
  if (kn_call(c, ncclGroupEnd(), "all-gather") != 0) return -1;
  c->pending = 1;
  return 0;
}

int rdt_nccl_wait(rdt_nccl *c) {
  if (c->failed) return rdt_fail("nccl rank %d: the communicator already failed", c->rank);
  if (!c->pending) return 0;
  KC_CUDA(cudaEventRecord(c->done, c->stream));
  double t0 = kn_now();
  for (;;) {
    cudaError_t e = cudaEventQuery(c->done);
    if (e == cudaSuccess) break;
    if (e != cudaErrorNotReady) return kn_fail(c, "all-reduce", cudaGetErrorString(e));
    ncclResult_t st = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(c->comm, &st);
    if (r != ncclSuccess) st = r;
    if (st != ncclSuccess && st != ncclInProgress) return kn_fail(c, "all-reduce", ncclGetErrorString(st));
    if (kn_now() - t0 > c->timeout_s) return kn_timeout(c, "all-reduce");
    usleep(50);
  }
  KC_CUDA(cudaStreamWaitEvent(kc(c->b)->stream, c->done, 0));
  c->pending = 0;
  return 0;
}

int rdt_nccl_allreduce(rdt_nccl *c, float *buf, size_t n, int average) {
  if (rdt_nccl_allreduce_start(c, buf, n, average) != 0) return -1;
  return rdt_nccl_wait(c);
}

void rdt_nccl_close(rdt_nccl *c) {
  if (!c) return;
  if (!c->failed && c->pending) rdt_nccl_wait(c);
  if (!c->failed && kn_call(c, ncclCommFinalize(c->comm), "leaving the communicator") == 0) {
    ncclResult_t r = ncclCommDestroy(c->comm);
    if (r != ncclSuccess) kc_die(__FILE__, __LINE__, "ncclCommDestroy", ncclGetErrorString(r));
  }
  kn_free(c);
}
#endif
