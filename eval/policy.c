/* eval/policy.c: observations -> model inputs -> action chunks (see policy.h). */
#include "eval/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "model/rdt_cmd.h"
#include "model/siglip.h"
#include "model/t5.h"
#include "model/tiny_encoders.h"

/* One encoded instruction. */
typedef struct {
  int len;
  float *emb;   /* len x lang_token_dim */
} lang_entry;

struct eval_policy {
  rdt_model_config mc;
  k_backend *b;
  rdt_model *model;
  char *weights;
  eval_obs_map map;
  /* encoders: the tiny pair, or SigLIP with T5 or precomputed embeddings */
  rdt_tiny_vision *tiny_vision;
  rdt_tiny_text *tiny_text;
  siglip *vision;
  t5 *text;
  char *lang_dir;
  int encoder_size;
  int rows;              /* 1: requests answered one at a time (EVAL_BATCH_ROWS) */
  lang_entry *lang;
  int nlang, lang_len;   /* instructions and the padded length of every query */
  /* batch buffers, grown to the largest batch */
  int cap;
  float *images, *img_tokens, *lang_tokens, *state, *amask, *freqs, *noise, *chunks;
  uint8_t *lang_mask;
  int64_t ncalls, nrows;
  char describe[512];
};

/* ================================================================ observations */

int eval_obs_map_init(eval_obs_map *m, const rdt_config *cfg, int encoder_size) {
  m->format = cfg ? rdt_uni_format_from_config(cfg) : rdt_uni_format_default();
  if (!m->format) return -1;
  if (!cfg) {
    rdt_image_cfg_init(&m->image, encoder_size);
    return 0;
  }
  return rdt_image_cfg_from_config(&m->image, cfg, encoder_size);
}

void eval_raw_obs(const sim_obs *o, const uint8_t *const cur[RDT_RAW_CAMERAS],
                  const uint8_t *const prev[RDT_RAW_CAMERAS], int size, rdt_raw_obs *out) {
  memset(out, 0, sizeof *out);
  memcpy(out->joint_pos, o->joint_pos, sizeof out->joint_pos);
  memcpy(out->gripper_qpos, o->gripper_qpos, sizeof out->gripper_qpos);
  memcpy(out->eef_pos, o->eef_pos, sizeof out->eef_pos);
  rdt_quat_to_axisangle(o->eef_quat, out->eef_ori);
  out->h = out->w = size;
  for (int c = 0; c < RDT_RAW_CAMERAS; c++) {
    out->image[c][0] = prev ? prev[c] : NULL;
    out->image[c][1] = cur ? cur[c] : NULL;
  }
}

/* ================================================================ opening */

char *eval_weights_path(const char *pretrained) {
  if (rdt_is_dir(pretrained)) {
    char *ema = rdt_path_join(pretrained, "ema/model.safetensors");
    if (rdt_is_file(ema)) return ema;
    free(ema);
  }
  return rdt_strdup(pretrained);
}

/* The model config: the YAML when given, else config.json beside the weights. */
static int model_config(const rdt_config *cfg, const char *weights, rdt_model_config *mc) {
  if (cfg) return rdt_model_config_from_yaml(cfg, mc);
  int rc = rdt_model_config_beside(weights, mc);
  if (rc < 0) return -1;
  RDT_CHECK(rc == 1, "no model config: pass --config (YAML); no config.json was found beside %s", weights);
  return 0;
}

/* Build the model and load the weights strictly (or initialise it randomly). */
static int open_model(eval_policy *p, const rdt_config *cfg, const eval_policy_opts *o) {
  RDT_CHECK(o->pretrained || cfg, "random weights need a YAML config");
  p->weights = o->pretrained ? eval_weights_path(o->pretrained) : rdt_strdup("(random weights)");
  if (model_config(cfg, p->weights, &p->mc) != 0) return -1;
  p->b = rdt_cmd_backend(o->device, o->threads, o->precision);
  if (!p->b) return -1;
  p->model = rdt_model_new(p->b, &p->mc);
  if (!p->model) return -1;
  p->rows = o->batch == EVAL_BATCH_ROWS || (o->batch == EVAL_BATCH_AUTO && k_kind_of(p->b) == K_CPU);
  if (!o->pretrained) {
    rdt_model_init(p->model, 0);
    return 0;
  }
  rdt_st *st = rdt_st_open(p->weights);
  if (!st) return rdt_fail_ctx("checkpoint");
  int rc = rdt_model_load(p->model, st, NULL);
  rdt_st_close(st);
  if (rc != 0) return rdt_fail_ctx("the checkpoint does not fit the model config");
  return 0;
}

