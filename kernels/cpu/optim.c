/* kernels/cpu/optim.c: AdamW and EMA updates, gradient norms and scaling (all F32). */
#include <math.h>
#include <stdlib.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

/* ---------------------------------------------------------------- AdamW */
/* The scalars are formed in double and rounded to float once, as PyTorch does
 * with its Python-float hyper-parameters; the per-element arithmetic follows
 * torch.optim.AdamW's single-tensor path operation by operation. */
typedef struct {
  float *p, *m, *v;
  const float *g;
  float decay;        /* 1 - lr wd */
  float one_m_b1;     /* lerp weight 1 - beta1 */
  float b2, one_m_b2;
  float bc2_sqrt;     /* sqrt(1 - beta2^step) */
  float step_size;    /* lr / (1 - beta1^step) */
  float eps;
} adamw_job;

/* One element's AdamW update with gradient g; returns the new parameter. */
static inline float adamw_one(const adamw_job *j, size_t i, float g) {
  float p = j->p[i] * j->decay;
  float m = j->one_m_b1 < 0.5f ? j->m[i] + j->one_m_b1 * (g - j->m[i])     /* torch lerp */
                               : g - (g - j->m[i]) * (1.0f - j->one_m_b1);
  float v = j->v[i] * j->b2 + j->one_m_b2 * g * g;
  float denom = sqrtf(v) / j->bc2_sqrt + j->eps;
  float pn = p + -j->step_size * m / denom;
  j->p[i] = pn;
  j->m[i] = m;
  j->v[i] = v;
  return pn;
}

static void adamw_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  const adamw_job *j = arg;
  for (size_t i = i0; i < i1; i++) adamw_one(j, i, j->g[i]);
}

static adamw_job adamw_setup(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                             float eps, float wd, int step) {
  RDT_ASSERT(step >= 1);
  double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
  adamw_job j = {p, m, v, g,
                 (float)(1.0 - (double)lr * wd),
                 (float)(1.0 - (double)beta1),
                 beta2,
                 (float)(1.0 - (double)beta2),
                 (float)sqrt(bc2),
                 (float)(lr / bc1),
                 eps};
  return j;
}

void kcpu_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                float beta2, float eps, float wd, int step) {
  adamw_job j = adamw_setup(p, g, m, v, lr, beta1, beta2, eps, wd, step);
  kcpu_for(b, n, KCPU_GRAIN, adamw_range, &j);
}

/* k_adamw_ema: the gradient scaled, AdamW, the EMA (decay 0: a copy) and, on
 * the CPU where activations are F32, a copy into wc when it is a separate buffer. */
typedef struct {
  adamw_job a;
  float *ema, *wc;
  float gscale, decay, one_m_decay;
} adamw_ema_job;

static void adamw_ema_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  const adamw_ema_job *j = arg;
  for (size_t i = i0; i < i1; i++) {
    float g = j->a.g[i];
    g *= j->gscale;
    float p = adamw_one(&j->a, i, g);
    j->ema[i] = j->decay == 0.0f ? p : j->ema[i] * j->decay + j->one_m_decay * p;
    if (j->wc) j->wc[i] = p;
  }
}

void kcpu_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                    float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay) {
  adamw_ema_job j = {adamw_setup(p, g, m, v, lr, beta1, beta2, eps, wd, step), ema,
                     wc == (void *)p ? NULL : wc, gscale, decay, (float)(1.0 - (double)decay)};
  kcpu_for(b, n, KCPU_GRAIN, adamw_ema_range, &j);
}

/* ---------------------------------------------------------------- EMA, norms, scaling */
typedef struct {
  float *y;
  const float *x;
  float s;
  double *partial;
  float t;
} vec_job;

/* RDT's EMAModel.step (models/ema_model.py): ema = decay ema + (1 - decay) p
 * (s = decay, t = 1 - decay). */
static void ema_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  vec_job *j = arg;
  for (size_t i = i0; i < i1; i++) j->y[i] = j->y[i] * j->s + j->t * j->x[i];
}

void kcpu_ema(k_backend *b, float *ema, const float *p, size_t n, float decay) {
  vec_job j = {ema, p, decay, NULL, (float)(1.0 - (double)decay)};
  kcpu_for(b, n, KCPU_GRAIN, ema_range, &j);
}

static void sumsq_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  vec_job *j = arg;
  double s = 0.0;
  for (size_t i = i0; i < i1; i++) s += (double)j->x[i] * j->x[i];
  j->partial[i0 / KCPU_GRAIN] = s;
}

double kcpu_sumsq(k_backend *b, const float *x, size_t n) {
  size_t nchunks = (n + KCPU_GRAIN - 1) / KCPU_GRAIN;
  vec_job j = {NULL, x, 0, rdt_malloc((nchunks ? nchunks : 1) * sizeof(double)), 0};
  kcpu_for(b, n, KCPU_GRAIN, sumsq_range, &j);
  double s = 0.0;
  for (size_t c = 0; c < nchunks; c++) s += j.partial[c];
  free(j.partial);
  return s;
}

static void scale_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  vec_job *j = arg;
  for (size_t i = i0; i < i1; i++) j->y[i] *= j->s;
}

void kcpu_scale_f32(k_backend *b, float *x, size_t n, float s) {
  vec_job j = {x, NULL, s, NULL, 0};
  kcpu_for(b, n, KCPU_GRAIN, scale_range, &j);
}
