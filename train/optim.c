/* train/optim.c: AdamW and gradient clipping on flat F32 buffers (see optim.h). */
#include "train/optim.h"

#include <math.h>
#include "core/error.h"

void rdt_adamw_init(rdt_adamw *o, k_backend *b, const rdt_adamw_cfg *c, size_t n) {
  rdt_adamw_init_shard(o, b, c, 0, n);
}

void rdt_adamw_init_shard(rdt_adamw *o, k_backend *b, const rdt_adamw_cfg *c, size_t lo, size_t n) {
  o->cfg = *c;
  o->b = b;
  o->lo = lo, o->n = n;
  o->m = k_alloc(b, (n ? n : 1) * sizeof(float));
  o->v = k_alloc(b, (n ? n : 1) * sizeof(float));
  o->step = 0;
}

void rdt_adamw_free(rdt_adamw *o) {
  if (o->m) k_free(o->b, o->m);
  if (o->v) k_free(o->b, o->v);
  o->m = o->v = NULL;
}

/* sqrt of the sum of squares; torch computes the norm in F32, so round once. */
double rdt_grad_norm(k_backend *b, const float *grads, size_t n) {
  return (double)(float)sqrt(k_sumsq(b, grads, n));
}

/* torch: coef = max_norm / (norm + 1e-6), clamped to 1 (a factor of 1 is
 * exact, so the unclipped gradient is used unchanged). */
double rdt_grad_clip_coef(double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  float coef = (float)max_norm / ((float)norm + 1e-6f);
  return coef >= 1.0f ? 1.0 : coef;
}

void rdt_adamw_ema_step(rdt_adamw *o, rdt_ema *e, float *params, const float *grads, double coef, double lr,
                        void *wc) {
  RDT_ASSERT(e->lo == o->lo && e->n == o->n && e->b == o->b);
  o->step++;
  e->decay = rdt_ema_decay(&e->cfg, e->updates);
  k_adamw_ema(o->b, params + o->lo, grads + o->lo, o->m, o->v, e->w, wc ? k_act_at(o->b, wc, o->lo) : NULL, o->n,
              (float)coef, (float)lr, (float)o->cfg.beta1, (float)o->cfg.beta2, (float)o->cfg.eps,
              (float)o->cfg.weight_decay, (int)o->step, (float)e->decay);
  e->updates++;
}
