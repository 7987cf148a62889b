/* model/siglip.c: the SigLIP vision tower, forward only (see siglip.h).
 *
 * Facts from Hugging Face transformers modeling_siglip.py / configuration_siglip.py
 * (SiglipVisionEmbeddings, SiglipEncoderLayer, SiglipVisionTransformer); the
 * code is written from those descriptions.
 */
#include "model/siglip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"

enum { SLOT_Q, SLOT_K, SLOT_V, SLOT_O, SLOT_FC1, SLOT_FC2, SLOT_PATCH };
enum { BUF_IN, BUF_X, BUF_H, BUF_Q, BUF_K, BUF_V, BUF_A, BUF_MLP, BUF_MLP2, NBUF };
enum { CHUNK_IMAGES = 16 };   /* images per forward pass (bounds activation memory) */

typedef struct {
  float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  enc_linear q, k, v, o, fc1, fc2;
  float *bq, *bk, *bv, *bo, *b1, *b2;
} siglip_layer;

struct siglip {
  k_backend *b;
  siglip_config c;
  int grid, tokens, patch_dim;   /* patches per side, per image, values per patch */
  rdt_st *own_st;                /* opened by siglip_load */
  enc_store store;
  enc_linear patch;
  float *patch_b, *pos;
  siglip_layer *layers;
  float *post_w, *post_b;
  void *buf[NBUF];
  size_t cap[NBUF];
  float *host_patches;
  /* constant-colour cache: the channel values and the encoded tokens */
  float *cache_key;
  void *cache_out;
  void *tokens_out;      /* siglip_encode_device's reused output buffer */
  size_t tokens_bytes;
  int cache_valid;
  long cache_hits;
};

/* ================================================================ config and weights */

int siglip_config_from_json(const rdt_json *j, siglip_config *c) {
  const rdt_json *v = rdt_json_get(j, "vision_config");
  if (v && v->type == RDT_JSON_OBJECT) j = v;
  if (enc_cfg_int(j, "hidden_size", 768, &c->hidden_size) < 0 ||
      enc_cfg_int(j, "intermediate_size", 3072, &c->intermediate_size) < 0 ||
      enc_cfg_int(j, "num_hidden_layers", 12, &c->num_layers) < 0 ||
      enc_cfg_int(j, "num_attention_heads", 12, &c->num_heads) < 0 ||
      enc_cfg_int(j, "num_channels", 3, &c->num_channels) < 0 ||
      enc_cfg_int(j, "image_size", 224, &c->image_size) < 0 ||
      enc_cfg_int(j, "patch_size", 16, &c->patch_size) < 0 ||
      enc_cfg_float(j, "layer_norm_eps", 1e-6f, &c->eps) < 0)
    return -1;
  const rdt_json *act = rdt_json_get(j, "hidden_act");
  if (act && act->type == RDT_JSON_STRING && strcmp(act->string, "gelu_pytorch_tanh") != 0 &&
      strcmp(act->string, "gelu_new") != 0)
    return rdt_fail("hidden_act '%s' is not supported (only the tanh GELU)", act->string);
  if (c->hidden_size <= 0 || c->num_heads <= 0 || c->hidden_size % c->num_heads || c->num_layers < 0 ||
      c->intermediate_size <= 0 || c->num_channels <= 0 || c->patch_size <= 0 ||
      c->image_size < c->patch_size)
    return rdt_fail("inconsistent SigLIP sizes (hidden %d, heads %d, image %d, patch %d)",
                    c->hidden_size, c->num_heads, c->image_size, c->patch_size);
  return 0;
}

/* Every tensor the tower reads, in load order: the embeddings and the
 * post-layernorm (SIGLIP_GLOBALS), then LAYER_TENSORS per layer. */