/* The test-only encoders of a config with model.tiny_encoders. */
static void open_tiny(eval_policy *p, const rdt_tiny_cfg *tc) {
  p->tiny_vision = rdt_tiny_vision_new(tc);
  if (!p->lang_dir) p->tiny_text = rdt_tiny_text_new(tc);
  p->encoder_size = tc->image_size;
}

/* SigLIP, and T5 unless the embeddings are precomputed. */
static int open_real(eval_policy *p, const eval_policy_opts *o) {
  RDT_CHECK(o->vision_encoder, "this config has no model.tiny_encoders section, so it needs the SigLIP vision "
            "encoder: pass --vision_encoder DIR (google/siglip-so400m-patch14-384)");
  RDT_CHECK(o->text_encoder || p->lang_dir, "this config needs T5 for the instruction: pass --text_encoder DIR "
            "(google/t5-v1_1-xxl) or --precomp_lang_embed DIR (rdt encode-lang)");
  p->vision = siglip_load(p->b, o->vision_encoder, ENC_AUTO);
  if (!p->vision) return -1;
  const siglip_config *sc = siglip_cfg(p->vision);
  RDT_CHECK(sc->hidden_size == p->mc.img_token_dim && siglip_tokens(p->vision) == p->mc.img_tokens_per_image,
            "%s: SigLIP gives %d tokens x %d per image, the model expects %d x %d", o->vision_encoder,
            siglip_tokens(p->vision), sc->hidden_size, p->mc.img_tokens_per_image, p->mc.img_token_dim);
  p->encoder_size = sc->image_size;
  if (!p->lang_dir) {
    p->text = t5_load(p->b, o->text_encoder, ENC_AUTO);
    if (!p->text) return -1;
    RDT_CHECK(t5_cfg(p->text)->d_model == p->mc.lang_token_dim, "%s: T5 width %d, the model expects %d",
              o->text_encoder, t5_cfg(p->text)->d_model, p->mc.lang_token_dim);
  }
  return 0;
}

/* The encoders the config and the options select. */
static int open_encoders(eval_policy *p, const rdt_config *cfg, const eval_policy_opts *o) {
  rdt_tiny_cfg tc;
  int tiny = cfg ? rdt_tiny_cfg_from_config(cfg, &tc) : 0;
  if (tiny < 0) return -1;
  if (o->precomp_lang_embed) {
    RDT_CHECK(rdt_is_dir(o->precomp_lang_embed), "--precomp_lang_embed %s: not a folder", o->precomp_lang_embed);
    p->lang_dir = rdt_strdup(o->precomp_lang_embed);
  }
  if (tiny == 1) {
    RDT_CHECK(tc.img_token_dim == p->mc.img_token_dim && tc.lang_token_dim == p->mc.lang_token_dim,
              "model.tiny_encoders: token widths differ from the model's");
    open_tiny(p, &tc);
  } else if (open_real(p, o) != 0) {
    return -1;
  }
  if (eval_obs_map_init(&p->map, cfg, p->encoder_size) != 0) return -1;
  snprintf(p->describe, sizeof p->describe, "%s, %s%s, %s", k_name(p->b),
           p->tiny_vision ? "tiny test-only encoders" : "SigLIP",
           p->lang_dir ? " + precomputed language embeddings" : p->text ? " + T5" : "",
           p->rows ? "queries answered one at a time" : "queries batched");
  return 0;
}

eval_policy *eval_policy_open(const rdt_config *cfg, const eval_policy_opts *o) {
  eval_policy *p = rdt_calloc(1, sizeof *p);
  if (open_model(p, cfg, o) != 0 || open_encoders(p, cfg, o) != 0) {
    eval_policy_free(p);
    return NULL;
  }
  return p;
}

void eval_policy_free(eval_policy *p) {
  if (!p) return;
  if (p->tiny_vision) rdt_tiny_vision_free(p->tiny_vision);
  if (p->tiny_text) rdt_tiny_text_free(p->tiny_text);
  if (p->vision) siglip_free(p->vision);
  if (p->text) t5_free(p->text);
  for (int i = 0; i < p->nlang; i++) free(p->lang[i].emb);
  free(p->lang);
  if (p->model) rdt_model_free(p->model);
  if (p->b) k_close(p->b);
  free(p->weights), free(p->lang_dir);
  free(p->images), free(p->img_tokens), free(p->lang_tokens), free(p->state), free(p->amask);
  free(p->freqs), free(p->noise), free(p->chunks), free(p->lang_mask);
  free(p);
}

