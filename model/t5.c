/* model/t5.c: the T5 v1.1 encoder, forward only (see t5.h).
 *
 * Facts from Hugging Face transformers modeling_t5.py / configuration_t5.py
 * (T5LayerNorm, T5Attention._relative_position_bucket and compute_bias,
 * T5DenseGatedActDense, T5EncoderModel) and thu-ml/RoboticsDiffusionTransformer
 * models/multimodal_encoder/t5_encoder.py; the code is written from them.
 */
#include "model/t5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"

enum { SLOT_Q, SLOT_K, SLOT_V, SLOT_O, SLOT_WI0, SLOT_WI1, SLOT_WO };
enum { BUF_X, BUF_H, BUF_Q, BUF_K, BUF_V, BUF_A, BUF_F0, BUF_F1, BUF_F2, NBUF };

typedef struct {
  float *ln0, *ln1;
  enc_linear q, k, v, o, wi0, wi1, wo;
} t5_layer;

struct t5 {
  k_backend *b;
  t5_config c;
  rdt_st *own_st;            /* opened by t5_load */
  spm_model *tok;            /* the folder's spiece.model, if any */
  enc_store store;
  const rdt_tensor *embed;   /* shared.weight, read row by row */
  float *rel_table;          /* host [num_buckets, heads] */
  t5_layer *layers;
  float *final_ln;
  void *buf[NBUF];
  size_t cap[NBUF];
  float *bias;               /* device [heads, L, L] for bias_len */
  size_t bias_cap;
  int bias_len;
  uint8_t *mask;             /* device [B, L] */
  size_t mask_cap;
};

/* ================================================================ relative position bias */

int t5_bucket(int relative_position, int num_buckets, int max_distance) {
  int half = num_buckets / 2;
  int bucket = relative_position > 0 ? half : 0;
  int n = abs(relative_position);
  int max_exact = half / 2;
  if (n < max_exact) return bucket + n;
  /* float32 arithmetic as torch evaluates it: log(n / max_exact) / log(max_distance / max_exact) * (half - max_exact) */
  float scale = (float)log((double)max_distance / (double)max_exact);
  float large = logf((float)n / (float)max_exact) / scale * (float)(half - max_exact);
  int v = max_exact + (int)large;
  return bucket + (v < half - 1 ? v : half - 1);
}

void t5_position_bias(const float *table, int heads, int num_buckets, int max_distance, int L,
                      float *bias) {
  int *bucket_of = rdt_malloc((size_t)(2 * L + 1) * sizeof *bucket_of);   /* index: j - i + L */
  for (int r = -L; r <= L; r++) bucket_of[r + L] = t5_bucket(r, num_buckets, max_distance);
  for (int h = 0; h < heads; h++)
    for (int i = 0; i < L; i++)
      for (int j = 0; j < L; j++)
        bias[((size_t)h * L + i) * L + j] = table[(size_t)bucket_of[j - i + L] * heads + h];
  free(bucket_of);
}

/* ================================================================ config and weights */

int t5_config_from_json(const rdt_json *j, t5_config *c) {
  if (enc_cfg_int(j, "d_model", 512, &c->d_model) < 0 || enc_cfg_int(j, "d_kv", 64, &c->d_kv) < 0 ||
      enc_cfg_int(j, "d_ff", 2048, &c->d_ff) < 0 || enc_cfg_int(j, "num_layers", 6, &c->num_layers) < 0 ||
      enc_cfg_int(j, "num_heads", 8, &c->num_heads) < 0 ||
      enc_cfg_int(j, "relative_attention_num_buckets", 32, &c->num_buckets) < 0 ||
      enc_cfg_int(j, "relative_attention_max_distance", 128, &c->max_distance) < 0 ||
      enc_cfg_int(j, "vocab_size", 32128, &c->vocab_size) < 0 ||
      enc_cfg_float(j, "layer_norm_epsilon", 1e-6f, &c->eps) < 0)
    return -1;
  const rdt_json *ff = rdt_json_get(j, "feed_forward_proj");
  const char *proj = ff && ff->type == RDT_JSON_STRING ? ff->string : "relu";
  if (strcmp(proj, "gated-gelu") == 0) c->act = T5_GATED_GELU;
  else if (strcmp(proj, "gated-silu") == 0) c->act = T5_GATED_SILU;
  else return rdt_fail("feed_forward_proj '%s' is not supported (T5 v1.1 uses gated-gelu)", proj);
  if (c->d_model <= 0 || c->d_kv <= 0 || c->d_ff <= 0 || c->num_layers < 1 || c->num_heads <= 0 ||
      c->num_buckets < 4 || c->max_distance <= c->num_buckets / 4 || c->vocab_size <= 0)
    return rdt_fail("inconsistent T5 sizes (d_model %d, d_kv %d, heads %d, layers %d, buckets %d)",
                    c->d_model, c->d_kv, c->num_heads, c->num_layers, c->num_buckets);
  return 0;
}

