/* tests/model/model_util.h: shared helpers of the model tests -- the tiny
 * config, random parameters and random batches (host arrays), running rdt. */
#ifndef RDT_TESTS_MODEL_UTIL_H
#define RDT_TESTS_MODEL_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include "core/error.h"
#include "core/rng.h"
#include "model/rdt.h"
#include "test.h"

/* configs/tiny.yaml from the source tree (exits on failure). */
static inline rdt_model_config tiny_config(void) {
  char path[4096];
  const char *src = getenv("RDT_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/configs/tiny.yaml", src ? src : ".");
  rdt_model_config c;
  if (rdt_model_config_load(path, &c) != 0) {
    fprintf(stderr, "tiny config: %s\n", rdt_error());
    exit(2);
  }
  return c;
}

/* Uniform in [-1, 1). */
static inline double unit(rdt_rng *r) { return 2 * rdt_rng_uniform(r) - 1; }

/* Random parameters with useful magnitudes (every path active, no zero
 * projection): weights ~U(+-sqrt(3 / fan_in)), norms 1 +- 0.3, biases +-0.1,
 * position embeddings +-0.5.  Uploaded to the model; returns the host copy. */
static inline float *random_params(rdt_model *m, uint64_t seed) {
  size_t n = rdt_model_numel(m);
  float *p = rdt_malloc(n * sizeof(float));
  rdt_rng r;
  rdt_rng_seed(&r, seed, 7);
  for (int i = 0; i < rdt_model_param_count(m); i++) {
    const rdt_param_info *t = rdt_model_param(m, i);
    int is_norm = t->ndim == 1 && strstr(t->name, "norm") != NULL;
    double a = t->ndim == 2 ? sqrt(3.0 / (double)t->shape[1]) : strstr(t->name, "pos_embed") ? 0.5 : 0.1;
    for (size_t k = 0; k < t->numel; k++) p[t->offset + k] = (float)((is_norm ? 1 : 0) + (is_norm ? 0.3 : a) * unit(&r));
  }
  k_upload(rdt_model_backend(m), rdt_model_params(m), p, n * sizeof(float));
  rdt_model_params_changed(m);
  return p;
}

/* A random batch for a config: tokens ~U(+-1), a language mask with some
 * zeros (first token always attended), a 0/1 action mask, ctrl freqs 5..25. */
typedef struct {
  rdt_batch in;
  float *lang, *img, *state, *amask, *freqs, *gt, *noise;
  uint8_t *mask;
  int64_t *t;
} test_batch;

static inline float *random_floats(size_t n, rdt_rng *r, double scale) {
  float *x = rdt_malloc(n * sizeof(float) + 1);
  for (size_t i = 0; i < n; i++) x[i] = (float)(scale * unit(r));
  return x;
}

static inline test_batch random_batch(const rdt_model_config *c, int B, int L, uint64_t seed) {
  test_batch tb;
  rdt_rng r;
  rdt_rng_seed(&r, seed, 11);
  size_t chunk = (size_t)B * c->pred_horizon * c->action_dim, D = c->state_token_dim;
  tb.lang = random_floats((size_t)B * L * c->lang_token_dim, &r, 1);
  tb.img = random_floats((size_t)B * c->img_cond_len * c->img_token_dim, &r, 1);
  tb.state = random_floats(B * D, &r, 1);
  tb.amask = rdt_malloc(B * D * sizeof(float));
  for (size_t i = 0; i < B * D; i++) tb.amask[i] = rdt_rng_uniform(&r) < 0.3 ? 1.0f : 0.0f;
  tb.freqs = rdt_malloc(B * sizeof(float));
  for (int i = 0; i < B; i++) tb.freqs[i] = (float)(5 + 20 * rdt_rng_uniform(&r));
  tb.mask = rdt_malloc((size_t)B * L);
  for (int i = 0; i < B * L; i++) tb.mask[i] = (i % L == 0) || rdt_rng_uniform(&r) < 0.7;
  tb.gt = random_floats(chunk, &r, 1);
  tb.noise = rdt_malloc(chunk * sizeof(float));
  for (size_t i = 0; i < chunk; i++) tb.noise[i] = (float)rdt_rng_normal(&r);
  tb.t = rdt_malloc(B * sizeof(int64_t));
  for (int i = 0; i < B; i++) tb.t[i] = (int64_t)rdt_rng_below(&r, (uint64_t)c->num_train_timesteps);
  tb.in = (rdt_batch){.B = B, .L = L, .lang_tokens = tb.lang, .lang_mask = tb.mask, .img_tokens = tb.img,
                      .state_tokens = tb.state, .action_mask = tb.amask, .ctrl_freqs = tb.freqs};
  return tb;
}

static inline void free_batch(test_batch *tb) {
  free(tb->lang), free(tb->img), free(tb->state), free(tb->amask), free(tb->freqs);
  free(tb->gt), free(tb->noise), free(tb->mask), free(tb->t);
}

#endif
