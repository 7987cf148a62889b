/* kernels/cpu/norm.c: row normalisations (RmsNorm in the timm 1.0.3 variance
 * form and its backward, T5's mean-square norm, LayerNorm) and row softmax.
 *
 * Rows are independent, so rows are split into fixed chunks; the weight
 * gradient of RmsNorm sums per-chunk partials in chunk order.
 */
#include <math.h>
#include <stdlib.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

/* ---------------------------------------------------------------- row helpers */
/* sum x[i] */
static float row_sum(const float *x, int n) {
  kcpu_v4 acc = {0};
  int i = 0;
  for (; i + 4 <= n; i += 4) acc += kcpu_load4(x + i);
  float s = kcpu_hsum4(acc);
  for (; i < n; i++) s += x[i];
  return s;
}

/* sum (x[i] - mu)^2 */
static float row_sumsq_dev(const float *x, float mu, int n) {
  kcpu_v4 acc = {0};
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    kcpu_v4 d = kcpu_load4(x + i) - mu;
    acc += d * d;
  }
  float s = kcpu_hsum4(acc);
  for (; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
  return s;
}

/* sum a[i] b[i] c[i] (c may be NULL: then sum a[i] b[i]) */
static float row_dot3(const float *a, const float *b, const float *c, int n) {
  kcpu_v4 acc = {0};
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    kcpu_v4 p = kcpu_load4(a + i) * kcpu_load4(b + i);
    acc += c ? p * kcpu_load4(c + i) : p;
  }
  float s = kcpu_hsum4(acc);
  for (; i < n; i++) s += a[i] * b[i] * (c ? c[i] : 1.0f);
  return s;
}

/* y = (x - shift) * r * w + bias (bias may be NULL) */
static void row_affine(float *y, const float *x, float shift, float r, const float *w, const float *bias, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    kcpu_v4 v = (kcpu_load4(x + i) - shift) * r * kcpu_load4(w + i);
    kcpu_store4(y + i, bias ? v + kcpu_load4(bias + i) : v);
  }
  for (; i < n; i++) y[i] = (x[i] - shift) * r * w[i] + (bias ? bias[i] : 0.0f);
}

/* acc += a * b * s */
static void row_axpy2(float *acc, const float *a, const float *b, float s, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) kcpu_store4(acc + i, kcpu_load4(acc + i) + kcpu_load4(a + i) * kcpu_load4(b + i) * s);
  for (; i < n; i++) acc[i] += a[i] * b[i] * s;
}

/* Rows per task for rows of `dim` elements. */
static size_t rows_grain(int dim) {
  size_t g = KCPU_GRAIN / (size_t)(dim > 0 ? dim : 1);
  return g > 0 ? g : 1;
}

/* ---------------------------------------------------------------- forward norms */
typedef enum { NORM_RMS_VAR, NORM_MEANSQ, NORM_LAYER } norm_kind;

typedef struct {
  norm_kind kind;
  float *y, *rstd;
  const float *x, *w, *bias;
  int dim;
  float eps;
} norm_job;

static void norm_rows(void *arg, size_t r0, size_t r1, int worker) {
  (void)worker;
  norm_job *j = arg;
  int n = j->dim;
  for (size_t r = r0; r < r1; r++) {
    const float *x = j->x + r * n;
    float *y = j->y + r * n;
    float mu = row_sum(x, n) / (float)n;
    float rs;
    if (j->kind == NORM_RMS_VAR) {
      rs = 1.0f / sqrtf(row_sumsq_dev(x, mu, n) / (float)(n - 1) + j->eps);
      row_affine(y, x, 0.0f, rs, j->w, NULL, n);
    } else if (j->kind == NORM_MEANSQ) {
      rs = 1.0f / sqrtf(row_dot3(x, x, NULL, n) / (float)n + j->eps);
      row_affine(y, x, 0.0f, rs, j->w, NULL, n);
    } else {
      rs = 1.0f / sqrtf(row_sumsq_dev(x, mu, n) / (float)n + j->eps);
      row_affine(y, x, mu, rs, j->w, j->bias, n);
    }
    if (j->rstd) j->rstd[r] = rs;
  }
}

static void norm_run(k_backend *b, norm_job *j, int rows) {
  RDT_ASSERT(rows >= 0 && j->dim > 0);
  kcpu_for(b, (size_t)rows, rows_grain(j->dim), norm_rows, j);
}

void kcpu_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps) {
  RDT_ASSERT(dim >= 2);   /* the unbiased variance needs two elements */
  norm_job j = {NORM_RMS_VAR, y, rstd, x, w, NULL, dim, eps};
  norm_run(b, &j, rows);
}

/* The two ops (one pass only matters on a GPU). */
void kcpu_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w,
                      int rows, int dim, float eps) {
  kcpu_add(b, s, a, c, (size_t)rows * dim);
  kcpu_rmsnorm(b, y, rstd, s, w, rows, dim, eps);
}