const eval_obs_map *eval_policy_obs_map(const eval_policy *p) { return &p->map; }
const rdt_model_config *eval_policy_model_config(const eval_policy *p) { return &p->mc; }
const char *eval_policy_weights(const eval_policy *p) { return p->weights; }
const char *eval_policy_describe(const eval_policy *p) { return p->describe; }
int64_t eval_policy_calls(const eval_policy *p) { return p->ncalls; }
int64_t eval_policy_rows(const eval_policy *p) { return p->nrows; }

int eval_batch_mode_parse(const char *s) {
  static const char *names[] = {"auto", "batch", "rows"};
  for (int i = 0; i < 3; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

/* ================================================================ language */

/* Encode one instruction with the open text source. */
static int lang_encode(const eval_policy *p, const char *text, lang_entry *e) {
  if (p->lang_dir)
    return t5_embed_load(p->lang_dir, text, p->mc.lang_token_dim, p->mc.max_lang_cond_len, &e->emb, &e->len);
  if (p->text) return t5_encode_text(p->text, text, p->mc.max_lang_cond_len, &e->emb, &e->len);
  size_t max = (size_t)p->mc.max_lang_cond_len;
  e->emb = rdt_malloc(max * (size_t)p->mc.lang_token_dim * sizeof(float));
  uint8_t *mask = rdt_malloc(max);
  e->len = rdt_tiny_text_encode(p->tiny_text, text, e->emb, mask);
  free(mask);
  return e->len < 0 ? -1 : 0;
}

int eval_policy_instructions(eval_policy *p, const char *const *text, int n) {
  RDT_CHECK(p->nlang == 0, "eval_policy_instructions: the instructions are encoded once");
  p->lang = rdt_realloc(p->lang, (size_t)n * sizeof *p->lang);
  for (int i = 0; i < n; i++) {
    lang_entry *e = &p->lang[p->nlang];
    memset(e, 0, sizeof *e);
    if (lang_encode(p, text[i], e) != 0) {
      free(e->emb);
      return rdt_fail_ctx("instruction \"%s\"", text[i]);
    }
    if (e->len > p->lang_len) p->lang_len = e->len;
    p->nlang++;
  }
  if (p->text) {   /* T5 (XXL: ~10 GB) is not needed any more */
    t5_free(p->text);
    p->text = NULL;
  }
  return 0;
}

/* ================================================================ queries */

/* Floats of one preprocessed image and of one chunk. */
static size_t image_floats(const eval_policy *p) { return (size_t)3 * p->encoder_size * p->encoder_size; }
static size_t chunk_floats(const eval_policy *p) { return (size_t)p->mc.pred_horizon * p->mc.action_dim; }

eval_request *eval_request_new(const eval_policy *p) {
  eval_request *r = rdt_calloc(1, sizeof *r);
  r->in.images = rdt_malloc(RDT_NUM_IMAGES * image_floats(p) * sizeof(float));
  r->noise = rdt_malloc(chunk_floats(p) * sizeof(float));
  r->chunk = rdt_calloc(chunk_floats(p), sizeof(float));
  return r;
}

void eval_request_free(eval_request *r) {
  if (!r) return;
  free(r->in.images), free(r->noise), free(r->chunk);
  free(r);
}

int eval_policy_prepare(const eval_policy *p, const rdt_raw_obs *o, int instruction, rdt_rng *rng,
                        eval_request *r) {
  RDT_CHECK(instruction >= 0 && instruction < p->nlang, "instruction %d was not encoded", instruction);
  if (rdt_obs_to_model_input(p->map.format, &p->map.image, o, NULL, &r->in) != 0) return -1;
  r->instruction = instruction;
  size_t n = chunk_floats(p);
  for (size_t i = 0; i < n; i++) r->noise[i] = (float)rdt_rng_normal(rng);
  return 0;
}

/* Grow the batch buffers to n rows. */
static void reserve_batch(eval_policy *p, int n) {
  if (n <= p->cap) return;
  size_t N = (size_t)n, D = RDT_UNI_DIM, imgs = N * RDT_NUM_IMAGES;
  size_t lang = N * (size_t)p->mc.max_lang_cond_len;
  p->images = rdt_realloc(p->images, imgs * image_floats(p) * sizeof(float));
  p->img_tokens = rdt_realloc(p->img_tokens, N * p->mc.img_cond_len * (size_t)p->mc.img_token_dim * sizeof(float));
  p->lang_tokens = rdt_realloc(p->lang_tokens, lang * (size_t)p->mc.lang_token_dim * sizeof(float));
  p->lang_mask = rdt_realloc(p->lang_mask, lang);
  p->state = rdt_realloc(p->state, N * D * sizeof(float));
  p->amask = rdt_realloc(p->amask, N * D * sizeof(float));
  p->freqs = rdt_realloc(p->freqs, N * sizeof(float));
  p->noise = rdt_realloc(p->noise, N * chunk_floats(p) * sizeof(float));
  p->chunks = rdt_realloc(p->chunks, N * chunk_floats(p) * sizeof(float));
  p->cap = n;
}

/* Row i of the batch from request r: language padded to lang_len, state, noise. */
static void fill_row(eval_policy *p, int i, const eval_request *r) {
  size_t L = (size_t)p->lang_len, Dl = (size_t)p->mc.lang_token_dim, D = RDT_UNI_DIM;
  const lang_entry *e = &p->lang[r->instruction];
  float *lt = p->lang_tokens + (size_t)i * L * Dl;
  memcpy(lt, e->emb, (size_t)e->len * Dl * sizeof(float));
  memset(lt + (size_t)e->len * Dl, 0, (L - (size_t)e->len) * Dl * sizeof(float));
  for (size_t j = 0; j < L; j++) p->lang_mask[(size_t)i * L + j] = j < (size_t)e->len;
  memcpy(p->images + (size_t)i * RDT_NUM_IMAGES * image_floats(p), r->in.images,
         RDT_NUM_IMAGES * image_floats(p) * sizeof(float));
  memcpy(p->state + (size_t)i * D, r->in.state, D * sizeof(float));
  memcpy(p->amask + (size_t)i * D, r->in.state_mask, D * sizeof(float));
  p->freqs[i] = RDT_LIBERO_CTRL_FREQ;
  memcpy(p->noise + (size_t)i * chunk_floats(p), r->noise, chunk_floats(p) * sizeof(float));
}

/* Encode and sample rows [0, n) of the batch buffers in one call. */
static int run_batch(eval_policy *p, int n) {
  const void *img_dev = NULL;
  if (p->tiny_vision) {
    rdt_tiny_vision_encode(p->tiny_vision, p->images, n * RDT_NUM_IMAGES, p->img_tokens);
  } else if (k_kind_of(p->b) == K_CPU) {
    siglip_encode(p->vision, p->images, n * RDT_NUM_IMAGES, p->img_tokens);
  } else { /* GPU: the tokens stay on the device */
    img_dev = siglip_encode_device(p->vision, p->images, n * RDT_NUM_IMAGES);
  }
  rdt_batch in = {.B = n, .L = p->lang_len, .lang_tokens = p->lang_tokens, .lang_mask = p->lang_mask,
                  .img_tokens = p->img_tokens, .state_tokens = p->state, .action_mask = p->amask,
                  .ctrl_freqs = p->freqs, .img_tokens_dev = img_dev};
  if (rdt_model_sample(p->model, &in, p->noise, p->chunks) != 0) return -1;
  p->ncalls++;
  p->nrows += n;
  return 0;
}

int eval_policy_run(eval_policy *p, eval_request *const *r, int n) {
  RDT_CHECK(n >= 1 && p->nlang > 0, "eval_policy_run: no requests or no instructions");
  RDT_CHECK(p->mc.state_token_dim == RDT_UNI_DIM && p->mc.img_history_size == RDT_IMG_HISTORY &&
            p->mc.num_cameras == RDT_NUM_CAMERAS,
            "the model config must use the 128-dim unified vector, 2 history frames and 3 cameras");
  int per = p->rows ? 1 : n;
  reserve_batch(p, per);
  for (int first = 0; first < n; first += per) {
    for (int i = 0; i < per; i++) fill_row(p, i, r[first + i]);
    if (run_batch(p, per) != 0) return -1;
    for (int i = 0; i < per; i++)
      memcpy(r[first + i]->chunk, p->chunks + (size_t)i * chunk_floats(p), chunk_floats(p) * sizeof(float));
  }
  return 0;
}

void eval_policy_action(const eval_policy *p, const eval_request *r, int k, const rdt_raw_obs *cur,
                        double action[SIM_ACTION_DIM]) {
  rdt_uni_action_to_libero(p->map.format, r->chunk + (size_t)k * p->mc.action_dim, cur, action);
}
