/* tests/kernels/kref.h: plain double-precision references for the kernel
 * tests, random inputs and comparison helpers.  Written from the formulas in
 * kernels/kernels.h (and the upstream definitions they cite), independently
 * of kernels/cpu/. */
#ifndef RDT_TESTS_KREF_H
#define RDT_TESTS_KREF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "kernels/kernels.h"
#include "test.h"

/* ---------------------------------------------------------------- random inputs */
static uint64_t kref_state_ = 0x9E3779B97F4A7C15ull;

static inline void kref_seed(uint64_t s) { kref_state_ = s * 0x9E3779B97F4A7C15ull + 1; }

/* Uniform in [-1, 1) (splitmix64). */
static inline double kref_uniform(void) {
  uint64_t z = (kref_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

/* n floats uniform in [lo, hi). */
static inline float *kref_rand(size_t n, double lo, double hi) {
  float *x = rdt_malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * 0.5 * (kref_uniform() + 1.0));
  return x;
}

static inline double *kref_to_double(const float *x, size_t n) {
  double *d = rdt_malloc((n ? n : 1) * sizeof(double));
  for (size_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

/* The CPU backend with `threads` threads, or exit 1 with the reason. */
static inline k_backend *kref_open_cpu(int threads) {
  k_backend *b = k_open("cpu", threads);
  if (!b) {
    fprintf(stderr, "k_open(cpu): %s\n", rdt_error());
    exit(1);
  }
  return b;
}

/* An activation buffer on backend b holding host floats x. */
static inline void *kref_up(k_backend *b, const float *x, size_t n) {
  void *d = k_alloc(b, (n ? n : 1) * k_act_size(b));
  k_upload_act(b, d, x, n);
  return d;
}

static inline float *kref_down(k_backend *b, const void *d, size_t n) {
  float *x = rdt_malloc((n ? n : 1) * sizeof(float));
  k_download_act(b, x, d, n);
  return x;
}

/* ---------------------------------------------------------------- comparison */
/* max |got - want| / max |want| (absolute when want is all zero). */
static inline double kref_err(const float *got, const double *want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= num)) num = d;   /* NaN sticks */
    if (fabs(want[i]) > den) den = fabs(want[i]);
  }
  return den > 0 ? num / den : num;
}

#define KREF_CHECK(what, got, want, n, tol)                                           \
  do {                                                                                \
    double e_ = kref_err(got, want, n);                                               \
    CHECK_MSG(e_ <= (tol), "%s: error %.3g > %.3g", what, e_, (double)(tol));         \
  } while (0)

/* ---------------------------------------------------------------- references */
/* y[M,N] = x[M,K] W[N,K]^T + b */
static inline void kref_linear(double *y, const double *x, const double *W, const double *b, int M, int N, int K) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = b ? b[n] : 0.0;
      for (int k = 0; k < K; k++) s += x[(size_t)m * K + k] * W[(size_t)n * K + k];
      y[(size_t)m * N + n] = s;
    }
}

/* timm 1.0.3 RmsNorm: x * (var_unbiased(x) + eps)^-1/2 * w. */
static inline void kref_rmsnorm(double *y, const double *x, const double *w, int rows, int dim, double eps) {
  for (int r = 0; r < rows; r++) {
    const double *xr = x + (size_t)r * dim;
    double mu = 0, var = 0;
    for (int i = 0; i < dim; i++) mu += xr[i];
    mu /= dim;
    for (int i = 0; i < dim; i++) var += (xr[i] - mu) * (xr[i] - mu);
    var /= dim - 1;
    for (int i = 0; i < dim; i++) y[(size_t)r * dim + i] = xr[i] / sqrt(var + eps) * w[i];
  }
}

/* GELU-tanh 0.5 x (1 + tanh u); for u < -1, where 1 + tanh u cancels even in
 * double, the same value as x e^{2u} / (1 + e^{2u}). */
static inline double kref_gelu(double x) {
  double u = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return u > -1 ? 0.5 * x * (1.0 + tanh(u)) : x * exp(2 * u) / (1 + exp(2 * u));
}
static inline double kref_silu(double x) { return x / (1.0 + exp(-x)); }

/* Attention as kernels.h defines it; lse may be NULL. */
static inline void kref_attention(double *out, double *lse, const double *q, const double *k, const double *v,
                                  const uint8_t *mask, const double *bias, int B, int Tq, int Tk, int nh, int hd,
                                  double scale) {
  double *s = rdt_malloc((size_t)Tk * sizeof(double));
  for (int b = 0; b < B; b++)
    for (int h = 0; h < nh; h++)
      for (int i = 0; i < Tq; i++) {
        const double *qi = q + (((size_t)b * Tq + i) * nh + h) * hd;
        double mx = -INFINITY;
        for (int j = 0; j < Tk; j++) {
          const double *kj = k + (((size_t)b * Tk + j) * nh + h) * hd;
          double d = 0;
          for (int c = 0; c < hd; c++) d += qi[c] * kj[c];
          s[j] = scale * d + (bias ? bias[((size_t)h * Tq + i) * Tk + j] : 0.0);
          if (mask && !mask[(size_t)b * Tk + j]) s[j] = -INFINITY;
          if (s[j] > mx) mx = s[j];
        }
        double *o = out + (((size_t)b * Tq + i) * nh + h) * hd;
        for (int c = 0; c < hd; c++) o[c] = 0.0;
        if (lse) lse[((size_t)b * nh + h) * Tq + i] = -INFINITY;
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int j = 0; j < Tk; j++) sum += s[j] = exp(s[j] - mx);
        for (int j = 0; j < Tk; j++)
          for (int c = 0; c < hd; c++) o[c] += s[j] / sum * v[(((size_t)b * Tk + j) * nh + h) * hd + c];
        if (lse) lse[((size_t)b * nh + h) * Tq + i] = mx + log(sum);
      }
  free(s);
}

/* sum_i w[i] f[i] */
static inline double kref_dot(const double *w, const double *f, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += w[i] * f[i];
  return s;
}

#endif
