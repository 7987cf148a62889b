/* train/samples.c: batches with upstream's condition dropout and diffusion draws (see samples.h). */
#include "train/samples.h"

#include <stdlib.h>
#include <string.h>
#include "core/error.h"

struct rdt_batcher {
  rdt_batcher_opts o;
  const rdt_libero_data *d;
  rdt_conditions *c;
  int chunk, S, lang_dim, max_lang, img_dim, img_tokens;
  size_t image_floats;       /* 3 x S x S */
  float *background;         /* one background image */
  rdt_sample **scratch;      /* one per worker (and one for synchronous use) */
  int nscratch;
};

rdt_batcher *rdt_batcher_new(const rdt_batcher_opts *o, const rdt_libero_data *d, rdt_conditions *c,
                             const rdt_model_config *mc, int workers) {
  rdt_batcher *b = rdt_calloc(1, sizeof *b);
  b->o = *o;
  b->d = d;
  b->c = c;
  b->chunk = mc->pred_horizon;
  b->S = rdt_libero_options(d)->image.size;
  b->lang_dim = mc->lang_token_dim;
  b->max_lang = mc->max_lang_cond_len;
  b->img_dim = mc->img_token_dim;
  b->img_tokens = mc->img_cond_len;
  b->image_floats = (size_t)3 * b->S * b->S;
  b->background = rdt_malloc(b->image_floats * sizeof(float));
  rdt_image_background(&rdt_libero_options(d)->image, b->background);
  b->nscratch = workers > 0 ? workers : 1;
  b->scratch = rdt_calloc((size_t)b->nscratch, sizeof *b->scratch);
  for (int i = 0; i < b->nscratch; i++) b->scratch[i] = rdt_sample_new(d);
  return b;
}

void rdt_batcher_free(rdt_batcher *b) {
  if (!b) return;
  for (int i = 0; i < b->nscratch; i++) rdt_sample_free(b->scratch[i]);
  free(b->scratch);
  free(b->background);
  free(b);
}

rdt_train_batch *rdt_batcher_alloc(const rdt_batcher *b) {
  rdt_train_batch *t = rdt_calloc(1, sizeof *t);
  size_t B = (size_t)b->o.batch, per_chunk = (size_t)b->chunk * RDT_UNI_DIM;
  t->B = (int)B;
  t->lang = rdt_malloc(B * (size_t)b->max_lang * (size_t)b->lang_dim * sizeof(float));
  t->lang_mask = rdt_malloc(B * (size_t)b->max_lang);
  t->images = rdt_malloc(B * RDT_NUM_IMAGES * b->image_floats * sizeof(float));
  t->img_tokens = rdt_malloc(B * (size_t)b->img_tokens * (size_t)b->img_dim * sizeof(float));
  t->state = rdt_malloc(B * RDT_UNI_DIM * sizeof(float));
  t->state_mask = rdt_malloc(B * RDT_UNI_DIM * sizeof(float));
  t->state_norm = rdt_malloc(B * RDT_UNI_DIM * sizeof(float));
  t->actions = rdt_malloc(B * per_chunk * sizeof(float));
  t->noise = rdt_malloc(B * per_chunk * sizeof(float));
  t->timesteps = rdt_malloc(B * sizeof(int64_t));
  t->ctrl_freq = rdt_malloc(B * sizeof(float));
  t->dataset = rdt_malloc(B * sizeof(int));
  return t;
}

void rdt_train_batch_free(rdt_train_batch *t) {
  if (!t) return;
  free(t->lang), free(t->lang_mask), free(t->images), free(t->img_tokens);
  free(t->state), free(t->state_mask), free(t->state_norm);
  free(t->actions), free(t->noise), free(t->timesteps), free(t->ctrl_freq), free(t->dataset);
  free(t);
}

/* ---------------------------------------------------------------- one sample */
/* Upstream's `random.random() > p`: keep the condition. */
static int keep(rdt_rng *r, double p) { return p <= 0 || rdt_rng_uniform(r) > p; }

