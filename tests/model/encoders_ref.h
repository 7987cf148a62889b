/* tests/model/encoders_ref.h: helpers shared by the encoder tests.
 *
 *   - a random-weight checkpoint writer: each tensor is drawn, stored as F32 or
 *     BF16, and handed back in double precision exactly as the file holds it;
 *   - double-precision reference layers written from the definitions in
 *     Hugging Face modeling_siglip.py / modeling_t5.py, independent of
 *     kernels/ and model/: linear, LayerNorm, T5 LayerNorm, GELU-tanh, SiLU,
 *     multi-head attention with an additive bias and a key mask.
 */
#ifndef RDT_TESTS_ENCODERS_REF_H
#define RDT_TESTS_ENCODERS_REF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/tensor.h"

/* ---------------------------------------------------------------- checkpoint writer */

typedef struct {
  rdt_st_writer *w;
  void *data[512];
  double *values[512];
  int n;
  rdt_rng rng;
  rdt_dtype dtype;   /* F32 or BF16 in the file */
} wfile;

static inline void wf_init(wfile *f, uint64_t seed, rdt_dtype dtype) {
  memset(f, 0, sizeof *f);
  f->w = rdt_st_writer_new();
  rdt_rng_seed(&f->rng, seed, 0);
  f->dtype = dtype;
}

/* Add a tensor of `ndim` dims drawn as mean + std * N(0,1); returns its values
 * as stored (bf16-rounded when the file is BF16), owned by the writer. */
static inline double *wf_add(wfile *f, const char *name, int ndim, const int64_t *shape, double mean,
                             double std) {
  size_t n = (size_t)rdt_shape_numel(ndim, shape);
  double *v = malloc(n * sizeof *v);
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = (float)(mean + std * rdt_rng_normal(&f->rng));
  void *stored = x;
  if (f->dtype == RDT_BF16) {
    uint16_t *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = rdt_f32_to_bf16(x[i]);
    for (size_t i = 0; i < n; i++) v[i] = rdt_bf16_to_f32(h[i]);
    free(x);
    stored = h;
  } else {
    for (size_t i = 0; i < n; i++) v[i] = x[i];
  }
  if (rdt_st_writer_add(f->w, name, f->dtype, ndim, shape, stored) < 0) abort();
  f->data[f->n] = stored;
  f->values[f->n++] = v;
  return v;
}

/* 1-D and 2-D shorthands. */
static inline double *wf_vec(wfile *f, const char *name, int64_t n, double mean, double std) {
  return wf_add(f, name, 1, &n, mean, std);
}
static inline double *wf_mat(wfile *f, const char *name, int64_t rows, int64_t cols, double std) {
  const int64_t s[2] = {rows, cols};
  return wf_add(f, name, 2, s, 0.0, std);
}

/* Save the weights and a config.json into dir; 0 or -1. */
static inline int wf_save(wfile *f, const char *dir, const char *config_json) {
  char path[8192];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (rdt_st_writer_save(f->w, path) < 0) return -1;
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *c = fopen(path, "w");
  if (!c) return -1;
  fputs(config_json, c);
  fclose(c);
  return 0;
}

static inline void wf_free(wfile *f) {
  rdt_st_writer_free(f->w);
  for (int i = 0; i < f->n; i++) free(f->data[i]), free(f->values[i]);
  f->n = 0;
}

/* ---------------------------------------------------------------- reference layers (double) */

/* y[M,N] = x[M,K] W[N,K]^T + b[N] (b may be NULL). */
static inline void ref_linear(double *y, const double *x, const double *W, const double *b, int M, int N,
                              int K) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = b ? b[j] : 0.0;
      for (int k = 0; k < K; k++) s += x[(size_t)i * K + k] * W[(size_t)j * K + k];
      y[(size_t)i * N + j] = s;
    }
}

/* torch.nn.LayerNorm: (x - mean) / sqrt(biased var + eps) * w + b, per row. */
static inline void ref_layernorm(double *y, const double *x, const double *w, const double *b, int rows,
                                 int dim, double eps) {
  for (int r = 0; r < rows; r++) {
    const double *xr = x + (size_t)r * dim;
    double mean = 0, var = 0;
    for (int i = 0; i < dim; i++) mean += xr[i];
    mean /= dim;
    for (int i = 0; i < dim; i++) var += (xr[i] - mean) * (xr[i] - mean);
    var /= dim;
    for (int i = 0; i < dim; i++) y[(size_t)r * dim + i] = (xr[i] - mean) / sqrt(var + eps) * w[i] + b[i];
  }
}

/* T5LayerNorm: x / sqrt(mean(x^2) + eps) * w, no centring, no bias. */
static inline void ref_t5_layernorm(double *y, const double *x, const double *w, int rows, int dim,
                                    double eps) {
  for (int r = 0; r < rows; r++) {
    const double *xr = x + (size_t)r * dim;
    double ms = 0;
    for (int i = 0; i < dim; i++) ms += xr[i] * xr[i];
    ms /= dim;
    for (int i = 0; i < dim; i++) y[(size_t)r * dim + i] = xr[i] / sqrt(ms + eps) * w[i];
  }
}

/* gelu_pytorch_tanh / gelu_new. */
static inline double ref_gelu(double x) {
  return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static inline double ref_silu(double x) { return x / (1.0 + exp(-x)); }

/* Multi-head attention on [B, T, H, hd] rows: softmax(scale q.k + bias[h,i,j])
 * over unmasked keys (mask [B, T], NULL = all; bias [H, T, T] or NULL). */
static inline void ref_attention(double *out, const double *q, const double *k, const double *v,
                                 const uint8_t *mask, const double *bias, int B, int T, int H, int hd,
                                 double scale) {
  double *s = malloc((size_t)T * sizeof *s);
  const size_t row = (size_t)H * hd;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        const double *qi = q + ((size_t)b * T + i) * row + (size_t)h * hd;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
          if (mask && !mask[(size_t)b * T + j]) continue;
          const double *kj = k + ((size_t)b * T + j) * row + (size_t)h * hd;
          double dot = 0;
          for (int d = 0; d < hd; d++) dot += qi[d] * kj[d];
          s[j] = scale * dot + (bias ? bias[((size_t)h * T + i) * T + j] : 0.0);
          if (s[j] > mx) mx = s[j];
        }
        for (int j = 0; j < T; j++)
          if (!(mask && !mask[(size_t)b * T + j])) sum += s[j] = exp(s[j] - mx);
        double *oi = out + ((size_t)b * T + i) * row + (size_t)h * hd;
        for (int d = 0; d < hd; d++) {
          double acc = 0;
          for (int j = 0; j < T; j++)
            if (!(mask && !mask[(size_t)b * T + j])) acc += s[j] * v[((size_t)b * T + j) * row + (size_t)h * hd + d];
          oi[d] = acc / sum;
        }
      }
  free(s);
}

/* Relative error ||got - want|| / ||want|| of a float array against doubles. */
static inline double rel_err_f(const float *got, const double *want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Largest |got - want| over n elements. */
static inline double max_abs_diff(const float *got, const double *want, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(got[i] - want[i]) > m || isnan(got[i])) m = isnan(got[i]) ? INFINITY : fabs(got[i] - want[i]);
  return m;
}

#endif
