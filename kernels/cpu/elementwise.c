/* kernels/cpu/elementwise.c: activations, element-wise arithmetic, layout
 * copies, positional and timestep embeddings, and the MSE loss.
 *
 * Loops are split into fixed chunks of KCPU_GRAIN elements (or whole rows);
 * the only reduction (the loss) sums per-chunk partials in chunk order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

/* ---------------------------------------------------------------- vector exp */
/* Load n < 4 floats with the other lanes set to fill, and store the first n lanes back. */
KCPU_INLINE kcpu_v4 load_part(const float *p, size_t n, float fill) {
  kcpu_v4 v = kcpu_set4(fill);
  memcpy(&v, p, n * sizeof(float));
  return v;
}
KCPU_INLINE void store_part(float *p, kcpu_v4 v, size_t n) { memcpy(p, &v, n * sizeof(float)); }

/* The loop of kcpu_exp_shift_sum, inlined below into one copy per instruction set. */
KCPU_INLINE float exp_shift_sum16(float *y, const float *x, int n, float shift) {
  kcpu_v16 acc = {0}, v, e;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    memcpy(&v, x + i, sizeof v);
    e = KCPU_EXP(kcpu_v16, kcpu_v16i, v - shift);
    memcpy(y + i, &e, sizeof e);
    acc += e;
  }
  if (i < n) {   /* the tail, padded with -inf: exp gives 0 */
    v = (kcpu_v16){0} - INFINITY;
    memcpy(&v, x + i, (size_t)(n - i) * sizeof(float));
    e = KCPU_EXP(kcpu_v16, kcpu_v16i, v - shift);
    memcpy(y + i, &e, (size_t)(n - i) * sizeof(float));
    acc += e;
  }
  float s = 0.0f;
  for (int l = 0; l < 16; l++) s += acc[l];
  return s;
}

static float exp_shift_sum_base(float *y, const float *x, int n, float shift) {
  return exp_shift_sum16(y, x, n, shift);
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float exp_shift_sum_avx512(float *y, const float *x, int n, float shift) {
  return exp_shift_sum16(y, x, n, shift);
}
__attribute__((target("avx2"))) static float exp_shift_sum_avx2(float *y, const float *x, int n, float shift) {
  return exp_shift_sum16(y, x, n, shift);
}

typedef float (*exp_shift_sum_fn)(float *, const float *, int, float);

/* The copy for this CPU, chosen at the first call (a plain pointer rather than
 * an ifunc, whose resolver would run before sanitizers start). */
float kcpu_exp_shift_sum(float *y, const float *x, int n, float shift) {
  static exp_shift_sum_fn chosen;
  exp_shift_sum_fn f = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
  if (!f) {
    __builtin_cpu_init();
    f = __builtin_cpu_supports("avx512f") ? exp_shift_sum_avx512
        : __builtin_cpu_supports("avx2")  ? exp_shift_sum_avx2
                                          : exp_shift_sum_base;
    __atomic_store_n(&chosen, f, __ATOMIC_RELEASE);
  }
  return f(y, x, n, shift);
}
#else
float kcpu_exp_shift_sum(float *y, const float *x, int n, float shift) { return exp_shift_sum_base(y, x, n, shift); }
#endif

/* ---------------------------------------------------------------- activations */
/* GELU-tanh written as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3),
 * which equals 0.5 x (1 + tanh u) and never cancels for large |x|. */
#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

KCPU_INLINE kcpu_v4 gelu4(kcpu_v4 x) {
  kcpu_v4 u = GELU_C * (x + GELU_A * x * x * x);
  return x / (1.0f + kcpu_exp4(-2.0f * u));
}

/* d/dx x s(2u) = s + 2 x s (1 - s) u'. */
KCPU_INLINE kcpu_v4 gelu_grad4(kcpu_v4 x) {
  kcpu_v4 u = GELU_C * (x + GELU_A * x * x * x);
  kcpu_v4 s = 1.0f / (1.0f + kcpu_exp4(-2.0f * u));
  kcpu_v4 du = GELU_C * (1.0f + 3.0f * GELU_A * x * x);
  return s + 2.0f * x * s * (1.0f - s) * du;
}

KCPU_INLINE kcpu_v4 silu4(kcpu_v4 x) { return x / (1.0f + kcpu_exp4(-x)); }

/* d/dx x s(x) = s (1 + x (1 - s)). */
KCPU_INLINE kcpu_v4 silu_grad4(kcpu_v4 x) {
  kcpu_v4 s = 1.0f / (1.0f + kcpu_exp4(-x));
  return s * (1.0f + x * (1.0f - s));
}

typedef enum { ACT_GELU, ACT_SILU } act_kind;

typedef struct {
  act_kind kind;
  float *y;               /* y, or dx for the backward */
  const float *x, *dy;    /* dy NULL: forward */
  int acc;
} act_job;

/* One group of up to four: forward value, or dx (=|+=) dy * f'(x). */
KCPU_INLINE kcpu_v4 act_apply(const act_job *j, kcpu_v4 x, kcpu_v4 dy, kcpu_v4 y) {
  if (!j->dy) return j->kind == ACT_GELU ? gelu4(x) : silu4(x);
  kcpu_v4 g = dy * (j->kind == ACT_GELU ? gelu_grad4(x) : silu_grad4(x));
  return j->acc ? y + g : g;
}

static void act_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  act_job *j = arg;
  kcpu_v4 zero = {0};
  size_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    kcpu_v4 dy = j->dy ? kcpu_load4(j->dy + i) : zero, y = j->acc ? kcpu_load4(j->y + i) : zero;
    kcpu_store4(j->y + i, act_apply(j, kcpu_load4(j->x + i), dy, y));
  }
  if (i < i1) {
    size_t m = i1 - i;
    kcpu_v4 dy = j->dy ? load_part(j->dy + i, m, 0) : zero, y = j->acc ? load_part(j->y + i, m, 0) : zero;
    store_part(j->y + i, act_apply(j, load_part(j->x + i, m, 0), dy, y), m);
  }
}

