/* kernels/cuda/elementwise.cu: conversions, activations, element-wise and
 * layout ops.  Each op is a small functor run by kc_map (one element per
 * call, grid-stride loop) or kc_colsum; all arithmetic is in float. */
#include "kernels/cuda/kcuda.cuh"

/* ---------------------------------------------------------------- conversions */
template <typename D, typename S>
struct kc_convert_op {
  D *dst;
  const S *src;
  __device__ void operator()(size_t i) const { dst[i] = kc_to<D>(kc_f(src[i])); }
};

void kc_f32_to_act(k_backend *b, void *dst, const float *src, size_t n) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_convert_op<T, float>{(T *)dst, src}));
}

void kc_act_to_f32(k_backend *b, float *dst, const void *src, size_t n) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_convert_op<float, T>{dst, (const T *)src}));
}

/* ---------------------------------------------------------------- activations */
/* GELU-tanh: kc_gelu_sig in kcuda.cuh. */

template <typename T>
struct kc_gelu_op {
  T *y;
  const T *x;
  __device__ void operator()(size_t i) const {
    float v = kc_f(x[i]);
    y[i] = kc_to<T>(v * kc_gelu_sig(v));
  }
};

/* d/dx of x s(2u) = s + 2 x s (1 - s) u',  u' = c (1 + 3 a x^2). */
template <typename T>
struct kc_gelu_backward_op {
  T *dx;
  const T *dy, *x;
  int acc;
  __device__ void operator()(size_t i) const {
    float v = kc_f(x[i]), s = kc_gelu_sig(v);
    float d = s + 2.f * v * s * (1.f - s) * KC_GELU_C * (1.f + 3.f * KC_GELU_A * v * v);
    kc_store(dx, i, kc_f(dy[i]) * d, acc);
  }
};

template <typename T>
struct kc_silu_op {
  T *y;
  const T *x;
  __device__ void operator()(size_t i) const {
    float v = kc_f(x[i]);
    y[i] = kc_to<T>(v / (1.f + expf(-v)));
  }
};

/* d/dx of x s(x) = s (1 + x (1 - s)). */
template <typename T>
struct kc_silu_backward_op {
  T *dx;
  const T *dy, *x;
  int acc;
  __device__ void operator()(size_t i) const {
    float v = kc_f(x[i]);
    float s = 1.f / (1.f + expf(-v));
    kc_store(dx, i, kc_f(dy[i]) * s * (1.f + v * (1.f - s)), acc);
  }
};

void kc_gelu(k_backend *b, void *y, const void *x, size_t n) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_gelu_op<T>{(T *)y, (const T *)x}));
}

void kc_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_gelu_backward_op<T>{(T *)dx, (const T *)dy, (const T *)x, acc}));
}

void kc_silu(k_backend *b, void *y, const void *x, size_t n) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_silu_op<T>{(T *)y, (const T *)x}));
}

void kc_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_silu_backward_op<T>{(T *)dx, (const T *)dy, (const T *)x, acc}));
}

/* ---------------------------------------------------------------- arithmetic */
/* y = alpha a + beta c (add: 1, 1; add_inplace: y = x + y; axpby: y = alpha x + beta y). */
template <typename T>
struct kc_lincomb_op {
  T *y;
  const T *a, *c;
  float alpha, beta;
  __device__ void operator()(size_t i) const { y[i] = kc_to<T>(alpha * kc_f(a[i]) + beta * kc_f(c[i])); }
};

template <typename T>
struct kc_mul_op {
  T *y;
  const T *a, *c;
  __device__ void operator()(size_t i) const { y[i] = kc_to<T>(kc_f(a[i]) * kc_f(c[i])); }
};

static void kc_lincomb(k_backend *b, void *y, float alpha, const void *a, float beta, const void *c, size_t n) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_lincomb_op<T>{(T *)y, (const T *)a, (const T *)c, alpha, beta}));
}

void kc_add(k_backend *b, void *y, const void *a, const void *c, size_t n) { kc_lincomb(b, y, 1.f, a, 1.f, c, n); }
void kc_add_inplace(k_backend *b, void *y, const void *x, size_t n) { kc_lincomb(b, y, 1.f, y, 1.f, x, n); }
void kc_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n) {
  kc_lincomb(b, y, alpha, x, beta, y, n);
}

void kc_mul(k_backend *b, void *y, const void *a, const void *c, size_t n) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), n, kc_mul_op<T>{(T *)y, (const T *)a, (const T *)c}));
}

/* Host arrays (per-batch coefficients, timesteps) travel as kernel arguments,
 * KC_HOST_CHUNK values per launch, so no host-to-device copy (and no
 * synchronisation) is needed. */
#define KC_HOST_CHUNK 128
typedef struct { float v[KC_HOST_CHUNK]; } kc_host_values;

template <typename T>
struct kc_mix_op {
  T *y;
  const T *x, *z;
  kc_host_values a, c;
  size_t per;
  __device__ void operator()(size_t i) const {
    size_t j = i / per;
    y[i] = kc_to<T>(a.v[j] * kc_f(x[i]) + c.v[j] * kc_f(z[i]));
  }
};

