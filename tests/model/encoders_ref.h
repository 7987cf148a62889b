/* tests/model/encoders_ref.h: helpers shared by the encoder tests.
 *
 *   - a random-weight checkpoint writer: each tensor is drawn, stored as F32 or
 *     BF16, and handed back in double precision exactly as the file holds it;
 *   - a random small T5 encoder and its reference forward pass;
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

/* ---------------------------------------------------------------- a random T5 encoder */

enum { T5_REF_MAXL = 3 };

/* Sizes and stored weights of a small T5 v1.1 encoder (32 buckets, distance 128). */
typedef struct {
  int d, dkv, H, ff, V, L;
  double eps;
  double *embed, *rel, *final_ln;
  struct {
    double *ln0, *ln1, *q, *k, *v, *o, *wi0, *wi1, *wo;
  } l[T5_REF_MAXL];
} t5_ref;

/* Sublayers to silence by zeroing their output projection. */
enum { KEEP_ALL = 0, ZERO_ATTN_OUT = 1, ZERO_FFN_OUT = 2, ZERO_BOTH = 3 };

/* Write config.json + model.safetensors of a random T5 encoder (d 32, 4 heads
 * of 8, d_ff 48, `vocab` ids; plus one decoder tensor that must be ignored)
 * into dir; 0 or -1. */
static inline int t5_ref_write(t5_ref *r, wfile *f, const char *dir, int layers, int vocab, rdt_dtype dtype,
                               int zero, uint64_t seed) {
  *r = (t5_ref){.d = 32, .dkv = 8, .H = 4, .ff = 48, .V = vocab, .L = layers, .eps = 1e-6};
  const int64_t d = r->d, in = r->H * r->dkv, ff = r->ff;
  wf_init(f, seed, dtype);
  r->embed = wf_mat(f, "shared.weight", r->V, d, 1.0);
  for (int i = 0; i < layers; i++) {
    char n[160];
#define NAME(s) (snprintf(n, sizeof n, "encoder.block.%d.layer.%s", i, s), n)
    r->l[i].ln0 = wf_vec(f, NAME("0.layer_norm.weight"), d, 1.0, 0.1);
    r->l[i].q = wf_mat(f, NAME("0.SelfAttention.q.weight"), in, d, 0.1);
    r->l[i].k = wf_mat(f, NAME("0.SelfAttention.k.weight"), in, d, 0.1);
    r->l[i].v = wf_mat(f, NAME("0.SelfAttention.v.weight"), in, d, 0.2);
    r->l[i].o = wf_mat(f, NAME("0.SelfAttention.o.weight"), d, in, zero & ZERO_ATTN_OUT ? 0.0 : 0.2);
    if (i == 0) r->rel = wf_mat(f, NAME("0.SelfAttention.relative_attention_bias.weight"), 32, r->H, 1.0);
    r->l[i].ln1 = wf_vec(f, NAME("1.layer_norm.weight"), d, 1.0, 0.1);
    r->l[i].wi0 = wf_mat(f, NAME("1.DenseReluDense.wi_0.weight"), ff, d, 0.25);
    r->l[i].wi1 = wf_mat(f, NAME("1.DenseReluDense.wi_1.weight"), ff, d, 0.25);
    r->l[i].wo = wf_mat(f, NAME("1.DenseReluDense.wo.weight"), d, ff, zero & ZERO_FFN_OUT ? 0.0 : 0.2);
#undef NAME
  }
  r->final_ln = wf_vec(f, "encoder.final_layer_norm.weight", d, 1.0, 0.1);
  wf_mat(f, "decoder.block.0.layer.0.SelfAttention.q.weight", in, d, 1.0);
  char config[1024];
  snprintf(config, sizeof config,
           "{\"architectures\": [\"T5ForConditionalGeneration\"], \"d_model\": %d, \"d_kv\": %d, \"d_ff\": %d,\n"
           " \"num_layers\": %d, \"num_decoder_layers\": 1, \"num_heads\": %d, \"vocab_size\": %d,\n"
           " \"relative_attention_num_buckets\": 32, \"relative_attention_max_distance\": 128,\n"
           " \"layer_norm_epsilon\": 1e-06, \"feed_forward_proj\": \"gated-gelu\", \"tie_word_embeddings\": false}\n",
           r->d, r->dkv, r->ff, layers, r->H, r->V);
  return wf_save(f, dir, config);
}