enum { SIGLIP_GLOBALS = 5, LAYER_TENSORS = 16 };
static int siglip_specs(const siglip_config *c, enc_spec **out) {
  const int64_t D = c->hidden_size, I = c->intermediate_size, G = c->image_size / c->patch_size;
  const int64_t pw[4] = {D, c->num_channels, c->patch_size, c->patch_size}, pos[2] = {G * G, D};
  const int64_t d1[1] = {D}, i1[1] = {I}, dd[2] = {D, D}, id[2] = {I, D}, di[2] = {D, I};
  enc_spec *v = NULL;
  int n = 0;
  enc_spec_add(&v, &n, ENC_FILL_UNIFORM, 4, pw, "vision_model.embeddings.patch_embedding.weight");
  enc_spec_add(&v, &n, ENC_FILL_ZEROS, 1, d1, "vision_model.embeddings.patch_embedding.bias");
  enc_spec_add(&v, &n, ENC_FILL_UNIFORM, 2, pos, "vision_model.embeddings.position_embedding.weight");
  enc_spec_add(&v, &n, ENC_FILL_ONES, 1, d1, "vision_model.post_layernorm.weight");
  enc_spec_add(&v, &n, ENC_FILL_ZEROS, 1, d1, "vision_model.post_layernorm.bias");
  const struct {
    const char *suffix;
    enc_fill fill;
    int ndim;
    const int64_t *shape;
  } layer[LAYER_TENSORS] = {
    {"layer_norm1.weight", ENC_FILL_ONES, 1, d1},          {"layer_norm1.bias", ENC_FILL_ZEROS, 1, d1},
    {"layer_norm2.weight", ENC_FILL_ONES, 1, d1},          {"layer_norm2.bias", ENC_FILL_ZEROS, 1, d1},
    {"self_attn.q_proj.weight", ENC_FILL_UNIFORM, 2, dd},  {"self_attn.k_proj.weight", ENC_FILL_UNIFORM, 2, dd},
    {"self_attn.v_proj.weight", ENC_FILL_UNIFORM, 2, dd},  {"self_attn.out_proj.weight", ENC_FILL_UNIFORM, 2, dd},
    {"mlp.fc1.weight", ENC_FILL_UNIFORM, 2, id},           {"mlp.fc2.weight", ENC_FILL_UNIFORM, 2, di},
    {"self_attn.q_proj.bias", ENC_FILL_ZEROS, 1, d1},      {"self_attn.k_proj.bias", ENC_FILL_ZEROS, 1, d1},
    {"self_attn.v_proj.bias", ENC_FILL_ZEROS, 1, d1},      {"self_attn.out_proj.bias", ENC_FILL_ZEROS, 1, d1},
    {"mlp.fc1.bias", ENC_FILL_ZEROS, 1, i1},               {"mlp.fc2.bias", ENC_FILL_ZEROS, 1, d1},
  };
  for (int l = 0; l < c->num_layers; l++)
    for (int j = 0; j < LAYER_TENSORS; j++)
      enc_spec_add(&v, &n, layer[j].fill, layer[j].ndim, layer[j].shape, "vision_model.encoder.layers.%d.%s", l,
                   layer[j].suffix);
  *out = v;
  return n;
}

/* Convert one layer's tensors t[0..LAYER_TENSORS) (siglip_specs order). */
static void load_layer(siglip *m, const rdt_tensor *const *t, siglip_layer *L) {
  k_backend *b = m->b;
  L->ln1_w = enc_upload_f32(b, t[0]), L->ln1_b = enc_upload_f32(b, t[1]);
  L->ln2_w = enc_upload_f32(b, t[2]), L->ln2_b = enc_upload_f32(b, t[3]);
  enc_linear_init(&m->store, &L->q, t[4], SLOT_Q);
  enc_linear_init(&m->store, &L->k, t[5], SLOT_K);
  enc_linear_init(&m->store, &L->v, t[6], SLOT_V);
  enc_linear_init(&m->store, &L->o, t[7], SLOT_O);
  enc_linear_init(&m->store, &L->fc1, t[8], SLOT_FC1);
  enc_linear_init(&m->store, &L->fc2, t[9], SLOT_FC2);
  L->bq = enc_upload_f32(b, t[10]), L->bk = enc_upload_f32(b, t[11]);
  L->bv = enc_upload_f32(b, t[12]), L->bo = enc_upload_f32(b, t[13]);
  L->b1 = enc_upload_f32(b, t[14]), L->b2 = enc_upload_f32(b, t[15]);
}