/* Fill sample i of t from sample index g; lens[i] gets its language length. */
static int fill_sample(rdt_batcher *b, rdt_train_batch *t, int i, int64_t g, rdt_sample *s, int *lens) {
  const rdt_batcher_opts *o = &b->o;
  rdt_rng r;
  rdt_rng_seed(&r, o->seed, o->stream_base + (uint64_t)g);
  int episode, step;
  rdt_libero_draw(b->d, &r, &episode, &step);
  if (rdt_libero_get(b->d, episode, step, o->train ? &r : NULL, s) != 0) return -1;
  double p = o->train ? o->cond_mask_prob : 0.0;
  float *state = t->state + (size_t)i * RDT_UNI_DIM, *mask = t->state_mask + (size_t)i * RDT_UNI_DIM;
  t->dataset[i] = s->dataset;
  t->ctrl_freq[i] = keep(&r, p) ? o->ctrl_freq : 0.0f;
  memcpy(state, s->in.state, sizeof s->in.state);
  if (o->train && !isnan(o->state_noise_snr)) {
    double scale = 1.0 / sqrt(pow(10.0, o->state_noise_snr / 10.0));
    for (int j = 0; j < RDT_UNI_DIM; j++) state[j] += (float)(rdt_rng_normal(&r) * s->state_std[j] * scale);
  }
  if (!keep(&r, p)) memcpy(state, o->state_mean + (size_t)s->dataset * RDT_UNI_DIM, RDT_UNI_DIM * sizeof(float));
  if (keep(&r, p))
    memcpy(mask, s->in.state_mask, sizeof s->in.state_mask);
  else
    memset(mask, 0, RDT_UNI_DIM * sizeof(float));
  memcpy(t->state_norm + (size_t)i * RDT_UNI_DIM, s->state_norm, sizeof s->state_norm);
  float *images = t->images + (size_t)i * RDT_NUM_IMAGES * b->image_floats;
  for (int k = 0; k < RDT_NUM_IMAGES; k++) {
    int cam = k % RDT_NUM_CAMERAS;
    double pk = o->train && cam == 0 && o->cam_ext_mask_prob >= 0 ? o->cam_ext_mask_prob : p;
    const float *src = s->in.image_valid[k] && keep(&r, pk) ? s->in.images + k * b->image_floats : b->background;
    memcpy(images + k * b->image_floats, src, b->image_floats * sizeof(float));
  }
  const char *instruction = keep(&r, p) ? s->instruction : "";
  lens[i] = rdt_conditions_lang(b->c, instruction, t->lang + (size_t)i * b->max_lang * b->lang_dim);
  if (lens[i] < 0) return -1;
  size_t per_chunk = (size_t)b->chunk * RDT_UNI_DIM;
  memcpy(t->actions + (size_t)i * per_chunk, s->actions, per_chunk * sizeof(float));
  t->timesteps[i] = (int64_t)rdt_rng_below(&r, (uint64_t)o->num_train_timesteps);
  float *noise = t->noise + (size_t)i * per_chunk;
  for (size_t j = 0; j < per_chunk; j++) noise[j] = (float)rdt_rng_normal(&r);
  return 0;
}

/* Pack [B, max_lang, D] rows to [B, L, D] with L the longest, and the mask
 * (upstream pad_sequence with zeros + length mask). */
static void pack_language(rdt_batcher *b, rdt_train_batch *t, const int *lens) {
  int L = 1;
  for (int i = 0; i < t->B; i++) L = lens[i] > L ? lens[i] : L;
  size_t D = (size_t)b->lang_dim;
  for (int i = 0; i < t->B; i++) {
    float *dst = t->lang + (size_t)i * L * D;
    memmove(dst, t->lang + (size_t)i * b->max_lang * D, (size_t)lens[i] * D * sizeof(float));
    memset(dst + (size_t)lens[i] * D, 0, (size_t)(L - lens[i]) * D * sizeof(float));
  }
  for (int i = 0; i < t->B; i++)
    for (int j = 0; j < L; j++) t->lang_mask[(size_t)i * L + j] = j < lens[i];
  t->L = L;
}

int rdt_batcher_fill(void *batcher, int64_t index, void *slot, int worker) {
  rdt_batcher *b = batcher;
  rdt_train_batch *t = slot;
  int *lens = rdt_malloc((size_t)t->B * sizeof(int));
  t->first = index * b->o.stride + b->o.offset;
  int rc = 0;
  for (int i = 0; i < t->B && rc == 0; i++)
    rc = fill_sample(b, t, i, t->first + i, b->scratch[worker], lens);
  if (rc == 0) pack_language(b, t, lens);
  free(lens);
  t->img_encoded = 0;
  t->img_tokens_dev = NULL;
  if (rc == 0 && rdt_conditions_images_threadsafe(b->c)) {
    rdt_conditions_images(b->c, t->images, t->B * RDT_NUM_IMAGES, t->img_tokens);
    t->img_encoded = 1;
  }
  return rc;
}

void rdt_batcher_encode(rdt_batcher *b, rdt_train_batch *t) {
  if (t->img_encoded) return;
  t->img_tokens_dev = rdt_conditions_images_device(b->c, t->images, t->B * RDT_NUM_IMAGES);
  if (!t->img_tokens_dev) rdt_conditions_images(b->c, t->images, t->B * RDT_NUM_IMAGES, t->img_tokens);
  t->img_encoded = 1;
}

rdt_batch rdt_train_batch_view(const rdt_train_batch *t) {
  rdt_batch v = {t->B,     t->L,          t->lang,         t->lang_mask, t->img_tokens,
                 t->state, t->state_mask, t->ctrl_freq, t->img_tokens_dev};
  return v;
}