/* Every tensor the encoder reads, in load order: the embedding table, block
 * 0's relative bias table and the final norm (T5_GLOBALS), then
 * BLOCK_TENSORS per block. */
enum { T5_GLOBALS = 3, BLOCK_TENSORS = 9 };
static int t5_specs(const t5_config *c, const char *embed_name, enc_spec **out) {
  const int64_t d = c->d_model, in = (int64_t)c->num_heads * c->d_kv, ff = c->d_ff;
  const int64_t emb[2] = {c->vocab_size, d}, rel[2] = {c->num_buckets, c->num_heads}, d1[1] = {d};
  const int64_t qd[2] = {in, d}, od[2] = {d, in}, fd[2] = {ff, d}, df[2] = {d, ff};
  enc_spec *v = NULL;
  int n = 0;
  enc_spec_add(&v, &n, ENC_FILL_UNIFORM, 2, emb, "%s", embed_name);
  enc_spec_add(&v, &n, ENC_FILL_UNIFORM, 2, rel, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  enc_spec_add(&v, &n, ENC_FILL_ONES, 1, d1, "encoder.final_layer_norm.weight");
  const struct {
    const char *suffix;
    enc_fill fill;
    int ndim;
    const int64_t *shape;
  } block[BLOCK_TENSORS] = {
    {"0.layer_norm.weight", ENC_FILL_ONES, 1, d1},
    {"1.layer_norm.weight", ENC_FILL_ONES, 1, d1},
    {"0.SelfAttention.q.weight", ENC_FILL_UNIFORM, 2, qd},
    {"0.SelfAttention.k.weight", ENC_FILL_UNIFORM, 2, qd},
    {"0.SelfAttention.v.weight", ENC_FILL_UNIFORM, 2, qd},
    {"0.SelfAttention.o.weight", ENC_FILL_UNIFORM, 2, od},
    {"1.DenseReluDense.wi_0.weight", ENC_FILL_UNIFORM, 2, fd},
    {"1.DenseReluDense.wi_1.weight", ENC_FILL_UNIFORM, 2, fd},
    {"1.DenseReluDense.wo.weight", ENC_FILL_UNIFORM, 2, df},
  };
  for (int l = 0; l < c->num_layers; l++)
    for (int j = 0; j < BLOCK_TENSORS; j++)
      enc_spec_add(&v, &n, block[j].fill, block[j].ndim, block[j].shape, "encoder.block.%d.layer.%s", l,
                   block[j].suffix);
  *out = v;
  return n;
}

/* Convert one block's tensors t[0..BLOCK_TENSORS) (t5_specs order). */
static void load_layer(t5 *m, const rdt_tensor *const *t, t5_layer *L) {
  L->ln0 = enc_upload_f32(m->b, t[0]);
  L->ln1 = enc_upload_f32(m->b, t[1]);
  enc_linear_init(&m->store, &L->q, t[2], SLOT_Q);
  enc_linear_init(&m->store, &L->k, t[3], SLOT_K);
  enc_linear_init(&m->store, &L->v, t[4], SLOT_V);
  enc_linear_init(&m->store, &L->o, t[5], SLOT_O);
  enc_linear_init(&m->store, &L->wi0, t[6], SLOT_WI0);
  enc_linear_init(&m->store, &L->wi1, t[7], SLOT_WI1);
  enc_linear_init(&m->store, &L->wo, t[8], SLOT_WO);
}

t5 *t5_new(k_backend *b, const t5_config *c, const rdt_st *st, enc_mode mode) {
  const char *embed_name = rdt_st_find(st, "shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
  enc_spec *specs;
  int n = t5_specs(c, embed_name, &specs);
  const rdt_tensor **t = rdt_malloc((size_t)n * sizeof *t);
  if (enc_find_all(st, specs, n, t) < 0) {
    free(specs), free(t);
    return NULL;
  }
  t5 *m = rdt_calloc(1, sizeof *m);
  m->b = b;
  m->c = *c;
  const int64_t d = c->d_model, in = (int64_t)c->num_heads * c->d_kv, ff = c->d_ff;
  size_t linear = (size_t)c->num_layers * (size_t)(4 * d * in + 3 * d * ff);
  enc_store_init(&m->store, b, enc_choose_stream(b, mode, linear));
  m->layers = rdt_calloc((size_t)c->num_layers, sizeof *m->layers);
  m->embed = t[0];
  m->rel_table = rdt_malloc((size_t)(c->num_buckets * c->num_heads) * sizeof *m->rel_table);
  enc_read_f32(t[1], 0, (size_t)(c->num_buckets * c->num_heads), m->rel_table);
  m->final_ln = enc_upload_f32(b, t[2]);
  for (int i = 0; i < c->num_layers; i++) load_layer(m, t + T5_GLOBALS + i * BLOCK_TENSORS, &m->layers[i]);
  free(specs), free(t);
  return m;
}

int t5_write_random(const t5_config *c, const char *dir, rdt_dtype dtype, uint64_t seed) {
  char config[640];
  snprintf(config, sizeof config,
           "{\"model_type\": \"t5\", \"d_model\": %d, \"d_kv\": %d, \"d_ff\": %d, \"num_layers\": %d,\n"
           " \"num_heads\": %d, \"relative_attention_num_buckets\": %d, \"relative_attention_max_distance\": %d,\n"
           " \"vocab_size\": %d, \"layer_norm_epsilon\": %g, \"feed_forward_proj\": \"%s\"}\n",
           c->d_model, c->d_kv, c->d_ff, c->num_layers, c->num_heads, c->num_buckets, c->max_distance,
           c->vocab_size, (double)c->eps, c->act == T5_GATED_GELU ? "gated-gelu" : "gated-silu");
  enc_spec *specs;
  int n = t5_specs(c, "shared.weight", &specs);
  int rc = enc_write_random(dir, specs, n, dtype, seed, config);
  free(specs);
  return rc;
}

t5 *t5_load(k_backend *b, const char *dir, enc_mode mode) {
  char *path = rdt_path_join(dir, "config.json");
  rdt_json *j = rdt_json_load(path);
  free(path);
  t5_config c;
  if (!j) return NULL;
  int rc = t5_config_from_json(j, &c);
  rdt_json_free(j);
  if (rc < 0) {
    rdt_fail_ctx("%s/config.json", dir);
    return NULL;
  }
  spm_model *tok = NULL;
  path = rdt_path_join(dir, "spiece.model");
  if (rdt_is_file(path) && !(tok = spm_load(path))) {
    free(path);
    return NULL;
  }
  free(path);
  rdt_st *st = rdt_st_open(dir);
  t5 *m = st ? t5_new(b, &c, st, mode) : NULL;
  if (!m) {
    if (st) rdt_st_close(st);
    spm_free(tok);
    return NULL;
  }
  m->own_st = st;
  m->tok = tok;
  return m;
}

void t5_free(t5 *m) {
  if (!m) return;
  k_backend *b = m->b;
  for (int i = 0; i < m->c.num_layers; i++) {
    t5_layer *L = &m->layers[i];
    if (L->ln0) k_free(b, L->ln0);
    if (L->ln1) k_free(b, L->ln1);
    enc_linear *w[] = {&L->q, &L->k, &L->v, &L->o, &L->wi0, &L->wi1, &L->wo};
    for (size_t j = 0; j < sizeof w / sizeof *w; j++) enc_linear_free(&m->store, w[j]);
  }
  if (m->final_ln) k_free(b, m->final_ln);
  enc_store_free(&m->store);
  for (int i = 0; i < NBUF; i++)
    if (m->buf[i]) k_free(b, m->buf[i]);
  if (m->bias) k_free(b, m->bias);
  if (m->mask) k_free(b, m->mask);
  free(m->rel_table);
  free(m->layers);
  spm_free(m->tok);
  if (m->own_st) rdt_st_close(m->own_st);
  free(m);
}

const t5_config *t5_cfg(const t5 *m) { return &m->c; }
const spm_model *t5_tokenizer(const t5 *m) { return m->tok; }
int t5_streamed(const t5 *m) { return m->store.stream; }

/* ================================================================ forward */

/* Activation buffer `which` with room for n elements. */
static void *act(t5 *m, int which, size_t n) {
  return enc_reserve(m->b, &m->buf[which], &m->cap[which], n * k_act_size(m->b));
}

/* The position bias for length L on the device (recomputed when L changes). */
static const float *position_bias(t5 *m, int L) {
  if (m->bias_len != L) {
    size_t n = (size_t)m->c.num_heads * L * L;
    float *host = rdt_malloc(n * sizeof *host);
    t5_position_bias(m->rel_table, m->c.num_heads, m->c.num_buckets, m->c.max_distance, L, host);
    enc_reserve(m->b, (void **)&m->bias, &m->bias_cap, n * sizeof *host);
    k_upload(m->b, m->bias, host, n * sizeof *host);
    free(host);
    m->bias_len = L;
  }
  return m->bias;
}

/* One block on x [B*L, d]: self-attention with the shared bias, gated FFN. */
static void layer_forward(t5 *m, const t5_layer *L, int B, int T, const uint8_t *mask, const float *bias) {
  k_backend *b = m->b;
  const int d = m->c.d_model, H = m->c.num_heads, hd = m->c.d_kv, in = H * hd, ff = m->c.d_ff;
  const int rows = B * T;
  void *x = m->buf[BUF_X], *h = m->buf[BUF_H], *a = m->buf[BUF_A];
  void *q = m->buf[BUF_Q], *k = m->buf[BUF_K], *v = m->buf[BUF_V];
  void *f0 = m->buf[BUF_F0], *f1 = m->buf[BUF_F1], *f2 = m->buf[BUF_F2];
  k_rmsnorm_meansq(b, h, x, L->ln0, rows, d, m->c.eps);
  k_linear(b, q, h, enc_linear_get(&m->store, &L->q), NULL, rows, in, d);
  k_linear(b, k, h, enc_linear_get(&m->store, &L->k), NULL, rows, in, d);
  k_linear(b, v, h, enc_linear_get(&m->store, &L->v), NULL, rows, in, d);
  k_attention(b, a, NULL, q, k, v, mask, bias, B, T, T, H, hd, 1.0f);
  k_linear(b, h, a, enc_linear_get(&m->store, &L->o), NULL, rows, d, in);
  k_add_inplace(b, x, h, (size_t)rows * d);
  k_rmsnorm_meansq(b, h, x, L->ln1, rows, d, m->c.eps);
  k_linear(b, f0, h, enc_linear_get(&m->store, &L->wi0), NULL, rows, ff, d);
  k_linear(b, f1, h, enc_linear_get(&m->store, &L->wi1), NULL, rows, ff, d);
  if (m->c.act == T5_GATED_GELU) k_gelu(b, f2, f0, (size_t)rows * ff);
  else k_silu(b, f2, f0, (size_t)rows * ff);
  k_mul(b, f0, f2, f1, (size_t)rows * ff);
  k_linear(b, h, f0, enc_linear_get(&m->store, &L->wo), NULL, rows, d, ff);
  k_add_inplace(b, x, h, (size_t)rows * d);
}

/* x = shared[ids]: rows read from the mapped table and uploaded. */
static void embed(t5 *m, const int32_t *ids, size_t n, void *x) {
  const int d = m->c.d_model;
  float *row = rdt_malloc((size_t)d * sizeof *row);
  for (size_t i = 0; i < n; i++) {
    enc_read_f32(m->embed, (size_t)ids[i] * d, (size_t)d, row);
    k_upload_act(m->b, k_act_at(m->b, x, i * d), row, (size_t)d);
  }
  free(row);
}

int t5_forward(t5 *m, const int32_t *ids, const uint8_t *mask, int B, int L, void *out) {
  k_backend *b = m->b;
  const size_t rows = (size_t)B * L;
  const int d = m->c.d_model, in = m->c.num_heads * m->c.d_kv;
  for (size_t i = 0; i < rows; i++)
    if (ids[i] < 0 || ids[i] >= m->c.vocab_size)
      return rdt_fail("token id %d outside the vocabulary of %d", ids[i], m->c.vocab_size);
  void *x = act(m, BUF_X, rows * d);
  act(m, BUF_H, rows * d), act(m, BUF_A, rows * in);
  act(m, BUF_Q, rows * in), act(m, BUF_K, rows * in), act(m, BUF_V, rows * in);
  act(m, BUF_F0, rows * m->c.d_ff), act(m, BUF_F1, rows * m->c.d_ff), act(m, BUF_F2, rows * m->c.d_ff);
  const uint8_t *dmask = NULL;
  if (mask) {
    enc_reserve(b, (void **)&m->mask, &m->mask_cap, rows);
    k_upload(b, m->mask, mask, rows);
    dmask = m->mask;
  }
  const float *bias = position_bias(m, L);
  embed(m, ids, rows, x);
  for (int l = 0; l < m->c.num_layers; l++) layer_forward(m, &m->layers[l], B, L, dmask, bias);
  k_rmsnorm_meansq(b, out, x, m->final_ln, (int)rows, d, m->c.eps);
  return 0;
}

int t5_encode(t5 *m, const int32_t *ids, const uint8_t *mask, int B, int L, float *out) {
  k_backend *b = m->b;
  const size_t total = (size_t)B * L * m->c.d_model;
  void *dev = k_alloc(b, total * k_act_size(b));
  int rc = t5_forward(m, ids, mask, B, L, dev);
  if (rc == 0) k_download_act(b, out, dev, total);
  k_free(b, dev);
  return rc;
}

int t5_encode_text(t5 *m, const char *text, int max_length, float **out, int *len) {
  if (!m->tok) return rdt_fail("no tokenizer: the T5 folder has no spiece.model");
  int *ids;
  int n = spm_encode_t5(m->tok, text, max_length, &ids);
  int32_t *ids32 = rdt_malloc((size_t)n * sizeof *ids32);
  for (int i = 0; i < n; i++) ids32[i] = ids[i];
  free(ids);
  *out = rdt_malloc((size_t)n * m->c.d_model * sizeof **out);
  int rc = t5_encode(m, ids32, NULL, 1, n, *out);
  free(ids32);
  if (rc < 0) {
    free(*out);
    *out = NULL;
    return -1;
  }
  *len = n;
  return 0;
}

/* ================================================================ precomputed embeddings */

/* [A-Za-z0-9] (ASCII, whatever the locale). */
static int ascii_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char *t5_embed_path(const char *dir, const char *instruction) {
  size_t n = strlen(instruction);
  char *name = rdt_malloc(n + 32);
  if (!n) {
    strcpy(name, "empty_lang_embed.safetensors");
  } else {
    for (size_t i = 0; i < n; i++) name[i] = ascii_alnum((unsigned char)instruction[i]) ? instruction[i] : '_';
    strcpy(name + n, ".safetensors");
  }
  char *path = rdt_path_join(dir, name);
  free(name);
  return path;
}

int t5_embed_load(const char *dir, const char *instruction, int dim, int max_len, float **emb, int *len) {
  char *path = t5_embed_path(dir, instruction);
  rdt_st *st = rdt_st_open(path);
  int rc = st ? 0 : -1;
  if (st) {
    const rdt_tensor *t = rdt_st_count(st) == 1 ? rdt_st_get(st, 0) : NULL;
    int nd = t ? t->ndim : 0;
    int64_t L = nd >= 2 ? t->shape[nd - 2] : 0, D = nd >= 2 ? t->shape[nd - 1] : 0;
    if (!t || (nd != 2 && !(nd == 3 && t->shape[0] == 1)) || D != dim || L < 1 || L > max_len) {
      rc = rdt_fail("%s: expected one tensor [L, %d] with 1 <= L <= %d for \"%s\"", path, dim, max_len,
                    instruction);
    } else {
      *len = (int)L;
      *emb = rdt_malloc((size_t)(L * D) * sizeof(float));
      rdt_st_to_f32(t, *emb);
    }
    rdt_st_close(st);
  }
  free(path);
  return rc;
}