void kc_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B, size_t per) {
  for (int b0 = 0; b0 < B; b0 += KC_HOST_CHUNK) {
    int nb = B - b0 < KC_HOST_CHUNK ? B - b0 : KC_HOST_CHUNK;
    kc_host_values ca = {}, cc = {};
    for (int j = 0; j < nb; j++) ca.v[j] = a[b0 + j], cc.v[j] = c[b0 + j];
    size_t off = (size_t)b0 * per;
    KC_DISPATCH(b->act, T, kc_map(kc(b), (size_t)nb * per,
                                  kc_mix_op<T>{(T *)y + off, (const T *)x + off, (const T *)z + off, ca, cc, per}));
  }
}

/* y[b, r, d] *= m[b, d] */
template <typename T>
struct kc_mul_rowvec_op {
  T *y;
  const T *m;
  int rows, dim;
  __device__ void operator()(size_t i) const {
    size_t d = i % dim, bi = i / ((size_t)rows * dim);
    y[i] = kc_to<T>(kc_f(y[i]) * kc_f(m[bi * dim + d]));
  }
};

void kc_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), (size_t)B * rows * dim, kc_mul_rowvec_op<T>{(T *)y, (const T *)m, rows, dim}));
}

/* ---------------------------------------------------------------- layout */
template <typename T>
struct kc_copy2d_op {
  T *dst;
  const T *src;
  int dst_ld, src_ld, cols, acc;
  __device__ void operator()(size_t i) const {
    size_t r = i / cols, c = i % cols;
    kc_store(dst, r * dst_ld + c, kc_f(src[r * src_ld + c]), acc);
  }
};

void kc_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc) {
  KC_DISPATCH(b->act, T, kc_map(kc(b), (size_t)rows * cols,
                                kc_copy2d_op<T>{(T *)dst, (const T *)src, dst_ld, src_ld, cols, acc}));
}

/* y[b, t, d] += pos[t, d]: y seen as B rows of T*dim, pos as one such row. */
template <typename T>
struct kc_add_pos_op {
  T *y;
  const float *pos;
  size_t row;
  __device__ void operator()(size_t i) const { y[i] = kc_to<T>(kc_f(y[i]) + pos[i % row]); }
};

template <typename T>
struct kc_rows_op {
  const T *dy;
  int cols;
  __device__ float operator()(int r, int c) const { return kc_f(dy[(size_t)r * cols + c]); }
};

void kc_add_pos(k_backend *b, void *y, const float *pos, int B, int T_, int dim) {
  size_t row = (size_t)T_ * dim;
  KC_DISPATCH(b->act, T, kc_map(kc(b), (size_t)B * row, kc_add_pos_op<T>{(T *)y, pos, row}));
}

/* dpos[t, d] += sum_b dy[b, t, d], summed over b in order (deterministic). */
void kc_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T_, int dim) {
  KC_REQUIRE((size_t)T_ * dim < (1u << 31), "add_pos_backward: T*dim exceeds int range");
  KC_DISPATCH(b->act, T, kc_colsum(kc(b), dpos, B, T_ * dim, kc_rows_op<T>{(const T *)dy, T_ * dim}));
}

/* out[n, :] = [cos(t f_0..f_{h-1}), sin(t f_0..f_{h-1})], f_i = exp(-ln(1e4) i / h),
 * computed in float32 like the upstream torch code (freqs, then t * freqs).
 * An odd dim leaves the last column zero (as upstream pads). */
template <typename T>
struct kc_timestep_op {
  T *out;
  kc_host_values t;
  int dim, half;
  __device__ void operator()(size_t i) const {
    int n = (int)(i / dim), j = (int)(i % dim);
    if (j >= 2 * half) {
      out[i] = kc_to<T>(0.f);
      return;
    }
    int fi = j < half ? j : j - half;
    float f = expf(-9.210340371976184f * (float)fi / (float)half); /* ln(1e4) */
    float arg = t.v[n] * f;
    out[i] = kc_to<T>(j < half ? cosf(arg) : sinf(arg));
  }
};

void kc_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim) {
  int half = dim / 2;
  for (int n0 = 0; n0 < n; n0 += KC_HOST_CHUNK) {
    int nb = n - n0 < KC_HOST_CHUNK ? n - n0 : KC_HOST_CHUNK;
    kc_host_values t = {};
    for (int j = 0; j < nb; j++) t.v[j] = t_host[n0 + j];
    KC_DISPATCH(b->act, T, kc_map(kc(b), (size_t)nb * dim,
                                  kc_timestep_op<T>{(T *)out + (size_t)n0 * dim, t, dim, half}));
  }
}

/* Stage 2 of kc_colsum (kcuda.cuh). */
__global__ void kc_colsum_finish(float *dst, const float *part, int chunks, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float total = 0.f;
  for (int k = 0; k < chunks; k++) total += part[(size_t)k * cols + c];
  dst[c] += total;
}
