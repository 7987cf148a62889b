/* kernels/cuda/optim.cu: loss, optimizer and fp32 buffer ops.
 *
 * Reductions (mse loss, sum of squares) accumulate in double in two fixed
 * stages: KC_REDUCE_BLOCKS block partials, then one block adds them in index
 * order, so the result depends only on n, never on scheduling. */
#include <math.h>
#include "kernels/cuda/kcuda.cuh"

/* ---------------------------------------------------------------- reductions */
template <typename F>
__global__ void kc_reduce_kernel(double *partials, size_t n, F f) {
  __shared__ double warp_sums[KC_THREADS / 32];
  double acc = 0.0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    acc += f(i);
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < KC_THREADS / 32; w++) total += warp_sums[w];
    partials[blockIdx.x] = total;
  }
}

__global__ void kc_reduce_final_kernel(double *out, const double *partials, int count) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    double total = 0.0;
    for (int i = 0; i < count; i++) total += partials[i];
    *out = total;
  }
}

/* sum of f(i) over [0, n), in double; waits for the result. */
template <typename F>
static double kc_reduce(const kc_state *s, size_t n, F f) {
  size_t want = (n + KC_THREADS - 1) / KC_THREADS;
  int blocks = (int)(want < KC_REDUCE_BLOCKS ? (want ? want : 1) : KC_REDUCE_BLOCKS);
  kc_reduce_kernel<<<blocks, KC_THREADS, 0, s->stream>>>(s->reduce_buf, n, f);
  KC_LAUNCH();
  kc_reduce_final_kernel<<<1, 32, 0, s->stream>>>(s->reduce_buf + KC_REDUCE_BLOCKS, s->reduce_buf, blocks);
  KC_LAUNCH();
  double total = 0.0;
  KC_CUDA(cudaMemcpyAsync(&total, s->reduce_buf + KC_REDUCE_BLOCKS, sizeof total, cudaMemcpyDeviceToHost, s->stream));
  KC_CUDA(cudaStreamSynchronize(s->stream));
  return total;
}

/* ---------------------------------------------------------------- loss */
/* (pred - target)^2, writing dpred = gscale (pred - target) when dpred != NULL. */
template <typename T>
struct kc_mse_op {
  T *dpred;
  const T *pred, *target;
  float gscale;
  __device__ double operator()(size_t i) const {
    float d = kc_f(pred[i]) - kc_f(target[i]);
    if (dpred) dpred[i] = kc_to<T>(gscale * d);
    return (double)d * d;
  }
};

float kc_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale) {
  KC_REQUIRE(n > 0, "mse_loss of zero elements");
  float gscale = (float)(2.0 * grad_scale / (double)n);
  double sum = 0.0;
  KC_DISPATCH(b->act, T, sum = kc_reduce(kc(b), n, kc_mse_op<T>{(T *)dpred, (const T *)pred, (const T *)target, gscale}));
  return (float)(sum / (double)n);
}

/* ---------------------------------------------------------------- optimizer */
/* torch.optim.AdamW, single-tensor form (see kernels.h). */
struct kc_adamw_op {
  float *p, *m, *v;
  const float *g;
  float lr_wd, beta1, beta2, step_size, bc2_sqrt, eps;
  /* Update element i with gradient gi; returns the new parameter. */
  __device__ float update(size_t i, float gi) const {
    float pi = p[i];
    pi -= lr_wd * pi;
    float mi = beta1 * m[i] + (1.f - beta1) * gi;
    float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float pn = pi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    p[i] = pn;
    return pn;
  }
  __device__ void operator()(size_t i) const { update(i, g[i]); }
};

void kc_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
              float beta2, float eps, float wd, int step) {
  KC_REQUIRE(step >= 1, "adamw: step counts from 1");
  double bc1 = 1.0 - pow((double)beta1, step), bc2 = 1.0 - pow((double)beta2, step);
  kc_map(kc(b), n, kc_adamw_op{p, m, v, g, lr * wd, beta1, beta2, (float)(lr / bc1), (float)sqrt(bc2), eps});
}

/* k_adamw_ema: kc_scale_op, kc_adamw_op, kc_ema_op (or a copy for decay 0)
 * and the compute-copy conversion, one element at a time. */
template <typename T>
struct kc_adamw_ema_op {
  kc_adamw_op a;
  float *ema;
  T *wc;
  float gscale, decay, one_minus_decay;
  __device__ void operator()(size_t i) const {
    float gi = a.g[i];
    gi *= gscale;
    float pn = a.update(i, gi);
    ema[i] = decay == 0.f ? pn : ema[i] * decay + one_minus_decay * pn;
    if (wc) wc[i] = kc_to<T>(pn);
  }
};

void kc_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                  float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay) {
  KC_REQUIRE(step >= 1, "adamw: step counts from 1");
  double bc1 = 1.0 - pow((double)beta1, step), bc2 = 1.0 - pow((double)beta2, step);
  kc_adamw_op a{p, m, v, g, lr * wd, beta1, beta2, (float)(lr / bc1), (float)sqrt(bc2), eps};
  float omd = (float)(1.0 - (double)decay);
  if (wc == (void *)p) wc = NULL; /* F32 activations: the master buffer is the compute copy */
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_adamw_ema_op<T>{a, ema, (T *)wc, gscale, decay, omd}));
}

/* RDT's EMAModel.step: ema = decay ema + (1 - decay) p */
struct kc_ema_op {
  float *ema;
  const float *p;
  float decay, one_minus_decay;
  __device__ void operator()(size_t i) const { ema[i] = ema[i] * decay + one_minus_decay * p[i]; }
};

void kc_ema(k_backend *b, float *ema, const float *p, size_t n, float decay) {
  kc_map(kc(b), n, kc_ema_op{ema, p, decay, (float)(1.0 - (double)decay)});
}

struct kc_sq_op {
  const float *x;
  __device__ double operator()(size_t i) const { return (double)x[i] * x[i]; }
};

double kc_sumsq(k_backend *b, const float *x, size_t n) {
  if (n == 0) return 0.0;
  return kc_reduce(kc(b), n, kc_sq_op{x});
}

struct kc_scale_op {
  float *x;
  float s;
  __device__ void operator()(size_t i) const { x[i] *= s; }
};

void kc_scale_f32(k_backend *b, float *x, size_t n, float s) { kc_map(kc(b), n, kc_scale_op{x, s}); }
