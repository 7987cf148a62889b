/* kernels/cuda/norm.cu: row normalisations and the row softmax.
 *
 * One warp per row (KC_ROW_WARPS rows per block); each lane walks the row with
 * stride 32, sums are warp reductions in float.  Forward norms of wide rows
 * use one block per row instead (kc_norm_block_kernel).  Statistics are
 * two-pass (mean first, then squared deviations) for accuracy.  The three forward norms
 * share one kernel:
 *   upstream RmsNorm  y = x r w,            r = 1/sqrt(sum (x - mean)^2 / (dim-1) + eps)
 *   T5 mean square    y = x r w,            r = 1/sqrt(sum x^2 / dim + eps)
 *   LayerNorm         y = (x - mean) r w + bias,  r = 1/sqrt(sum (x - mean)^2 / dim + eps)
 * With x2 (k_add_rmsnorm) the row is first x + x2, rounded to the activation
 * type as k_add rounds it and written to s; the norm reads that sum.
 */
#include "kernels/cuda/kcuda.cuh"

#define KC_ROW_WARPS 8

static unsigned kc_row_blocks(int rows) { return (unsigned)((rows + KC_ROW_WARPS - 1) / KC_ROW_WARPS); }

/* sum over the row of (x - shift)^2, every lane gets it */
template <typename T>
__device__ float kc_row_sqdev(const T *x, int dim, float shift, int lane) {
  float s = 0.f;
  for (int i = lane; i < dim; i += 32) {
    float d = kc_f(x[i]) - shift;
    s += d * d;
  }
  return kc_warp_sum(s);
}

template <typename T>
__device__ float kc_row_mean(const T *x, int dim, int lane) {
  float s = 0.f;
  for (int i = lane; i < dim; i += 32) s += kc_f(x[i]);
  return kc_warp_sum(s) / (float)dim;
}

/* How a forward norm computes its statistic and output (see the file comment). */
typedef struct {
  int centre_stat;  /* deviations from the mean (1) or from 0 (0) */
  int centre_out;   /* subtract the mean from x in the output */
  int bessel;       /* divide by dim-1 instead of dim */
} kc_norm_kind;

/* One row by one warp: yr = norm(xr), *rstd_out = r when not NULL. */
template <typename T>
__device__ __forceinline__ void kc_norm_row(T *yr, float *rstd_out, const T *xr, const float *w, const float *bias,
                                            int dim, float eps, kc_norm_kind kind, int lane) {
  float mean = kind.centre_stat || kind.centre_out ? kc_row_mean(xr, dim, lane) : 0.f;
  float sq = kc_row_sqdev(xr, dim, kind.centre_stat ? mean : 0.f, lane);
  float r = 1.f / sqrtf(sq / (float)(kind.bessel ? dim - 1 : dim) + eps);
  if (rstd_out && lane == 0) *rstd_out = r;
  float shift = kind.centre_out ? mean : 0.f;
  for (int i = lane; i < dim; i += 32)
    yr[i] = kc_to<T>((kc_f(xr[i]) - shift) * r * w[i] + (bias ? bias[i] : 0.f));
}

template <typename T>
__global__ void kc_norm_kernel(T *y, float *rstd, const T *x, const float *w, const float *bias, int rows, int dim,
                               float eps, kc_norm_kind kind, const T *x2, T *s) {
  int row = blockIdx.x * KC_ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const T *xr = x + (size_t)row * dim;
  if (x2) { /* the residual sum first; the warp then reads it back */
    T *sr = s + (size_t)row * dim;
    const T *x2r = x2 + (size_t)row * dim;
    for (int i = lane; i < dim; i += 32) sr[i] = kc_to<T>(kc_f(xr[i]) + kc_f(x2r[i]));
    __syncwarp();
    xr = sr;
  }
  kc_norm_row(y + (size_t)row * dim, rstd ? rstd + row : NULL, xr, w, bias, dim, eps, kind, lane);
}

/* Two RmsNorms of one shape in one launch: rows 0..rows-1 of the grid are the
 * first tensor's, rows..2 rows-1 the second's. */
template <typename T>
struct kc_norm_one {
  T *y;
  float *rstd;
  const T *x;
  const float *w;
};

template <typename T>
__global__ void kc_norm_pair_kernel(kc_norm_one<T> a, kc_norm_one<T> c, int rows, int dim, float eps) {
  int row = blockIdx.x * KC_ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= 2 * rows) return;
  const kc_norm_one<T> &t = row < rows ? a : c;
  if (row >= rows) row -= rows;
  kc_norm_row(t.y + (size_t)row * dim, t.rstd ? t.rstd + row : NULL, t.x + (size_t)row * dim, t.w, (const float *)NULL,
              dim, eps, kc_norm_kind{1, 0, 1}, lane);
}