siglip *siglip_new(k_backend *b, const siglip_config *c, const rdt_st *st, enc_mode mode) {
  enc_spec *specs;
  int n = siglip_specs(c, &specs);
  const rdt_tensor **t = rdt_malloc((size_t)n * sizeof *t);
  if (enc_find_all(st, specs, n, t) < 0) {
    free(specs), free(t);
    return NULL;
  }
  siglip *m = rdt_calloc(1, sizeof *m);
  m->b = b;
  m->c = *c;
  m->grid = c->image_size / c->patch_size;
  m->tokens = m->grid * m->grid;
  m->patch_dim = c->num_channels * c->patch_size * c->patch_size;
  const int64_t D = c->hidden_size, I = c->intermediate_size;
  size_t linear = (size_t)c->num_layers * (size_t)(4 * D * D + 2 * D * I) + (size_t)(D * m->patch_dim);
  enc_store_init(&m->store, b, enc_choose_stream(b, mode, linear));
  m->layers = rdt_calloc((size_t)(c->num_layers > 0 ? c->num_layers : 1), sizeof *m->layers);
  enc_linear_init(&m->store, &m->patch, t[0], SLOT_PATCH);
  m->patch_b = enc_upload_f32(b, t[1]);
  m->pos = enc_upload_f32(b, t[2]);
  m->post_w = enc_upload_f32(b, t[3]);
  m->post_b = enc_upload_f32(b, t[4]);
  for (int i = 0; i < c->num_layers; i++) load_layer(m, t + SIGLIP_GLOBALS + i * LAYER_TENSORS, &m->layers[i]);
  m->cache_key = rdt_malloc((size_t)c->num_channels * sizeof *m->cache_key);
  free(specs), free(t);
  return m;
}

int siglip_write_random(const siglip_config *c, const char *dir, rdt_dtype dtype, uint64_t seed) {
  char config[512];
  snprintf(config, sizeof config,
           "{\"model_type\": \"siglip_vision_model\", \"hidden_size\": %d, \"intermediate_size\": %d,\n"
           " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_channels\": %d, \"image_size\": %d,\n"
           " \"patch_size\": %d, \"layer_norm_eps\": %g, \"hidden_act\": \"gelu_pytorch_tanh\"}\n",
           c->hidden_size, c->intermediate_size, c->num_layers, c->num_heads, c->num_channels, c->image_size,
           c->patch_size, (double)c->eps);
  enc_spec *specs;
  int n = siglip_specs(c, &specs);
  int rc = enc_write_random(dir, specs, n, dtype, seed, config);
  free(specs);
  return rc;
}

siglip *siglip_load(k_backend *b, const char *dir, enc_mode mode) {
  char *path = rdt_path_join(dir, "config.json");
  rdt_json *j = rdt_json_load(path);
  free(path);
  siglip_config c;
  if (!j) return NULL;
  int rc = siglip_config_from_json(j, &c);
  rdt_json_free(j);
  if (rc < 0) {
    rdt_fail_ctx("%s/config.json", dir);
    return NULL;
  }
  rdt_st *st = rdt_st_open(dir);
  if (!st) return NULL;
  siglip *m = siglip_new(b, &c, st, mode);
  if (!m) {
    rdt_st_close(st);
    return NULL;
  }
  m->own_st = st;
  return m;
}

/* Free an F32 device buffer if set. */
static void free_f32(k_backend *b, float *p) {
  if (p) k_free(b, p);
}

void siglip_free(siglip *m) {
  if (!m) return;
  k_backend *b = m->b;
  for (int i = 0; i < m->c.num_layers; i++) {
    siglip_layer *L = &m->layers[i];
    float *f32[] = {L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b, L->bq, L->bk, L->bv, L->bo, L->b1, L->b2};
    for (size_t j = 0; j < sizeof f32 / sizeof *f32; j++) free_f32(b, f32[j]);
    enc_linear *w[] = {&L->q, &L->k, &L->v, &L->o, &L->fc1, &L->fc2};
    for (size_t j = 0; j < sizeof w / sizeof *w; j++) enc_linear_free(&m->store, w[j]);
  }
  enc_linear_free(&m->store, &m->patch);
  free_f32(b, m->patch_b);
  free_f32(b, m->pos);
  free_f32(b, m->post_w);
  free_f32(b, m->post_b);
  enc_store_free(&m->store);
  for (int i = 0; i < NBUF; i++)
    if (m->buf[i]) k_free(b, m->buf[i]);
  if (m->cache_out) k_free(b, m->cache_out);
  if (m->tokens_out) k_free(b, m->tokens_out);
  free(m->cache_key);
  free(m->host_patches);
  free(m->layers);
  if (m->own_st) rdt_st_close(m->own_st);
  free(m);
}

