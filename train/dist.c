/* train/dist.c: MPI data-parallel collectives with a dead-rank timeout (see dist.h). */
#include "train/dist.h"

#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "rdt_build.h"
#include "core/log.h"
#include "core/progress.h"
#if RDT_HAVE_MPI
#include <mpi.h>
#endif
#if RDT_HAVE_NCCL
#include "kernels/cuda/comm_nccl.h"
#endif

int rdt_dist_launched(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

#if RDT_HAVE_MPI
/* An integer environment variable, or def. */
static int env_int(const char *name, int def) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : def;
}

/* ---------------------------------------------------------------- signals */
static char term_msg[160];

/* mpirun stops the surviving ranks with SIGTERM when one dies: say why. */
static void on_term(int sig) {
  (void)sig;
  ssize_t w = write(2, term_msg, strlen(term_msg));
  (void)w;
  _exit(143);
}

static void install_term_handler(int rank) {
  snprintf(term_msg, sizeof term_msg,
           "rdt: error: rank %d: stopped by SIGTERM (another worker failed, or the job was cancelled)\n", rank);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
}
#endif

/* ---------------------------------------------------------------- setup */
int rdt_dist_init(rdt_dist *d) {
  memset(d, 0, sizeof *d);
  d->world = d->local_world = 1;
  const char *t = getenv("RDT_DIST_TIMEOUT");
  d->timeout_s = t && *t ? atof(t) : 600.0;
  if (!rdt_dist_launched()) return 0;
#if RDT_HAVE_MPI
  int provided;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return rdt_fail("MPI_Init failed");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->world);
  d->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("MPI_LOCALRANKID", d->rank));
  d->local_world = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("MPI_LOCALNRANKS", d->world));
  d->mpi = 1;
  if (d->world > 1) install_term_handler(d->rank);
  return 0;
#else
  return rdt_fail("started by an MPI launcher, but this rdt was built without MPI "
                  "(install libopenmpi-dev and rebuild)");
#endif
}

void rdt_dist_finalize(rdt_dist *d) {
  free(d->pending);
  d->pending = NULL;
#if RDT_HAVE_NCCL
  if (d->nccl) rdt_nccl_close(d->nccl);
  d->nccl = NULL;
#endif
#if RDT_HAVE_MPI
  if (d->mpi) MPI_Finalize();
#endif
  d->mpi = 0;
}

void rdt_dist_abort(rdt_dist *d, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (d->world > 1)
    fprintf(stderr, "rdt: error: rank %d: %s\n", d->rank, msg);
  else
    fprintf(stderr, "rdt: error: %s\n", msg);
  fflush(stderr);
#if RDT_HAVE_MPI
  if (d->mpi && d->world > 1) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  exit(1);
}