void kcpu_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1,
                       const void *x1, const float *w1, int rows, int dim, float eps) {
  kcpu_rmsnorm(b, y0, rstd0, x0, w0, rows, dim, eps);
  kcpu_rmsnorm(b, y1, rstd1, x1, w1, rows, dim, eps);
}

void kcpu_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps) {
  norm_job j = {NORM_MEANSQ, y, NULL, x, w, NULL, dim, eps};
  norm_run(b, &j, rows);
}

void kcpu_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim,
                    float eps) {
  norm_job j = {NORM_LAYER, y, NULL, x, w, bias, dim, eps};
  norm_run(b, &j, rows);
}

/* ---------------------------------------------------------------- RmsNorm backward */
/* With mu = mean(x), var = sum (x - mu)^2 / (N - 1), r = (var + eps)^-1/2 and
 * y_j = x_j r w_j:  dr/dx_i = -r^3 (x_i - mu) / (N - 1) (the mean's own
 * derivative cancels because sum (x - mu) = 0), so with g = dy * w,
 *   dx_i = r g_i - r^3 (x_i - mu) / (N - 1) * sum_j g_j x_j,
 *   dw_j = sum_rows dy_j x_j r. */
typedef struct {
  float *dx, *dw_part;
  const float *dy, *x, *w, *rstd;
  int rows, dim, acc;
  size_t grain;
  float *dw;
  int nchunks;
} rms_bwd_job;

static void rms_bwd_chunk(void *arg, int task, int worker) {
  (void)worker;
  rms_bwd_job *j = arg;
  int n = j->dim;
  size_t r0 = (size_t)task * j->grain, r1 = r0 + j->grain < (size_t)j->rows ? r0 + j->grain : (size_t)j->rows;
  float *part = j->dw_part ? j->dw_part + (size_t)task * n : NULL;
  if (part)
    for (int i = 0; i < n; i++) part[i] = 0.0f;
  for (size_t r = r0; r < r1; r++) {
    const float *x = j->x + r * n, *dy = j->dy + r * n;
    float rs = j->rstd[r];
    if (part) row_axpy2(part, dy, x, rs, n);
    if (!j->dx) continue;
    float mu = row_sum(x, n) / (float)n;
    float s = row_dot3(dy, j->w, x, n);
    float c = rs * rs * rs * s / (float)(n - 1);
    float *dx = j->dx + r * n;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      kcpu_v4 g = rs * kcpu_load4(dy + i) * kcpu_load4(j->w + i) - c * (kcpu_load4(x + i) - mu);
      kcpu_store4(dx + i, j->acc ? kcpu_load4(dx + i) + g : g);
    }
    for (; i < n; i++) {
      float g = rs * dy[i] * j->w[i] - c * (x[i] - mu);
      dx[i] = j->acc ? dx[i] + g : g;
    }
  }
}

/* dw[i] += partials of every chunk, in chunk order. */
static void rms_bwd_reduce(void *arg, size_t i0, size_t i1, int worker) {
  (void)worker;
  rms_bwd_job *j = arg;
  for (size_t i = i0; i < i1; i++) {
    float s = 0.0f;
    for (int c = 0; c < j->nchunks; c++) s += j->dw_part[(size_t)c * j->dim + i];
    j->dw[i] += s;
  }
}

void kcpu_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w,
                           const float *rstd, int rows, int dim, int acc) {
  RDT_ASSERT(dim >= 2 && rows >= 0 && rstd);
  if (rows == 0) return;
  size_t grain = rows_grain(dim);
  rms_bwd_job j = {dx, NULL, dy, x, w, rstd, rows, dim, acc, grain, dw, (int)(((size_t)rows + grain - 1) / grain)};
  if (dw) j.dw_part = rdt_malloc((size_t)j.nchunks * dim * sizeof(float));
  kcpu_pool_run(kcpu_pool_of(b), j.nchunks, rms_bwd_chunk, &j);
  if (dw) kcpu_for(b, (size_t)dim, 1024, rms_bwd_reduce, &j);
  free(j.dw_part);
}

/* ---------------------------------------------------------------- softmax */
typedef struct {
  float *y;
  const float *x;
  int cols;
} softmax_job;

static void softmax_rows(void *arg, size_t r0, size_t r1, int worker) {
  (void)worker;
  softmax_job *j = arg;
  for (size_t r = r0; r < r1; r++) {
    const float *x = j->x + r * j->cols;
    float *y = j->y + r * j->cols;
    float mx = -INFINITY;
    for (int i = 0; i < j->cols; i++) mx = x[i] > mx ? x[i] : mx;
    float inv = 1.0f / kcpu_exp_shift_sum(y, x, j->cols, mx);
    for (int i = 0; i < j->cols; i++) y[i] *= inv;
  }
}

void kcpu_softmax(k_backend *b, void *y, const void *x, int rows, int cols) {
  RDT_ASSERT(rows >= 0 && cols > 0);
  softmax_job j = {y, x, cols};
  kcpu_for(b, (size_t)rows, rows_grain(cols), softmax_rows, &j);
}