const siglip_config *siglip_cfg(const siglip *m) { return &m->c; }
int siglip_tokens(const siglip *m) { return m->tokens; }
int siglip_streamed(const siglip *m) { return m->store.stream; }
long siglip_cache_hits(const siglip *m) { return m->cache_hits; }

/* ================================================================ forward */

/* Activation buffer `which` with room for n elements. */
static void *act(siglip *m, int which, size_t n) {
  return enc_reserve(m->b, &m->buf[which], &m->cap[which], n * k_act_size(m->b));
}

/* Cut images into patches: row (image, py, px), columns (channel, ky, kx) --
 * the layout of the Conv2d weight, so the convolution is one k_linear. */
static void im2col(const siglip *m, const float *const *images, int n, float *out) {
  const int C = m->c.num_channels, S = m->c.image_size, p = m->c.patch_size, G = m->grid;
  for (int i = 0; i < n; i++)
    for (int py = 0; py < G; py++)
      for (int px = 0; px < G; px++) {
        float *row = out + ((size_t)i * m->tokens + (size_t)py * G + px) * m->patch_dim;
        for (int c = 0; c < C; c++)
          for (int ky = 0; ky < p; ky++)
            memcpy(row + ((size_t)c * p + ky) * p,
                   images[i] + ((size_t)c * S + (size_t)py * p + ky) * S + (size_t)px * p,
                   (size_t)p * sizeof *row);
      }
}

/* One pre-LN encoder layer on x [n*T, D]. */
static void layer_forward(siglip *m, const siglip_layer *L, int n) {
  k_backend *b = m->b;
  const int D = m->c.hidden_size, I = m->c.intermediate_size, T = m->tokens;
  const int H = m->c.num_heads, hd = D / H, rows = n * T;
  void *x = m->buf[BUF_X], *h = m->buf[BUF_H], *a = m->buf[BUF_A];
  void *q = m->buf[BUF_Q], *k = m->buf[BUF_K], *v = m->buf[BUF_V];
  k_layernorm(b, h, x, L->ln1_w, L->ln1_b, rows, D, m->c.eps);
  k_linear(b, q, h, enc_linear_get(&m->store, &L->q), L->bq, rows, D, D);
  k_linear(b, k, h, enc_linear_get(&m->store, &L->k), L->bk, rows, D, D);
  k_linear(b, v, h, enc_linear_get(&m->store, &L->v), L->bv, rows, D, D);
  k_attention(b, a, NULL, q, k, v, NULL, NULL, n, T, T, H, hd, 1.0f / sqrtf((float)hd));
  k_linear(b, h, a, enc_linear_get(&m->store, &L->o), L->bo, rows, D, D);
  k_add_inplace(b, x, h, (size_t)rows * D);
  k_layernorm(b, h, x, L->ln2_w, L->ln2_b, rows, D, m->c.eps);
  k_linear_gelu(b, m->buf[BUF_MLP], m->buf[BUF_MLP2], h, enc_linear_get(&m->store, &L->fc1), L->b1, rows, I, D);
  k_linear(b, h, m->buf[BUF_MLP2], enc_linear_get(&m->store, &L->fc2), L->b2, rows, D, I);
  k_add_inplace(b, x, h, (size_t)rows * D);
}