/* Wide rows (dim 512..4096: the hidden states of RDT, SigLIP, T5): one block
 * of KC_NORM_THREADS per row, the row held in registers (VPT values per
 * thread), so x is read once; a warp per row left most of the GPU idle when
 * rows are few (67 tokens at inference). */
#define KC_NORM_THREADS 256

/* Sum over the block, in a fixed order; every thread gets it.  red: one float
 * per warp; the trailing barrier lets the caller reuse red. */
__device__ float kc_block_sum(float v, float *red) {
  v = kc_warp_sum(v);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float t = 0.f;
  for (int i = 0; i < KC_NORM_THREADS / 32; i++) t += red[i];
  __syncthreads();
  return t;
}

template <typename T, int VPT>
__global__ void kc_norm_block_kernel(T *y, float *rstd, const T *x, const float *w, const float *bias, int rows,
                                     int dim, float eps, kc_norm_kind kind, const T *x2, T *sum) {
  __shared__ float red[KC_NORM_THREADS / 32];
  int row = blockIdx.x;
  if (row >= rows) return;
  const T *xr = x + (size_t)row * dim;
  T *yr = y + (size_t)row * dim;
  float v[VPT], s = 0.f;
#pragma unroll
  for (int k = 0; k < VPT; k++) {
    int i = threadIdx.x + k * KC_NORM_THREADS;
    v[k] = i < dim ? kc_f(xr[i]) : 0.f;
    if (x2 && i < dim) { /* the residual sum, rounded as k_add rounds it */
      T t = kc_to<T>(v[k] + kc_f(x2[(size_t)row * dim + i]));
      sum[(size_t)row * dim + i] = t;
      v[k] = kc_f(t);
    }
    s += v[k];
  }
  float mean = kind.centre_stat || kind.centre_out ? kc_block_sum(s, red) / (float)dim : 0.f;
  float shift = kind.centre_stat ? mean : 0.f, q = 0.f;
#pragma unroll
  for (int k = 0; k < VPT; k++) {
    int i = threadIdx.x + k * KC_NORM_THREADS;
    float d = v[k] - shift;
    if (i < dim) q += d * d;
  }
  float sq = kc_block_sum(q, red);
  float r = 1.f / sqrtf(sq / (float)(kind.bessel ? dim - 1 : dim) + eps);
  if (rstd && threadIdx.x == 0) rstd[row] = r;
  float out_shift = kind.centre_out ? mean : 0.f;
#pragma unroll
  for (int k = 0; k < VPT; k++) {
    int i = threadIdx.x + k * KC_NORM_THREADS;
    if (i < dim) yr[i] = kc_to<T>((v[k] - out_shift) * r * w[i] + (bias ? bias[i] : 0.f));
  }
}

static void kc_norm(k_backend *b, void *y, float *rstd, const void *x, const float *w, const float *bias, int rows,
                    int dim, float eps, kc_norm_kind kind, const void *x2 = NULL, void *sum = NULL) {
  if (rows <= 0) return;
  cudaStream_t st = kc(b)->stream;
  if (dim >= 512 && dim <= 8 * KC_NORM_THREADS) {
    KC_DISPATCH(b->act, T,
                kc_norm_block_kernel<T, 8><<<(unsigned)rows, KC_NORM_THREADS, 0, st>>>(
                    (T *)y, rstd, (const T *)x, w, bias, rows, dim, eps, kind, (const T *)x2, (T *)sum));
  } else if (dim > 8 * KC_NORM_THREADS && dim <= 16 * KC_NORM_THREADS) {
    KC_DISPATCH(b->act, T,
                kc_norm_block_kernel<T, 16><<<(unsigned)rows, KC_NORM_THREADS, 0, st>>>(
                    (T *)y, rstd, (const T *)x, w, bias, rows, dim, eps, kind, (const T *)x2, (T *)sum));
  } else {
    KC_DISPATCH(b->act, T,
                kc_norm_kernel<T><<<kc_row_blocks(rows), KC_ROW_WARPS * 32, 0, st>>>(
                    (T *)y, rstd, (const T *)x, w, bias, rows, dim, eps, kind, (const T *)x2, (T *)sum));
  }
  KC_LAUNCH();
}

void kc_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps) {
  kc_norm(b, y, rstd, x, w, NULL, rows, dim, eps, kc_norm_kind{1, 0, 1});
}

void kc_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w, int rows,
                    int dim, float eps) {
  kc_norm(b, y, rstd, a, w, NULL, rows, dim, eps, kc_norm_kind{1, 0, 1}, c, s);
}