/* ---------------------------------------------------------------- collectives */
#if RDT_HAVE_MPI
/* Wait for a request, giving up (and aborting the job) after the timeout. */
static void wait_or_abort(rdt_dist *d, MPI_Request *req, const char *what) {
  double t0 = rdt_now();
  int done = 0;
  for (long polls = 0;; polls++) {
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (rdt_now() - t0 > d->timeout_s)
      rdt_dist_abort(d, "%s: no answer from the other ranks for %.0f s (a rank died or hangs); "
                     "stopping the job (RDT_DIST_TIMEOUT sets the limit)", what, d->timeout_s);
    if (polls > 1000) {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
  }
}

/* In-place sum of host floats, in pieces that fit an int count. */
static void sum_host_f32(rdt_dist *d, float *x, size_t n) {
  const size_t piece = (size_t)1 << 28;
  for (size_t i = 0; i < n; i += piece) {
    int c = (int)(n - i < piece ? n - i : piece);
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, x + i, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    wait_or_abort(d, &req, "gradient all-reduce");
  }
}
#endif

int rdt_dist_attach(rdt_dist *d, k_backend *b) {
  if (d->world == 1 || k_kind_of(b) != K_CUDA) return 0;
#if RDT_HAVE_NCCL && RDT_HAVE_MPI
  char hex[RDT_NCCL_ID_HEX] = {0};
  if (d->rank == 0 && rdt_nccl_new_id(hex) != 0) rdt_dist_abort(d, "NCCL unique id: %s", rdt_error());
  MPI_Request req;
  MPI_Ibcast(hex, RDT_NCCL_ID_HEX, MPI_CHAR, 0, MPI_COMM_WORLD, &req);
  wait_or_abort(d, &req, "NCCL id broadcast");
  d->nccl = rdt_nccl_open(b, hex, d->world, d->rank, d->timeout_s);
  return d->nccl ? 0 : -1;
#else
  return 0;
#endif
}

const char *rdt_dist_transport(const rdt_dist *d) {
  return d->world == 1 ? "none" : d->nccl ? "nccl" : "mpi";
}

void rdt_dist_mean_f32(rdt_dist *d, k_backend *b, float *buf, size_t n) {
  if (d->world == 1) return;
#if RDT_HAVE_NCCL
  if (d->nccl) {
    if (rdt_nccl_allreduce(d->nccl, buf, n, 1) != 0) rdt_dist_abort(d, "gradient all-reduce: %s", rdt_error());
    return;
  }
#endif
#if RDT_HAVE_MPI
  if (k_kind_of(b) == K_CPU) {
    sum_host_f32(d, buf, n);
  } else {
    float *host = rdt_malloc(n * sizeof(float));
    k_download(b, host, buf, n * sizeof(float));
    sum_host_f32(d, host, n);
    k_upload(b, buf, host, n * sizeof(float));
    free(host);
  }
  k_scale_f32(b, buf, n, 1.0f / (float)d->world);
#else
  (void)b, (void)buf, (void)n;
#endif
}

/* ---------------------------------------------------------------- overlapped averaging */
#if RDT_HAVE_MPI
typedef struct {
  MPI_Request req;
  float *buf;
  int n;
} pending_sum;

/* Queue the in-place sum of n host floats (pieces that fit an int count). */
static void queue_sum(rdt_dist *d, float *x, size_t n) {
  const size_t piece = (size_t)1 << 28;
  for (size_t i = 0; i < n; i += piece) {
    if (d->npending == d->cap_pending) {
      d->cap_pending = d->cap_pending ? 2 * d->cap_pending : 64;
      d->pending = rdt_realloc(d->pending, (size_t)d->cap_pending * sizeof(pending_sum));
    }
    pending_sum *q = (pending_sum *)d->pending + d->npending++;
    q->buf = x + i, q->n = (int)(n - i < piece ? n - i : piece);
    MPI_Iallreduce(MPI_IN_PLACE, q->buf, q->n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q->req);
  }
  /* Let the MPI library move the queued ones along (it progresses only inside MPI calls). */
  for (int k = 0; k < d->npending; k++) {
    int done;
    pending_sum *q = (pending_sum *)d->pending + k;
    if (q->req != MPI_REQUEST_NULL) MPI_Test(&q->req, &done, MPI_STATUS_IGNORE);
  }
}
#endif

int rdt_dist_can_overlap(const rdt_dist *d, k_backend *b) {
  const char *e = getenv("RDT_DIST_OVERLAP");
  if (d->world == 1 || (e && strcmp(e, "0") == 0)) return 0;
  if (d->nccl) return 1;
  return RDT_HAVE_MPI && d->mpi && k_kind_of(b) == K_CPU;
}

void rdt_dist_mean_start(rdt_dist *d, k_backend *b, float *buf, size_t n) {
  RDT_ASSERT(rdt_dist_can_overlap(d, b));
  if (n == 0) return;
#if RDT_HAVE_NCCL
  if (d->nccl) {
    if (rdt_nccl_allreduce_start(d->nccl, buf, n, 1) != 0) rdt_dist_abort(d, "gradient all-reduce: %s", rdt_error());
    return;
  }
#endif
#if RDT_HAVE_MPI
  queue_sum(d, buf, n);
#else
  (void)buf;
#endif
}

void rdt_dist_mean_wait(rdt_dist *d, k_backend *b) {
#if RDT_HAVE_NCCL
  if (d->nccl) {
    if (rdt_nccl_wait(d->nccl) != 0) rdt_dist_abort(d, "gradient all-reduce: %s", rdt_error());
    return;
  }
#endif
#if RDT_HAVE_MPI
  for (int k = 0; k < d->npending; k++) {
    pending_sum *q = (pending_sum *)d->pending + k;
    if (q->req != MPI_REQUEST_NULL) wait_or_abort(d, &q->req, "gradient all-reduce");
    k_scale_f32(b, q->buf, (size_t)q->n, 1.0f / (float)d->world);
  }
  d->npending = 0;
#else
  (void)d, (void)b;
#endif
}

/* ---------------------------------------------------------------- ZeRO-1 shards */
#define SHARD_ALIGN 64

static size_t shard_chunk(int world, size_t n) {
  size_t c = (n + (size_t)world - 1) / (size_t)world;
  return (c + SHARD_ALIGN - 1) / SHARD_ALIGN * SHARD_ALIGN;
}

void rdt_shard_range(int world, int rank, size_t n, size_t *lo, size_t *cnt) {
  size_t c = shard_chunk(world, n), at = (size_t)rank * c;
  *lo = at < n ? at : n;
  *cnt = n - *lo < c ? n - *lo : c;
}

void rdt_dist_shard(const rdt_dist *d, int rank, size_t n, size_t *lo, size_t *cnt) {
  rdt_shard_range(d->world, rank, n, lo, cnt);
}

#if RDT_HAVE_MPI
/* Every rank's count and displacement as MPI ints. */
static void shard_layout(rdt_dist *d, size_t n, int *counts, int *displs) {
  if (n > (size_t)INT32_MAX) rdt_dist_abort(d, "ZeRO-1: %zu parameters are more than MPI's int counts allow", n);
  for (int r = 0; r < d->world; r++) {
    size_t lo, cnt;
    rdt_dist_shard(d, r, n, &lo, &cnt);
    counts[r] = (int)cnt, displs[r] = (int)lo;
  }
}
#endif

void rdt_dist_allgather_f32(rdt_dist *d, k_backend *b, float *buf, size_t n) {
  if (d->world == 1) return;
#if RDT_HAVE_NCCL
  if (d->nccl) {
    if (rdt_nccl_allgather_start(d->nccl, buf, n, shard_chunk(d->world, n)) != 0 || rdt_nccl_wait(d->nccl) != 0)
      rdt_dist_abort(d, "parameter all-gather: %s", rdt_error());
    return;
  }
#endif
#if RDT_HAVE_MPI
  int *counts = rdt_malloc((size_t)d->world * sizeof(int)), *displs = rdt_malloc((size_t)d->world * sizeof(int));
  shard_layout(d, n, counts, displs);
  float *host = k_kind_of(b) == K_CPU ? buf : rdt_malloc(n * sizeof(float));
  if (host != buf) k_download(b, host + displs[d->rank], buf + displs[d->rank], (size_t)counts[d->rank] * sizeof(float));
  MPI_Request req;
  MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, host, counts, displs, MPI_FLOAT, MPI_COMM_WORLD, &req);
  wait_or_abort(d, &req, "parameter all-gather");
  if (host != buf) {
    k_upload(b, buf, host, n * sizeof(float));
    free(host);
  }
  free(counts), free(displs);
#else
  (void)b, (void)buf, (void)n;
#endif
}