/* Encode n (<= CHUNK_IMAGES) images; outs[i] receives image i's tokens. */
static void forward_chunk(siglip *m, const float *const *images, int n, void *const *outs) {
  k_backend *b = m->b;
  const int D = m->c.hidden_size, T = m->tokens;
  const size_t rows = (size_t)n * T;
  m->host_patches = rdt_realloc(m->host_patches, rows * m->patch_dim * sizeof *m->host_patches);
  im2col(m, images, n, m->host_patches);
  void *in = act(m, BUF_IN, rows * m->patch_dim);
  void *x = act(m, BUF_X, rows * D);
  act(m, BUF_H, rows * D), act(m, BUF_A, rows * D);
  act(m, BUF_Q, rows * D), act(m, BUF_K, rows * D), act(m, BUF_V, rows * D);
  act(m, BUF_MLP, rows * m->c.intermediate_size), act(m, BUF_MLP2, rows * m->c.intermediate_size);
  k_upload_act(b, in, m->host_patches, rows * m->patch_dim);
  k_linear(b, x, in, enc_linear_get(&m->store, &m->patch), m->patch_b, (int)rows, D, m->patch_dim);
  k_add_pos(b, x, m->pos, n, T, D);
  for (int l = 0; l < m->c.num_layers; l++) layer_forward(m, &m->layers[l], n);
  void *h = m->buf[BUF_H];
  k_layernorm(b, h, x, m->post_w, m->post_b, (int)rows, D, m->c.eps);
  for (int i = 0; i < n; i++)
    k_copy(b, outs[i], k_act_at(b, h, (size_t)i * T * D), (size_t)T * D * k_act_size(b));
}

/* 1 if every pixel of each channel has that channel's first value; key gets them. */
static int constant_image(const siglip *m, const float *img, float *key) {
  const size_t plane = (size_t)m->c.image_size * m->c.image_size;
  for (int c = 0; c < m->c.num_channels; c++) {
    const float *p = img + c * plane;
    key[c] = p[0];
    for (size_t i = 1; i < plane; i++)
      if (p[i] != p[0]) return 0;
  }
  return 1;
}

void siglip_forward(siglip *m, const float *images, int n, void *out) {
  k_backend *b = m->b;
  const size_t per_image = (size_t)m->c.num_channels * m->c.image_size * m->c.image_size;
  const size_t per_out = (size_t)m->tokens * m->c.hidden_size;
  const size_t out_bytes = per_out * k_act_size(b);
  float *key = rdt_malloc((size_t)m->c.num_channels * sizeof *key);
  const float *todo[CHUNK_IMAGES];
  void *dst[CHUNK_IMAGES];
  int ntodo = 0;
  for (int i = 0; i < n; i++) {
    const float *img = images + (size_t)i * per_image;
    void *o = k_act_at(b, out, (size_t)i * per_out);
    if (constant_image(m, img, key)) {
      int hit = m->cache_valid && memcmp(key, m->cache_key, (size_t)m->c.num_channels * sizeof *key) == 0;
      if (!hit) {   /* a new constant colour: encode it once into the cache */
        if (!m->cache_out) m->cache_out = k_alloc(b, out_bytes);
        forward_chunk(m, &img, 1, &m->cache_out);
        memcpy(m->cache_key, key, (size_t)m->c.num_channels * sizeof *key);
        m->cache_valid = 1;
      } else {
        m->cache_hits++;
      }
      k_copy(b, o, m->cache_out, out_bytes);
      continue;
    }
    todo[ntodo] = img;
    dst[ntodo++] = o;
    if (ntodo == CHUNK_IMAGES) {
      forward_chunk(m, todo, ntodo, dst);
      ntodo = 0;
    }
  }
  if (ntodo) forward_chunk(m, todo, ntodo, dst);
  free(key);
}

const void *siglip_encode_device(siglip *m, const float *images, int n) {
  k_backend *b = m->b;
  size_t bytes = (size_t)n * m->tokens * m->c.hidden_size * k_act_size(b);
  if (bytes > m->tokens_bytes) {
    if (m->tokens_out) k_free(b, m->tokens_out);
    m->tokens_out = k_alloc(b, bytes);
    m->tokens_bytes = bytes;
  }
  siglip_forward(m, images, n, m->tokens_out);
  return m->tokens_out;
}

void siglip_encode(siglip *m, const float *images, int n, float *out) {
  const void *dev = siglip_encode_device(m, images, n);
  k_download_act(m->b, out, dev, (size_t)n * m->tokens * m->c.hidden_size);
}