static void act_run(k_backend *b, act_kind kind, void *y, const void *x, const void *dy, size_t n, int acc) {
  act_job j = {kind, y, x, dy, dy ? acc : 0};
  kcpu_for(b, n, KCPU_GRAIN / 4, act_range, &j);
}

void kcpu_gelu(k_backend *b, void *y, const void *x, size_t n) { act_run(b, ACT_GELU, y, x, NULL, n, 0); }
void kcpu_silu(k_backend *b, void *y, const void *x, size_t n) { act_run(b, ACT_SILU, y, x, NULL, n, 0); }
void kcpu_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) {
  act_run(b, ACT_GELU, dx, x, dy, n, acc);
}
void kcpu_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) {
  act_run(b, ACT_SILU, dx, x, dy, n, acc);
}

/* ---------------------------------------------------------------- arithmetic */
typedef enum { AR_ADD, AR_ADD_INPLACE, AR_MUL, AR_AXPBY, AR_MIX } arith_kind;

typedef struct {
  arith_kind kind;
  float *y;
  const float *a, *c;
  float alpha, beta;
  const float *ka, *kc;   /* mix: per-batch coefficients */
  size_t per;
} arith_job;

static void arith_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  arith_job *j = arg;
  float *y = j->y;
  const float *a = j->a, *c = j->c;
  switch (j->kind) {
  case AR_ADD:
    for (size_t i = i0; i < i1; i++) y[i] = a[i] + c[i];
    break;
  case AR_ADD_INPLACE:
    for (size_t i = i0; i < i1; i++) y[i] += a[i];
    break;
  case AR_MUL:
    for (size_t i = i0; i < i1; i++) y[i] = a[i] * c[i];
    break;
  case AR_AXPBY:
    if (j->beta == 0.0f)
      for (size_t i = i0; i < i1; i++) y[i] = j->alpha * a[i];
    else
      for (size_t i = i0; i < i1; i++) y[i] = j->alpha * a[i] + j->beta * y[i];
    break;
  case AR_MIX:   /* segment by segment of one batch element each */
    for (size_t i = i0; i < i1;) {
      size_t bi = i / j->per, end = (bi + 1) * j->per < i1 ? (bi + 1) * j->per : i1;
      for (; i < end; i++) y[i] = j->ka[bi] * a[i] + j->kc[bi] * c[i];
    }
    break;
  }
}

static void arith_run(k_backend *b, arith_job *j, size_t n) { kcpu_for(b, n, KCPU_GRAIN, arith_range, j); }

void kcpu_add(k_backend *b, void *y, const void *a, const void *c, size_t n) {
  arith_job j = {AR_ADD, y, a, c, 0, 0, NULL, NULL, 1};
  arith_run(b, &j, n);
}

void kcpu_add_inplace(k_backend *b, void *y, const void *x, size_t n) {
  arith_job j = {AR_ADD_INPLACE, y, x, NULL, 0, 0, NULL, NULL, 1};
  arith_run(b, &j, n);
}

void kcpu_mul(k_backend *b, void *y, const void *a, const void *c, size_t n) {
  arith_job j = {AR_MUL, y, a, c, 0, 0, NULL, NULL, 1};
  arith_run(b, &j, n);
}

/* beta == 0 writes alpha x without reading y (so y may hold garbage). */
void kcpu_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n) {
  arith_job j = {AR_AXPBY, y, x, NULL, alpha, beta, NULL, NULL, 1};
  arith_run(b, &j, n);
}

void kcpu_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B,
              size_t per) {
  RDT_ASSERT(B >= 0 && per > 0);
  arith_job j = {AR_MIX, y, x, z, 0, 0, a, c, per};
  arith_run(b, &j, (size_t)B * per);
}

