/* kernels/cpu/linear.c: y = x W^T + b and its gradients, on OpenBLAS sgemm.
 *
 * Each product is cut into output tiles whose size depends only on the matrix
 * shapes; every tile is one single-threaded sgemm over the full inner
 * dimension, run as one task of the pool.  No tile splits a sum, so results
 * do not depend on the thread count.
 */
#include <cblas.h>
#include <string.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

/* ---------------------------------------------------------------- tiling */
typedef struct {
  int rows, cols;     /* output matrix */
  int rb, cb;         /* tile size */
  int nr, nc;         /* tiles per dimension */
} tiling;

/* Near-equal tiles of at most 512 x 256 outputs; the longer side is cut once
 * more while there are fewer than 8 tiles of over 4 MFLOP each (never below 32
 * rows or columns).  One tile for products under 2 MFLOP.  Only the shape decides. */
static tiling tile(int rows, int cols, int inner) {
  tiling t = {rows, cols, rows, cols, 1, 1};
  if (2.0 * rows * cols * inner >= (double)(1 << 21)) {
    int pr = (rows + 511) / 512, pc = (cols + 255) / 256;
    for (;;) {
      double rext = (double)rows / pr, cext = (double)cols / pc;
      if (pr * pc >= 8 || 2.0 * rext * cext * inner <= 4e6) break;
      if (rext >= cext && rext >= 64) pr++;
      else if (cext >= 64) pc++;
      else break;
    }
    t.rb = ((rows + pr - 1) / pr + 7) / 8 * 8;
    t.cb = ((cols + pc - 1) / pc + 15) / 16 * 16;
  }
  t.nr = (rows + t.rb - 1) / t.rb;
  t.nc = (cols + t.cb - 1) / t.cb;
  return t;
}

static int tile_count(const tiling *t) { return t->nr * t->nc; }

/* Row and column ranges of tile i. */
static void tile_at(const tiling *t, int i, int *r0, int *nr, int *c0, int *nc) {
  *r0 = (i / t->nc) * t->rb;
  *c0 = (i % t->nc) * t->cb;
  *nr = t->rows - *r0 < t->rb ? t->rows - *r0 : t->rb;
  *nc = t->cols - *c0 < t->cb ? t->cols - *c0 : t->cb;
}

/* ---------------------------------------------------------------- forward */
typedef struct {
  float *y;
  const float *x, *W, *bias;
  int M, N, K;
  tiling t;
} fwd_job;

/* One tile of y: bias rows, then += x W^T. */
static void fwd_task(void *arg, int task, int worker) {
  (void)worker;
  fwd_job *j = arg;
  int m0, mn, n0, nn;
  tile_at(&j->t, task, &m0, &mn, &n0, &nn);
  float *y = j->y + (size_t)m0 * j->N + n0;
  if (j->bias)
    for (int r = 0; r < mn; r++) memcpy(y + (size_t)r * j->N, j->bias + n0, (size_t)nn * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mn, nn, j->K, 1.0f, j->x + (size_t)m0 * j->K, j->K,
              j->W + (size_t)n0 * j->K, j->K, j->bias ? 1.0f : 0.0f, y, j->N);
}

void kcpu_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K) {
  RDT_ASSERT(M >= 0 && N > 0 && K > 0);
  if (M == 0) return;
  fwd_job j = {y, x, W, bias, M, N, K, tile(M, N, K)};
  kcpu_pool_run(kcpu_pool_of(b), tile_count(&j.t), fwd_task, &j);
}

/* The CPU has no fused epilogue: the two ops. */
void kcpu_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M, int N,
                      int K) {
  kcpu_linear(b, pre, x, W, bias, M, N, K);
  kcpu_gelu(b, y, pre, (size_t)M * N);
}

/* ---------------------------------------------------------------- backward */
typedef struct {
  float *dx, *dW, *dbias;
  const float *dy, *x, *W;
  int M, N, K, acc;
  tiling tdx, tdW;
  int ndx, ndW, nbias;   /* tasks of each kind, in this order */
} bwd_job;

#define BIAS_COLS 64

/* dx tile: dx (=|+=) dy W. */
static void bwd_dx(bwd_job *j, int i) {
  int m0, mn, k0, kn;
  tile_at(&j->tdx, i, &m0, &mn, &k0, &kn);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mn, kn, j->N, 1.0f, j->dy + (size_t)m0 * j->N, j->N,
              j->W + k0, j->K, j->acc ? 1.0f : 0.0f, j->dx + (size_t)m0 * j->K + k0, j->K);
}

/* dW tile: dW += dy^T x. */
static void bwd_dW(bwd_job *j, int i) {
  int n0, nn, k0, kn;
  tile_at(&j->tdW, i, &n0, &nn, &k0, &kn);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nn, kn, j->M, 1.0f, j->dy + n0, j->N, j->x + k0, j->K,
              1.0f, j->dW + (size_t)n0 * j->K + k0, j->K);
}

/* dbias columns [c0, c0 + BIAS_COLS): sums over rows in row order. */
static void bwd_dbias(bwd_job *j, int i) {
  int c0 = i * BIAS_COLS, c1 = c0 + BIAS_COLS < j->N ? c0 + BIAS_COLS : j->N;
  float acc[BIAS_COLS] = {0};
  for (int r = 0; r < j->M; r++) {
    const float *row = j->dy + (size_t)r * j->N;
    for (int c = c0; c < c1; c++) acc[c - c0] += row[c];
  }
  for (int c = c0; c < c1; c++) j->dbias[c] += acc[c - c0];
}

static void bwd_task(void *arg, int task, int worker) {
  (void)worker;
  bwd_job *j = arg;
  if (task < j->ndx)
    bwd_dx(j, task);
  else if (task < j->ndx + j->ndW)
    bwd_dW(j, task - j->ndx);
  else
    bwd_dbias(j, task - j->ndx - j->ndW);
}

void kcpu_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x,
                          const void *W, int M, int N, int K, int acc) {
  RDT_ASSERT(M >= 0 && N > 0 && K > 0);
  bwd_job j = {dx, dW, dbias, dy, x, W, M, N, K, acc, tile(M, K, N), tile(N, K, M), 0, 0, 0};
  if (M == 0) return;
  j.ndx = dx ? tile_count(&j.tdx) : 0;
  j.ndW = dW ? tile_count(&j.tdW) : 0;
  j.nbias = dbias ? (N + BIAS_COLS - 1) / BIAS_COLS : 0;
  kcpu_pool_run(kcpu_pool_of(b), j.ndx + j.ndW + j.nbias, bwd_task, &j);
}
