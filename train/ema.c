/* train/ema.c: the weight average of upstream's EMAModel (see ema.h). */
#include "train/ema.h"

#include <math.h>

/* Upstream get_decay(optimization_step). */
double rdt_ema_decay(const rdt_ema_cfg *c, int64_t updates) {
  int64_t s = updates - c->update_after_step - 1;
  if (s <= 0) return 0.0;
  double v = 1.0 - pow(1.0 + (double)s / c->inv_gamma, -c->power);
  return fmax(c->min_value, fmin(v, c->max_value));
}

/* A device copy of params. */
void rdt_ema_init(rdt_ema *e, k_backend *b, const rdt_ema_cfg *c, const float *params, size_t n) {
  rdt_ema_init_shard(e, b, c, params, 0, n);
}

void rdt_ema_init_shard(rdt_ema *e, k_backend *b, const rdt_ema_cfg *c, const float *params, size_t lo, size_t n) {
  e->cfg = *c;
  e->b = b;
  e->lo = lo, e->n = n;
  e->w = k_alloc(b, (n ? n : 1) * sizeof(float));
  k_copy(b, e->w, params + lo, n * sizeof(float));
  e->updates = 0;
  e->decay = 0.0;
}

void rdt_ema_free(rdt_ema *e) {
  if (e->w) k_free(e->b, e->w);
  e->w = NULL;
}

/* One update; a zero decay copies the weights exactly, as upstream's
 * ema * 0 + p * 1 does. */
void rdt_ema_update(rdt_ema *e, const float *params) {
  e->decay = rdt_ema_decay(&e->cfg, e->updates);
  if (e->decay == 0.0)
    k_copy(e->b, e->w, params + e->lo, e->n * sizeof(float));
  else
    k_ema(e->b, e->w, params + e->lo, e->n, (float)e->decay);
  e->updates++;
}