/* ---------------------------------------------------------------- layout */
typedef enum { LAY_MUL_ROWVEC, LAY_COPY2D, LAY_ADD_POS, LAY_ADD_POS_BACKWARD } layout_kind;

typedef struct {
  layout_kind kind;
  float *dst;
  const float *src;
  int dst_ld, src_ld, cols;
  int rows_per_batch, batches;   /* mul_rowvec: rows of one batch; add_pos: T and B */
  int acc;
} layout_job;

/* Rows [r0, r1) of the destination. */
static void layout_rows(void *arg, size_t r0, size_t r1, int worker) {
  (void)worker;
  layout_job *j = arg;
  int n = j->cols;
  for (size_t r = r0; r < r1; r++) {
    float *d = j->dst + r * j->dst_ld;
    const float *s;
    switch (j->kind) {
    case LAY_MUL_ROWVEC:   /* row r of batch r / rows_per_batch */
      s = j->src + (r / j->rows_per_batch) * n;
      for (int i = 0; i < n; i++) d[i] *= s[i];
      break;
    case LAY_COPY2D:
      s = j->src + r * j->src_ld;
      if (j->acc)
        for (int i = 0; i < n; i++) d[i] += s[i];
      else
        memcpy(d, s, (size_t)n * sizeof(float));
      break;
    case LAY_ADD_POS:      /* row r holds token r % T */
      s = j->src + (r % j->rows_per_batch) * n;
      for (int i = 0; i < n; i++) d[i] += s[i];
      break;
    case LAY_ADD_POS_BACKWARD:   /* dpos row r += dy rows r, T + r, 2T + r, ... */
      for (int bt = 0; bt < j->batches; bt++) {
        s = j->src + ((size_t)bt * j->rows_per_batch + r) * n;
        for (int i = 0; i < n; i++) d[i] += s[i];
      }
      break;
    }
  }
}

static void layout_run(k_backend *b, layout_job *j, int rows) {
  RDT_ASSERT(rows >= 0 && j->cols >= 0);
  if (j->cols == 0) return;
  size_t grain = KCPU_GRAIN / (size_t)j->cols;
  kcpu_for(b, (size_t)rows, grain ? grain : 1, layout_rows, j);
}

void kcpu_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim) {
  layout_job j = {LAY_MUL_ROWVEC, y, m, dim, dim, dim, rows, B, 0};
  layout_run(b, &j, B * rows);
}

void kcpu_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc) {
  layout_job j = {LAY_COPY2D, dst, src, dst_ld, src_ld, cols, 0, 0, acc};
  layout_run(b, &j, rows);
}

void kcpu_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim) {
  layout_job j = {LAY_ADD_POS, y, pos, dim, dim, dim, T, B, 0};
  layout_run(b, &j, B * T);
}

void kcpu_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T, int dim) {
  layout_job j = {LAY_ADD_POS_BACKWARD, dpos, dy, dim, dim, dim, T, B, 0};
  layout_run(b, &j, T);
}

/* ---------------------------------------------------------------- timestep embedding */
/* As DiT/RDT compute it in float32: f_i = exp(-ln(1e4) i / half), args t f_i,
 * [cos | sin], and a zero column when dim is odd. */
void kcpu_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim) {
  (void)b;
  int half = dim / 2;
  float *o = out;
  for (int r = 0; r < n; r++) {
    float *row = o + (size_t)r * dim;
    for (int i = 0; i < half; i++) {
      float f = expf(-logf(10000.0f) * (float)i / (float)half);
      float arg = t_host[r] * f;
      row[i] = cosf(arg);
      row[half + i] = sinf(arg);
    }
    if (dim % 2) row[dim - 1] = 0.0f;
  }
}

/* ---------------------------------------------------------------- loss */
typedef struct {
  float *dpred;
  const float *pred, *target;
  float gscale;       /* grad_scale * 2 / n */
  double *partial;    /* per chunk */
} mse_job;

static void mse_range(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  mse_job *j = arg;
  double s = 0.0;
  for (size_t i = i0; i < i1; i++) {
    float d = j->pred[i] - j->target[i];
    s += (double)d * d;
    if (j->dpred) j->dpred[i] = j->gscale * d;
  }
  j->partial[i0 / KCPU_GRAIN] = s;
}

float kcpu_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale) {
  RDT_ASSERT(n > 0);
  size_t nchunks = (n + KCPU_GRAIN - 1) / KCPU_GRAIN;
  mse_job j = {dpred, pred, target, (float)(2.0 * grad_scale / (double)n), rdt_malloc(nchunks * sizeof(double))};
  kcpu_for(b, n, KCPU_GRAIN, mse_range, &j);
  double s = 0.0;
  for (size_t c = 0; c < nchunks; c++) s += j.partial[c];
  free(j.partial);
  return (float)(s / (double)n);
}
