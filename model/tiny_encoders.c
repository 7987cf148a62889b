/* model/tiny_encoders.c: TEST-ONLY image and text encoders (see the header). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "model/tiny_encoders.h"

/* Streams of the seed, so the two tables never share random numbers. */
#define STREAM_VISION 0x7669730aull
#define STREAM_TEXT 0x74787a0aull

/* ================================================================ configuration */

/* Strict integer key: 0 found, 1 absent (out untouched), -1 with a message. */
static int get_int(const rdt_config *c, const char *key, int *out) {
  int64_t v;
  int r = rdt_config_get_int(c, key, &v);
  if (r < 0) return rdt_fail("%s: expected an integer", key);
  if (r == 0) {
    if (v <= 0 || v > (1 << 24)) return rdt_fail("%s: %lld out of range", key, (long long)v);
    *out = (int)v;
  }
  return r;
}

int rdt_tiny_cfg_from_config(const rdt_config *c, rdt_tiny_cfg *out) {
  if (!c || !rdt_config_has(c, "model.tiny_encoders")) return 0;
  rdt_tiny_cfg t = {32, 8, 32, 32, 4096, 32, 1234};
  int64_t seed, tokens = -1;
  int r;
  if (get_int(c, "model.tiny_encoders.image_size", &t.image_size) < 0 ||
      get_int(c, "model.tiny_encoders.patch_size", &t.patch_size) < 0 ||
      get_int(c, "model.tiny_encoders.vocab_size", &t.vocab_size) < 0 ||
      get_int(c, "model.img_token_dim", &t.img_token_dim) < 0 ||
      get_int(c, "model.lang_token_dim", &t.lang_token_dim) < 0 ||
      get_int(c, "dataset.tokenizer_max_length", &t.max_length) < 0)
    return -1;
  if ((r = rdt_config_get_int(c, "model.tiny_encoders.seed", &seed)) < 0)
    return rdt_fail("model.tiny_encoders.seed: expected an integer");
  if (r == 0) t.seed = (uint64_t)seed;
  if (t.image_size % t.patch_size)
    return rdt_fail("model.tiny_encoders: image_size %d is not a multiple of patch_size %d",
                    t.image_size, t.patch_size);
  if (t.vocab_size < 2) return rdt_fail("model.tiny_encoders.vocab_size: at least 2");
  int per = (t.image_size / t.patch_size) * (t.image_size / t.patch_size);
  if (rdt_config_get_int(c, "model.img_tokens_per_image", &tokens) == 0 && tokens != per)
    return rdt_fail("model.img_tokens_per_image is %lld but the tiny encoder gives (%d/%d)^2 = %d",
                    (long long)tokens, t.image_size, t.patch_size, per);
  *out = t;
  return 1;
}

/* ================================================================ vision */

struct rdt_tiny_vision {
  rdt_tiny_cfg cfg;
  int in;          /* 3 p p */
  float *W, *b;    /* [dim, in], [dim] */
};

rdt_tiny_vision *rdt_tiny_vision_new(const rdt_tiny_cfg *c) {
  rdt_tiny_vision *v = rdt_calloc(1, sizeof *v);
  rdt_rng r;
  v->cfg = *c;
  v->in = 3 * c->patch_size * c->patch_size;
  v->W = rdt_malloc(sizeof(float) * (size_t)c->img_token_dim * v->in);
  v->b = rdt_malloc(sizeof(float) * c->img_token_dim);
  rdt_rng_seed(&r, c->seed, STREAM_VISION);
  double scale = 1.0 / sqrt((double)v->in);
  for (size_t i = 0; i < (size_t)c->img_token_dim * v->in; i++) v->W[i] = (float)(scale * rdt_rng_normal(&r));
  for (int i = 0; i < c->img_token_dim; i++) v->b[i] = (float)(0.1 * rdt_rng_normal(&r));
  return v;
}

void rdt_tiny_vision_free(rdt_tiny_vision *v) {
  if (!v) return;
  free(v->W);
  free(v->b);
  free(v);
}

int rdt_tiny_vision_tokens(const rdt_tiny_vision *v) {
  int g = v->cfg.image_size / v->cfg.patch_size;
  return g * g;
}

/* token (py, px) = W . patch + b, patch flattened (channel, row, column). */
void rdt_tiny_vision_encode(const rdt_tiny_vision *v, const float *images, int n, float *tokens) {
  int S = v->cfg.image_size, p = v->cfg.patch_size, g = S / p, dim = v->cfg.img_token_dim;
  float *patch = rdt_malloc(sizeof(float) * v->in);
  for (int im = 0; im < n; im++) {
    const float *img = images + (size_t)im * 3 * S * S;
    for (int py = 0; py < g; py++)
      for (int px = 0; px < g; px++) {
        float *tok = tokens + (((size_t)im * g + py) * g + px) * dim;
        for (int c = 0, k = 0; c < 3; c++)
          for (int y = 0; y < p; y++)
            for (int x = 0; x < p; x++, k++)
              patch[k] = img[((size_t)c * S + py * p + y) * S + px * p + x];
        for (int o = 0; o < dim; o++) {
          const float *w = v->W + (size_t)o * v->in;
          double acc = v->b[o];
          for (int k = 0; k < v->in; k++) acc += (double)w[k] * patch[k];
          tok[o] = (float)acc;
        }
      }
  }
  free(patch);
}

/* ================================================================ text */

struct rdt_tiny_text {
  rdt_tiny_cfg cfg;
  float *table;    /* [vocab_size, dim]; row 0 = EOS */
};

rdt_tiny_text *rdt_tiny_text_new(const rdt_tiny_cfg *c) {
  rdt_tiny_text *t = rdt_calloc(1, sizeof *t);
  rdt_rng r;
  size_t n = (size_t)c->vocab_size * c->lang_token_dim;
  t->cfg = *c;
  t->table = rdt_malloc(sizeof(float) * n);
  rdt_rng_seed(&r, c->seed, STREAM_TEXT);
  for (size_t i = 0; i < n; i++) t->table[i] = (float)rdt_rng_normal(&r);
  return t;
}

void rdt_tiny_text_free(rdt_tiny_text *t) {
  if (!t) return;
  free(t->table);
  free(t);
}

/* 32-bit FNV-1a of s[0..n), lower-cased. */
static uint32_t fnv1a_lower(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)tolower((unsigned char)s[i])) * 16777619u;
  return h;
}

int rdt_tiny_text_encode(const rdt_tiny_text *t, const char *text, float *emb, uint8_t *mask) {
  int dim = t->cfg.lang_token_dim, L = 0, maxlen = t->cfg.max_length;
  memset(emb, 0, sizeof(float) * (size_t)maxlen * dim);
  memset(mask, 0, (size_t)maxlen);
  for (const char *s = text ? text : ""; ; ) {
    while (*s && !isalnum((unsigned char)*s)) s++;
    const char *w = s;
    while (*s && isalnum((unsigned char)*s)) s++;
    int row = 0;                               /* EOS after the last word */
    if (s > w) row = 1 + (int)(fnv1a_lower(w, (size_t)(s - w)) % (uint32_t)(t->cfg.vocab_size - 1));
    if (L == maxlen) return rdt_fail("instruction \"%s\": more than %d tokens", text, maxlen - 1);
    memcpy(emb + (size_t)L * dim, t->table + (size_t)row * dim, sizeof(float) * dim);
    mask[L++] = 1;
    if (!row) return L;
  }
}
