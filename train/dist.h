/* train/dist.h: data-parallel training across processes (DESIGN.md "Distribution").
 *
 * A run started by mpirun (or by `rdt train --nproc N`, which re-executes the
 * program under mpirun, see launch.h) has one rank per process; each rank
 * trains on its own shard of every global batch and the gradients are
 * averaged with an all-reduce on the flat F32 gradient buffer: MPI on the
 * CPU; NCCL on CUDA (kernels/cuda/comm_nccl.h, its unique id broadcast from
 * rank 0 over MPI, each rank on the GPU of its local rank), or MPI through
 * host memory when the build has no NCCL.  Without mpirun the world is one
 * process and nothing here communicates.
 *
 * The gradient average can overlap the backward pass (rdt_dist_mean_start /
 * rdt_dist_mean_wait), and ZeRO-1 shards the optimizer state over the ranks
 * (rdt_dist_shard, rdt_dist_allgather_f32, rdt_dist_gather_host).
 *
 * A dead rank never hangs the others: mpirun stops the job when a process
 * dies, a rank stopped that way says so on stderr, and every collective gives
 * up after RDT_DIST_TIMEOUT seconds (default 600) with a message and
 * MPI_Abort.
 */
#ifndef RDT_TRAIN_DIST_H
#define RDT_TRAIN_DIST_H

#include <stddef.h>
#include "core/error.h"
#include "kernels/kernels.h"

typedef struct {
  int rank, world;
  int local_rank, local_world;   /* within this machine */
  int mpi;                       /* 1 when MPI is initialised */
  double timeout_s;
  void *nccl;                    /* the NCCL communicator (rdt_nccl *) on CUDA */
  void *pending;                 /* queued MPI all-reduces (dist.c) */
  int npending, cap_pending;
} rdt_dist;

/* Join the job described by the environment (OMPI_COMM_WORLD_* / PMI_*), or
 * a world of one.  0 or -1 (launched by mpirun but built without MPI). */
int rdt_dist_init(rdt_dist *d);
void rdt_dist_finalize(rdt_dist *d);
/* Was this process started by an MPI launcher? */
int rdt_dist_launched(void);

/* Set up the gradient transport for backend b (NCCL on CUDA when built).
 * Call once after opening the backend.  0 or -1. */
int rdt_dist_attach(rdt_dist *d, k_backend *b);
/* "mpi", "nccl" or "none" (a world of one). */
const char *rdt_dist_transport(const rdt_dist *d);

/* buf (n floats on backend b) = the mean of buf over all ranks. */
void rdt_dist_mean_f32(rdt_dist *d, k_backend *b, float *buf, size_t n);
/* Averaging overlapped with the backward pass: rdt_dist_mean_start queues the
 * mean of one range of the gradient buffer as soon as the pass has finished
 * it (NCCL: on its own stream after the work queued so far; MPI on the CPU: a
 * non-blocking all-reduce, progressed at each later start), and
 * rdt_dist_mean_wait completes every queued range.  The result is bitwise the
 * same as rdt_dist_mean_f32 over each range.  Only where
 * rdt_dist_can_overlap() says so: a world of several ranks on NCCL, or on MPI
 * with the CPU backend, and RDT_DIST_OVERLAP is not 0. */
int rdt_dist_can_overlap(const rdt_dist *d, k_backend *b);
void rdt_dist_mean_start(rdt_dist *d, k_backend *b, float *buf, size_t n);
void rdt_dist_mean_wait(rdt_dist *d, k_backend *b);
/* ZeRO-1 shards of n elements: rank r owns [*lo, *lo + *cnt), equal pieces
 * of a multiple of 64 elements in rank order, the last shorter (or empty). */
void rdt_dist_shard(const rdt_dist *d, int rank, size_t n, size_t *lo, size_t *cnt);
/* The same for a world of `world` ranks, without one (rdt bench train --zero_world). */
void rdt_shard_range(int world, int rank, size_t n, size_t *lo, size_t *cnt);
/* Every rank's shard of buf (n floats on backend b) from its owner: an
 * in-place all-gather (NCCL on CUDA, MPI otherwise). */
void rdt_dist_allgather_f32(rdt_dist *d, k_backend *b, float *buf, size_t n);
/* Rank 0's full[0..n) (host) = every rank's shard, where this rank's part is
 * shard (its cnt floats on backend b); full is unused on the other ranks. */
void rdt_dist_gather_host(rdt_dist *d, k_backend *b, const float *shard, float *full, size_t n);
/* v[0..n) = the sum of v over all ranks (host doubles). */
void rdt_dist_sum(rdt_dist *d, double *v, int n);
void rdt_dist_barrier(rdt_dist *d);
/* Stop every rank with a message (MPI_Abort when distributed). */
void rdt_dist_abort(rdt_dist *d, const char *fmt, ...) RDT_PRINTF(2, 3) RDT_NORETURN;

#endif
