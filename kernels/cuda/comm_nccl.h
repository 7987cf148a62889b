/* kernels/cuda/comm_nccl.h: gradient all-reduce across GPUs with NCCL.
 *
 * One communicator per process (one process per GPU).  The launcher makes a
 * unique id on rank 0 with rdt_nccl_new_id() and hands the same hex string to
 * every rank (a file or the RDT_NCCL_ID environment variable); each rank then
 * calls rdt_nccl_open() with its own rank.  NCCL_* environment variables pass
 * through to NCCL unchanged.
 *
 * All-reduces run on a second stream: rdt_nccl_allreduce_start() waits (on
 * the device) for the work already queued on the backend's stream, then
 * all-reduces the buffer in buckets; rdt_nccl_wait() returns when every
 * started all-reduce is done, and makes later work on the backend's stream
 * wait for them.  So the trainer can start one bucket as soon as its
 * gradients are complete and overlap it with the rest of the backward pass.
 *
 * Nothing here hangs on a dead peer: the communicator is non-blocking, and
 * every wait polls NCCL's asynchronous error state and a wall-clock timeout;
 * on either it aborts the communicator (ncclCommAbort) and returns -1 with a
 * message.  After a failure the only valid call is rdt_nccl_close().
 *
 * Available when the build has NCCL (RDT_HAVE_NCCL in rdt_build.h).
 */
#ifndef RDT_COMM_NCCL_H
#define RDT_COMM_NCCL_H

#include <stddef.h>
#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hex characters of a unique id plus the terminating NUL. */
#define RDT_NCCL_ID_HEX 257

typedef struct rdt_nccl rdt_nccl;

/* A new unique id as hex into hex[RDT_NCCL_ID_HEX] (call once, on rank 0).  0 or -1. */
int rdt_nccl_new_id(char *hex);
/* Join the communicator of nranks ranks as `rank` on the backend's device.
 * id_hex NULL reads $RDT_NCCL_ID.  Gives up after timeout_s seconds (for
 * this call and every later wait).  NULL + rdt_error(). */
rdt_nccl *rdt_nccl_open(k_backend *b, const char *id_hex, int nranks, int rank, double timeout_s);
int rdt_nccl_rank(const rdt_nccl *c);
int rdt_nccl_size(const rdt_nccl *c);
/* Elements per NCCL call when a buffer is split into buckets (default 2^24). */
void rdt_nccl_set_bucket(rdt_nccl *c, size_t elems);
/* Queue an in-place sum (average: 0) or mean (average: 1) of n floats.  0 or -1. */
int rdt_nccl_allreduce_start(rdt_nccl *c, float *buf, size_t n, int average);
/* Queue an in-place all-gather of n floats in shards of chunk elements: rank
 * r owns [r * chunk, min((r + 1) * chunk, n)) and every rank receives every
 * shard (ZeRO-1's parameter exchange).  0 or -1. */
int rdt_nccl_allgather_start(rdt_nccl *c, float *buf, size_t n, size_t chunk);
/* Wait for every queued collective.  0 or -1 (a peer failed, or the timeout passed). */
int rdt_nccl_wait(rdt_nccl *c);
/* start + wait. */
int rdt_nccl_allreduce(rdt_nccl *c, float *buf, size_t n, int average);
/* Leave the communicator (aborting it if it failed) and free everything. */
void rdt_nccl_close(rdt_nccl *c);

#ifdef __cplusplus
}
#endif

#endif