void rdt_dist_gather_host(rdt_dist *d, k_backend *b, const float *shard, float *full, size_t n) {
  size_t lo, cnt;
  rdt_dist_shard(d, d->rank, n, &lo, &cnt);
  if (d->world == 1) {
    k_download(b, full, shard, n * sizeof(float));
    return;
  }
#if RDT_HAVE_MPI
  int *counts = rdt_malloc((size_t)d->world * sizeof(int)), *displs = rdt_malloc((size_t)d->world * sizeof(int));
  shard_layout(d, n, counts, displs);
  float *mine = d->rank == 0 ? full + lo : rdt_malloc((cnt ? cnt : 1) * sizeof(float));
  k_download(b, mine, shard, cnt * sizeof(float));
  MPI_Request req;
  if (d->rank == 0)
    MPI_Igatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, counts, displs, MPI_FLOAT, 0, MPI_COMM_WORLD, &req);
  else
    MPI_Igatherv(mine, (int)cnt, MPI_FLOAT, NULL, NULL, NULL, MPI_FLOAT, 0, MPI_COMM_WORLD, &req);
  wait_or_abort(d, &req, "gathering the optimizer state");
  if (d->rank != 0) free(mine);
  free(counts), free(displs);
#else
  (void)full;
#endif
}

void rdt_dist_sum(rdt_dist *d, double *v, int n) {
  if (d->world == 1) return;
#if RDT_HAVE_MPI
  MPI_Request req;
  MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req);
  wait_or_abort(d, &req, "all-reduce");
#else
  (void)v, (void)n;
#endif
}

void rdt_dist_barrier(rdt_dist *d) {
  if (d->world == 1) return;
#if RDT_HAVE_MPI
  MPI_Request req;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  wait_or_abort(d, &req, "barrier");
#endif
}