void kc_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1,
                     const void *x1, const float *w1, int rows, int dim, float eps) {
  if (rows <= 0) return;
  if (dim >= 512) { /* wide rows take the block-per-row kernel: two launches */
    kc_rmsnorm(b, y0, rstd0, x0, w0, rows, dim, eps);
    kc_rmsnorm(b, y1, rstd1, x1, w1, rows, dim, eps);
    return;
  }
  KC_DISPATCH(b->act, T,
              kc_norm_pair_kernel<T><<<kc_row_blocks(2 * rows), KC_ROW_WARPS * 32, 0, kc(b)->stream>>>(
                  kc_norm_one<T>{(T *)y0, rstd0, (const T *)x0, w0}, kc_norm_one<T>{(T *)y1, rstd1, (const T *)x1, w1},
                  rows, dim, eps));
  KC_LAUNCH();
}

void kc_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps) {
  kc_norm(b, y, NULL, x, w, NULL, rows, dim, eps, kc_norm_kind{0, 0, 0});
}

void kc_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim, float eps) {
  kc_norm(b, y, NULL, x, w, bias, rows, dim, eps, kc_norm_kind{1, 1, 0});
}

/* ---------------------------------------------------------------- RmsNorm backward */
/* With g = dy w, r = rstd, D = dim, mean = mean(x):
 *   dx_j = r g_j - r^3 (x_j - mean) (sum_i g_i x_i) / (D - 1)
 * since d var / d x_j = 2 (x_j - mean) / (D - 1) (the deviations sum to 0). */
template <typename T>
__global__ void kc_rmsnorm_backward_kernel(T *dx, const T *dy, const T *x, const float *w, const float *rstd,
                                           int rows, int dim, int acc) {
  int row = blockIdx.x * KC_ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  size_t base = (size_t)row * dim;
  const T *xr = x + base, *dyr = dy + base;
  float sx = 0.f, sgx = 0.f;
  for (int i = lane; i < dim; i += 32) {
    float xv = kc_f(xr[i]);
    sx += xv;
    sgx += kc_f(dyr[i]) * w[i] * xv;
  }
  float mean = kc_warp_sum(sx) / (float)dim, gx = kc_warp_sum(sgx);
  float r = rstd[row];
  float c = r * r * r * gx / (float)(dim - 1);
  for (int i = lane; i < dim; i += 32) kc_store(dx, base + i, r * kc_f(dyr[i]) * w[i] - c * (kc_f(xr[i]) - mean), acc);
}

/* dw_j += sum over rows of dy_j x_j r */
template <typename T>
struct kc_rmsnorm_dw_op {
  const T *dy, *x;
  const float *rstd;
  int dim;
  __device__ float operator()(int r, int c) const {
    size_t i = (size_t)r * dim + c;
    return kc_f(dy[i]) * kc_f(x[i]) * rstd[r];
  }
};

void kc_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w,
                         const float *rstd, int rows, int dim, int acc) {
  KC_REQUIRE(rstd != NULL, "rmsnorm_backward needs the rstd saved by the forward pass");
  if (rows <= 0) return;
  kc_state *s = kc(b);
  KC_DISPATCH(b->act, T, {
    if (dx) {
      kc_rmsnorm_backward_kernel<T><<<kc_row_blocks(rows), KC_ROW_WARPS * 32, 0, s->stream>>>(
          (T *)dx, (const T *)dy, (const T *)x, w, rstd, rows, dim, acc);
      KC_LAUNCH();
    }
    if (dw) kc_colsum(s, dw, rows, dim, kc_rmsnorm_dw_op<T>{(const T *)dy, (const T *)x, rstd, dim});
  });
}

/* ---------------------------------------------------------------- softmax */
template <typename T>
__global__ void kc_softmax_kernel(T *y, const T *x, int rows, int cols) {
  int row = blockIdx.x * KC_ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const T *xr = x + (size_t)row * cols;
  T *yr = y + (size_t)row * cols;
  float m = -INFINITY;
  for (int i = lane; i < cols; i += 32) m = fmaxf(m, kc_f(xr[i]));
  m = kc_warp_max(m);
  float s = 0.f;
  for (int i = lane; i < cols; i += 32) s += expf(kc_f(xr[i]) - m);
  float inv = 1.f / kc_warp_sum(s);
  for (int i = lane; i < cols; i += 32) yr[i] = kc_to<T>(expf(kc_f(xr[i]) - m) * inv);
}

void kc_softmax(k_backend *b, void *y, const void *x, int rows, int cols) {
  if (rows <= 0) return;
  KC_DISPATCH(b->act, T,
              kc_softmax_kernel<T><<<kc_row_blocks(rows), KC_ROW_WARPS * 32, 0, kc(b)->stream>>>(
                  (T *)y, (const T *)x, rows, cols));
  KC_LAUNCH();
}
