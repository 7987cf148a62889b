/* train/loader.h: worker threads filling a bounded queue of ready batches.
 *
 * Batches are numbered 0, 1, 2, ... from `first`; a worker claims the next
 * number, fills a free slot with fill(ctx, index, slot, worker) and marks it
 * ready; the consumer takes them strictly in order.  A batch's content must
 * depend only on its index (the trainer seeds every draw from the sample
 * index), so the sequence is the same for any number of workers and any
 * thread timing.  `depth` slots bound the memory: a worker waits while the
 * batch it would fill is `depth` ahead of the one being consumed.
 * With 0 workers, rdt_loader_next fills the batch in the calling thread.
 */
#ifndef RDT_TRAIN_LOADER_H
#define RDT_TRAIN_LOADER_H

#include <stdint.h>

/* Fill `slot` with batch `index`; `worker` in [0, workers) (0 when
 * synchronous) selects per-thread scratch.  0 or -1 + rdt_error(). */
typedef int (*rdt_loader_fill)(void *ctx, int64_t index, void *slot, int worker);

typedef struct rdt_loader rdt_loader;

/* slots: `depth` caller-owned batch buffers (depth >= 1). */
rdt_loader *rdt_loader_new(int workers, int depth, void **slots, rdt_loader_fill fill, void *ctx,
                           int64_t first);
/* The next batch in order (blocking), or NULL + rdt_error() when a worker
 * failed (the message names the batch).  *index gets its number. */
void *rdt_loader_next(rdt_loader *l, int64_t *index);
/* Give the batch returned by the last rdt_loader_next back for refilling. */
void rdt_loader_release(rdt_loader *l);
/* Stop and join the workers. */
void rdt_loader_free(rdt_loader *l);

#endif