/* The bucket of relative position rel = key - query, from a table worked out
 * by hand (32 buckets, max distance 128, bidirectional): 16 buckets per
 * direction, keys after the query (rel > 0) add 16.  With n = |rel|: n < 8 is
 * its own bucket; otherwise 8 + floor(8 ln(n/8) / ln(16)) = 8 + floor(2 log2(n/8)),
 * clamped to 15.  2 log2(n/8) reaches k at n = 8 * 2^(k/2): 11.31, 16, 22.63,
 * 32, 45.25, 64, 90.51, 128, so
 *   n:       0..7   8..11  12..15  16..22  23..31  32..45  46..63  64..90  91..
 *   bucket:  n      8      9       10      11      12      13      14      15
 */
static inline int t5_hand_bucket(int rel) {
  static const int first[] = {8, 12, 16, 23, 32, 46, 64, 91};   /* first n of buckets 8..15 */
  int n = rel < 0 ? -rel : rel, bucket = n;
  if (n >= 8) {
    bucket = 8;
    for (int k = 1; k < 8; k++)
      if (n >= first[k]) bucket = 8 + k;
  }
  return bucket + (rel > 0 ? 16 : 0);
}

/* The reference encoder: ids [B, T] (mask [B, T] or NULL) -> out [B, T, d]. */
static inline void t5_ref_forward(const t5_ref *r, const int32_t *ids, const uint8_t *mask, int B, int T, double *out) {
  const int d = r->d, in = r->H * r->dkv, ff = r->ff, rows = B * T;
  double *x = malloc((size_t)rows * d * sizeof *x), *h = malloc((size_t)rows * d * sizeof *h);
  double *q = malloc((size_t)rows * in * sizeof *q), *k = malloc((size_t)rows * in * sizeof *k);
  double *v = malloc((size_t)rows * in * sizeof *v), *a = malloc((size_t)rows * in * sizeof *a);
  double *g0 = malloc((size_t)rows * ff * sizeof *g0), *g1 = malloc((size_t)rows * ff * sizeof *g1);
  double *bias = malloc((size_t)r->H * T * T * sizeof *bias);
  for (int h_ = 0; h_ < r->H; h_++)
    for (int i = 0; i < T; i++)
      for (int j = 0; j < T; j++) bias[((size_t)h_ * T + i) * T + j] = r->rel[t5_hand_bucket(j - i) * r->H + h_];
  for (int t = 0; t < rows; t++) memcpy(x + (size_t)t * d, r->embed + (size_t)ids[t] * d, (size_t)d * sizeof *x);
  for (int l = 0; l < r->L; l++) {
    ref_t5_layernorm(h, x, r->l[l].ln0, rows, d, r->eps);
    ref_linear(q, h, r->l[l].q, NULL, rows, in, d);
    ref_linear(k, h, r->l[l].k, NULL, rows, in, d);
    ref_linear(v, h, r->l[l].v, NULL, rows, in, d);
    ref_attention(a, q, k, v, mask, bias, B, T, r->H, r->dkv, 1.0);   /* no 1/sqrt(d) in T5 */
    ref_linear(h, a, r->l[l].o, NULL, rows, d, in);
    for (size_t i = 0; i < (size_t)rows * d; i++) x[i] += h[i];
    ref_t5_layernorm(h, x, r->l[l].ln1, rows, d, r->eps);
    ref_linear(g0, h, r->l[l].wi0, NULL, rows, ff, d);
    ref_linear(g1, h, r->l[l].wi1, NULL, rows, ff, d);
    for (size_t i = 0; i < (size_t)rows * ff; i++) g0[i] = ref_gelu(g0[i]) * g1[i];
    ref_linear(h, g0, r->l[l].wo, NULL, rows, d, ff);
    for (size_t i = 0; i < (size_t)rows * d; i++) x[i] += h[i];
  }
  ref_t5_layernorm(out, x, r->final_ln, rows, d, r->eps);
  free(x), free(h), free(q), free(k), free(v), free(a), free(g0), free(g1), free(bias);
}

#endif
