/* train/ema.h: the exponential moving average of the weights, as upstream RDT's
 * models/ema_model.py EMAModel (from Diffusion Policy) with the model.ema
 * config (update_after_step, inv_gamma, power, min_value, max_value).
 *
 * decay(n) = 0 when s = max(0, n - update_after_step - 1) is 0, else
 *            clamp(1 - (1 + s / inv_gamma)^-power, min_value, max_value),
 * where n counts EMA updates made so far; each update sets
 * ema = decay ema + (1 - decay) p and then n += 1.  Upstream calls it once per
 * MICRO-batch (after every dataloader batch, outside the accumulation
 * context), so with gradient accumulation the average is updated several
 * times per optimizer step; the trainer does the same.  The average is kept
 * in F32 (upstream keeps it in the training dtype) and the count is saved in
 * checkpoints (upstream restarts it at 0 on resume).
 */
#ifndef RDT_TRAIN_EMA_H
#define RDT_TRAIN_EMA_H

#include <stddef.h>
#include <stdint.h>
#include "kernels/kernels.h"

typedef struct {
  int64_t update_after_step;
  double inv_gamma, power, min_value, max_value;
} rdt_ema_cfg;

typedef struct {
  rdt_ema_cfg cfg;
  k_backend *b;
  float *w;          /* device F32 buffer, n floats: the average of params[lo, lo + n) */
  size_t lo, n;
  int64_t updates;   /* upstream optimization_step */
  double decay;      /* the decay of the last update */
} rdt_ema;

/* Upstream's decay for the update made after `updates` earlier ones. */
double rdt_ema_decay(const rdt_ema_cfg *c, int64_t updates);
/* A device buffer initialised to a copy of params (n floats). */
void rdt_ema_init(rdt_ema *e, k_backend *b, const rdt_ema_cfg *c, const float *params, size_t n);
/* The average of the shard params[lo, lo + n) only (ZeRO-1; elementwise, so
 * bitwise the shard of a whole-buffer average). */
void rdt_ema_init_shard(rdt_ema *e, k_backend *b, const rdt_ema_cfg *c, const float *params, size_t lo, size_t n);
void rdt_ema_free(rdt_ema *e);
/* One update from the current params (the whole buffer). */
void rdt_ema_update(rdt_ema *e, const float *params);

#endif
