/* model/rdt_config.c: the RDT configuration (YAML or upstream config.json),
 * its config.json writer, and the parameter table with upstream names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "model/rdt.h"

/* ================================================================ defaults and checks */

/* RDT-1B as released (configs/base.yaml with SigLIP so400m and T5-XXL). */
static void config_defaults(rdt_model_config *c) {
  memset(c, 0, sizeof *c);
  c->hidden_size = 2048;
  c->depth = 28;
  c->num_heads = 32;
  c->action_dim = 128;
  c->pred_horizon = 64;
  c->lang_token_dim = 4096;
  c->img_token_dim = 1152;
  c->state_token_dim = 128;
  c->max_lang_cond_len = 1024;
  c->img_history_size = 2;
  c->num_cameras = 3;
  c->img_tokens_per_image = 729;
  c->lang_adaptor.depth = 2;
  c->img_adaptor.depth = 2;
  c->state_adaptor.depth = 3;
  c->num_train_timesteps = 1000;
  c->num_inference_timesteps = 5;
  strcpy(c->beta_schedule, "squaredcos_cap_v2");
  strcpy(c->prediction_type, "sample");
  c->ema_inv_gamma = 1.0;
  c->ema_power = 0.75;
  c->ema_max_value = 0.9999;
}

/* The pos-embed configs upstream's trainer builds from the YAML:
 * [("lang", -max_lang)] and [("image", (history, cameras, -tokens))]. */
static void config_derive_pos(rdt_model_config *c) {
  c->lang_pos.n = 1;
  snprintf(c->lang_pos.m[0].name, sizeof c->lang_pos.m[0].name, "lang");
  c->lang_pos.m[0].ndim = 1;
  c->lang_pos.m[0].size[0] = -c->max_lang_cond_len;
  c->img_pos.n = 1;
  snprintf(c->img_pos.m[0].name, sizeof c->img_pos.m[0].name, "image");
  c->img_pos.m[0].ndim = 3;
  c->img_pos.m[0].size[0] = c->img_history_size;
  c->img_pos.m[0].size[1] = c->num_cameras;
  c->img_pos.m[0].size[2] = -c->img_tokens_per_image;
  c->img_cond_len = c->img_history_size * c->num_cameras * c->img_tokens_per_image;
}

/* Number of tokens a pos config covers (sum over modalities of prod |size|). */
static long pos_config_tokens(const rdt_pos_config *p) {
  long total = 0;
  for (int i = 0; i < p->n; i++) {
    long n = 1;
    for (int d = 0; d < p->m[i].ndim; d++) n *= labs((long)p->m[i].size[d]);
    total += n;
  }
  return total;
}

/* Parse "linear" or "mlp{N}x_gelu". */
static int parse_adaptor(const char *key, const char *s, rdt_adaptor_kind *out) {
  if (strcmp(s, "linear") == 0) return out->depth = 0, 0;
  int n = 0, used = 0;
  if (sscanf(s, "mlp%dx_gelu%n", &n, &used) == 1 && used == (int)strlen(s) && n >= 1 && n <= 16)
    return out->depth = n, 0;
  return rdt_fail("%s: unknown adaptor '%s' (expected linear or mlpNx_gelu)", key, s);
}

/* The adaptor's config string into buf. */
static const char *adaptor_name(rdt_adaptor_kind k, char *buf, size_t len) {
  if (k.depth == 0) snprintf(buf, len, "linear");
  else snprintf(buf, len, "mlp%dx_gelu", k.depth);
  return buf;
}

int rdt_model_config_check(const rdt_model_config *c) {
  RDT_CHECK(c->hidden_size > 0 && c->depth > 0 && c->num_heads > 0,
            "model.rdt: hidden_size %d, depth %d and num_heads %d must be positive",
            c->hidden_size, c->depth, c->num_heads);
  RDT_CHECK(c->hidden_size % c->num_heads == 0, "model.rdt: hidden_size %d is not divisible by num_heads %d",
            c->hidden_size, c->num_heads);
  RDT_CHECK(c->hidden_size % 4 == 0, "model.rdt: hidden_size %d must be a multiple of 4 (sincos embeddings)",
            c->hidden_size);
  RDT_CHECK(c->hidden_size / c->num_heads >= 2, "model.rdt: head dim %d is too small",
            c->hidden_size / c->num_heads);
  RDT_CHECK(c->pred_horizon > 0 && c->action_dim > 0, "pred_horizon %d and action_dim %d must be positive",
            c->pred_horizon, c->action_dim);
  RDT_CHECK(c->action_dim == c->state_token_dim,
            "action_dim (common.state_dim) %d must equal model.state_token_dim %d: noisy actions "
            "share the state adaptor", c->action_dim, c->state_token_dim);
  RDT_CHECK(c->lang_token_dim > 0 && c->img_token_dim > 0 && c->state_token_dim > 0,
            "token dims must be positive (lang %d, img %d, state %d)", c->lang_token_dim,
            c->img_token_dim, c->state_token_dim);
  RDT_CHECK(c->max_lang_cond_len > 0 && c->img_cond_len > 0,
            "max_lang_cond_len %d and img_cond_len %d must be positive", c->max_lang_cond_len,
            c->img_cond_len);
  if (c->lang_pos.n > 0)
    RDT_CHECK(pos_config_tokens(&c->lang_pos) == c->max_lang_cond_len,
              "lang_pos_embed_config covers %ld tokens, max_lang_cond_len is %d",
              pos_config_tokens(&c->lang_pos), c->max_lang_cond_len);
  if (c->img_pos.n > 0)
    RDT_CHECK(pos_config_tokens(&c->img_pos) == c->img_cond_len,
              "img_pos_embed_config covers %ld tokens, img_cond_len is %d",
              pos_config_tokens(&c->img_pos), c->img_cond_len);
  RDT_CHECK(strcmp(c->beta_schedule, "squaredcos_cap_v2") == 0,
            "noise_scheduler.beta_schedule '%s' is not supported (squaredcos_cap_v2)", c->beta_schedule);
  RDT_CHECK(strcmp(c->prediction_type, "sample") == 0 || strcmp(c->prediction_type, "epsilon") == 0,
            "noise_scheduler.prediction_type '%s' is not supported (sample or epsilon)", c->prediction_type);
  RDT_CHECK(!c->clip_sample, "noise_scheduler.clip_sample: true is not supported (RDT uses false)");
  RDT_CHECK(c->num_train_timesteps >= 2 && c->num_inference_timesteps >= 1 &&
            c->num_inference_timesteps <= c->num_train_timesteps,
            "noise_scheduler: num_train_timesteps %d / num_inference_timesteps %d out of range",
            c->num_train_timesteps, c->num_inference_timesteps);
  return 0;
}

/* ================================================================ YAML */

/* Copy a string config value into a fixed buffer. */
static int yaml_str(const rdt_config *y, const char *key, char *dst, size_t cap) {
  const char *s = rdt_config_str(y, key, dst);
  RDT_CHECK(strlen(s) < cap, "%s: value '%s' is too long", key, s);
  if (s != dst) memmove(dst, s, strlen(s) + 1);
  return 0;
}

int rdt_model_config_from_yaml(const rdt_config *y, rdt_model_config *c) {
  config_defaults(c);
  c->hidden_size = (int)rdt_config_int(y, "model.rdt.hidden_size", c->hidden_size);
  c->depth = (int)rdt_config_int(y, "model.rdt.depth", c->depth);
  c->num_heads = (int)rdt_config_int(y, "model.rdt.num_heads", c->num_heads);
  c->action_dim = (int)rdt_config_int(y, "common.state_dim", c->action_dim);
  c->pred_horizon = (int)rdt_config_int(y, "common.action_chunk_size", c->pred_horizon);
  c->img_history_size = (int)rdt_config_int(y, "common.img_history_size", c->img_history_size);
  c->num_cameras = (int)rdt_config_int(y, "common.num_cameras", c->num_cameras);
  c->max_lang_cond_len = (int)rdt_config_int(y, "dataset.tokenizer_max_length", c->max_lang_cond_len);
  c->lang_token_dim = (int)rdt_config_int(y, "model.lang_token_dim", c->lang_token_dim);
  c->img_token_dim = (int)rdt_config_int(y, "model.img_token_dim", c->img_token_dim);
  c->state_token_dim = (int)rdt_config_int(y, "model.state_token_dim", c->state_token_dim);
  c->img_tokens_per_image = (int)rdt_config_int(y, "model.img_tokens_per_image", c->img_tokens_per_image);
  c->num_train_timesteps = (int)rdt_config_int(y, "model.noise_scheduler.num_train_timesteps",
                                               c->num_train_timesteps);
  c->num_inference_timesteps = (int)rdt_config_int(y, "model.noise_scheduler.num_inference_timesteps",
                                                   c->num_inference_timesteps);
  c->clip_sample = rdt_config_bool(y, "model.noise_scheduler.clip_sample", 0);
  c->ema_update_after_step = rdt_config_int(y, "model.ema.update_after_step", 0);
  c->ema_inv_gamma = rdt_config_float(y, "model.ema.inv_gamma", c->ema_inv_gamma);
  c->ema_power = rdt_config_float(y, "model.ema.power", c->ema_power);
  c->ema_min_value = rdt_config_float(y, "model.ema.min_value", c->ema_min_value);
  c->ema_max_value = rdt_config_float(y, "model.ema.max_value", c->ema_max_value);
  char lang[32] = "mlp2x_gelu", img[32] = "mlp2x_gelu", state[32] = "mlp3x_gelu";
  if (yaml_str(y, "model.noise_scheduler.beta_schedule", c->beta_schedule, sizeof c->beta_schedule) ||
      yaml_str(y, "model.noise_scheduler.prediction_type", c->prediction_type, sizeof c->prediction_type) ||
      yaml_str(y, "model.lang_adaptor", lang, sizeof lang) ||
      yaml_str(y, "model.img_adaptor", img, sizeof img) ||
      yaml_str(y, "model.state_adaptor", state, sizeof state))
    return rdt_fail_ctx("%s", rdt_config_path(y));
  if (parse_adaptor("model.lang_adaptor", lang, &c->lang_adaptor) ||
      parse_adaptor("model.img_adaptor", img, &c->img_adaptor) ||
      parse_adaptor("model.state_adaptor", state, &c->state_adaptor))
    return rdt_fail_ctx("%s", rdt_config_path(y));
  config_derive_pos(c);
  if (rdt_config_check(y) != 0 || rdt_model_config_check(c) != 0)
    return rdt_fail_ctx("%s", rdt_config_path(y));
  return 0;
}

/* ================================================================ config.json */

/* An integer member; def is used when absent, except INT64_MIN: then required. */
static int json_int(const rdt_json *j, const char *key, int64_t def, int64_t *out) {
  const rdt_json *v = rdt_json_get(j, key);
  if (!v) {
    RDT_CHECK(def != INT64_MIN, "missing key '%s'", key);
    *out = def;
    return 0;
  }
  RDT_CHECK(v->type == RDT_JSON_NUMBER && rdt_json_int64(v, out) == 0, "'%s' must be an integer", key);
  return 0;
}

/* Required int member into an int. */
static int json_req_int(const rdt_json *j, const char *key, int *out) {
  int64_t v;
  if (json_int(j, key, INT64_MIN, &v)) return -1;
  RDT_CHECK(v >= -(1LL << 30) && v <= (1LL << 30), "'%s' = %lld is out of range", key, (long long)v);
  *out = (int)v;
  return 0;
}

/* Optional number member. */
static int json_num(const rdt_json *j, const char *key, double *out) {
  const rdt_json *v = j ? rdt_json_get(j, key) : NULL;
  if (!v) return 0;
  RDT_CHECK(v->type == RDT_JSON_NUMBER, "'%s' must be a number", key);
  *out = v->number;
  return 0;
}

/* Optional string member into a fixed buffer. */
static int json_str(const rdt_json *j, const char *key, char *dst, size_t cap) {
  const rdt_json *v = j ? rdt_json_get(j, key) : NULL;
  if (!v) return 0;
  RDT_CHECK(v->type == RDT_JSON_STRING && strlen(v->string) < cap, "'%s' must be a short string", key);
  strcpy(dst, v->string);
  return 0;
}

/* One number of a pos config as an int. */
static int pos_size(const rdt_json *v, const char *key, int *out) {
  int64_t x;
  RDT_CHECK(v && v->type == RDT_JSON_NUMBER && rdt_json_int64(v, &x) == 0 && x != 0 &&
            x > -(1 << 30) && x < (1 << 30), "%s: sizes must be non-zero integers", key);
  *out = (int)x;
  return 0;
}

/* [["name", size or [sizes]], ...] or null. */
static int parse_pos_config(const rdt_json *j, const char *key, rdt_pos_config *p) {
  memset(p, 0, sizeof *p);
  const rdt_json *a = rdt_json_get(j, key);
  if (!a || a->type == RDT_JSON_NULL) return 0;
  RDT_CHECK(a->type == RDT_JSON_ARRAY && a->count <= RDT_POS_MAX_MODALITIES,
            "%s must be a list of at most %d [name, size] pairs", key, RDT_POS_MAX_MODALITIES);
  for (int i = 0; i < a->count; i++) {
    const rdt_json *e = rdt_json_at(a, i);
    rdt_pos_modality *m = &p->m[i];
    RDT_CHECK(e->type == RDT_JSON_ARRAY && e->count == 2 && e->items[0].type == RDT_JSON_STRING &&
              strlen(e->items[0].string) < sizeof m->name, "%s[%d] must be [name, size]", key, i);
    strcpy(m->name, e->items[0].string);
    const rdt_json *s = &e->items[1];
    if (s->type == RDT_JSON_ARRAY) {
      RDT_CHECK(s->count >= 1 && s->count <= RDT_POS_MAX_GRID, "%s[%d]: 1 to %d grid sizes", key, i,
                RDT_POS_MAX_GRID);
      m->ndim = s->count;
      for (int d = 0; d < s->count; d++)
        if (pos_size(&s->items[d], key, &m->size[d])) return -1;
    } else {
      m->ndim = 1;
      if (pos_size(s, key, &m->size[0])) return -1;
    }
  }
  p->n = a->count;
  return 0;
}

/* The fields of config.json into c (defaults already set). */
static int config_from_json(const rdt_json *j, rdt_model_config *c) {
  RDT_CHECK(j->type == RDT_JSON_OBJECT, "config.json must be an object");
  const rdt_json *rdt = rdt_json_get(j, "rdt");
  RDT_CHECK(rdt && rdt->type == RDT_JSON_OBJECT, "missing object 'rdt'");
  if (json_req_int(rdt, "hidden_size", &c->hidden_size) || json_req_int(rdt, "depth", &c->depth) ||
      json_req_int(rdt, "num_heads", &c->num_heads) || json_req_int(j, "action_dim", &c->action_dim) ||
      json_req_int(j, "pred_horizon", &c->pred_horizon) ||
      json_req_int(j, "lang_token_dim", &c->lang_token_dim) ||
      json_req_int(j, "img_token_dim", &c->img_token_dim) ||
      json_req_int(j, "state_token_dim", &c->state_token_dim) ||
      json_req_int(j, "max_lang_cond_len", &c->max_lang_cond_len) ||
      json_req_int(j, "img_cond_len", &c->img_cond_len))
    return -1;
  if (parse_pos_config(j, "lang_pos_embed_config", &c->lang_pos) ||
      parse_pos_config(j, "img_pos_embed_config", &c->img_pos))
    return -1;
  /* History, cameras and tokens per image, from the image grid when given. */
  const rdt_pos_modality *im = c->img_pos.n == 1 && c->img_pos.m[0].ndim == 3 ? &c->img_pos.m[0] : NULL;
  c->img_history_size = im ? abs(im->size[0]) : 1;
  c->num_cameras = im ? abs(im->size[1]) : 1;
  c->img_tokens_per_image = im ? abs(im->size[2]) : c->img_cond_len;
  char name[32];
  const char *keys[3] = {"lang_adaptor", "img_adaptor", "state_adaptor"};
  rdt_adaptor_kind *kinds[3] = {&c->lang_adaptor, &c->img_adaptor, &c->state_adaptor};
  for (int i = 0; i < 3; i++) {
    adaptor_name(*kinds[i], name, sizeof name);
    if (json_str(j, keys[i], name, sizeof name) || parse_adaptor(keys[i], name, kinds[i])) return -1;
  }
  const rdt_json *ns = rdt_json_get(j, "noise_scheduler");
  if (ns) {
    int64_t v;
    if (json_int(ns, "num_train_timesteps", c->num_train_timesteps, &v)) return -1;
    c->num_train_timesteps = (int)v;
    if (json_int(ns, "num_inference_timesteps", c->num_inference_timesteps, &v)) return -1;
    c->num_inference_timesteps = (int)v;
    if (json_str(ns, "beta_schedule", c->beta_schedule, sizeof c->beta_schedule) ||
        json_str(ns, "prediction_type", c->prediction_type, sizeof c->prediction_type))
      return -1;
    const rdt_json *cs = rdt_json_get(ns, "clip_sample");
    RDT_CHECK(!cs || cs->type == RDT_JSON_BOOL, "'clip_sample' must be a boolean");
    c->clip_sample = cs ? cs->boolean : 0;
  }
  const rdt_json *ema = rdt_json_get(j, "ema");
  if (ema && json_int(ema, "update_after_step", 0, &c->ema_update_after_step)) return -1;
  if (json_num(ema, "inv_gamma", &c->ema_inv_gamma) || json_num(ema, "power", &c->ema_power) ||
      json_num(ema, "min_value", &c->ema_min_value) || json_num(ema, "max_value", &c->ema_max_value))
    return -1;
  return rdt_model_config_check(c);
}

int rdt_model_config_from_json(const rdt_json *j, rdt_model_config *c) {
  config_defaults(c);
  return config_from_json(j, c) ? rdt_fail_ctx("config.json") : 0;
}

/* Does path end with suffix? */
static int ends_with(const char *path, const char *suffix) {
  size_t n = strlen(path), k = strlen(suffix);
  return n >= k && strcmp(path + n - k, suffix) == 0;
}

int rdt_model_config_load(const char *path, rdt_model_config *out) {
  if (ends_with(path, ".json")) {
    rdt_json *j = rdt_json_load(path);
    if (!j) return -1;
    config_defaults(out);
    int rc = config_from_json(j, out);
    rdt_json_free(j);
    return rc ? rdt_fail_ctx("%s", path) : 0;
  }
  rdt_config *y = rdt_config_load(path);
  if (!y) return -1;
  int rc = rdt_model_config_from_yaml(y, out);
  rdt_config_free(y);
  return rc;
}

int rdt_model_config_beside(const char *weights_path, rdt_model_config *out) {
  char *dir = rdt_is_dir(weights_path) ? rdt_strdup(weights_path) : rdt_dirname(weights_path);
  char *cands[2] = {rdt_path_join(dir, "config.json"), NULL};
  if (strcmp(rdt_basename(dir), "ema") == 0) {   /* checkpoint-N/ema/model.safetensors */
    char *parent = rdt_dirname(dir);
    cands[1] = rdt_path_join(parent, "config.json");
    free(parent);
  }
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++)
    if (cands[i] && rdt_is_file(cands[i])) rc = rdt_model_config_load(cands[i], out) ? -1 : 1;
  free(cands[0]);
  free(cands[1]);
  free(dir);
  return rc;
}

/* A pos config as upstream's JSON: [["lang", -1024]] or null. */
static void write_pos_config(rdt_jw *w, const rdt_pos_config *p) {
  if (p->n == 0) {
    jw_null(w);
    return;
  }
  jw_arr(w);
  for (int i = 0; i < p->n; i++) {
    jw_arr(w);
    jw_str(w, p->m[i].name);
    if (p->m[i].ndim == 1 && strcmp(p->m[i].name, "image") != 0) {
      jw_int(w, p->m[i].size[0]);
    } else {
      jw_arr(w);
      for (int d = 0; d < p->m[i].ndim; d++) jw_int(w, p->m[i].size[d]);
      jw_arr_end(w);
    }
    jw_arr_end(w);
  }
  jw_arr_end(w);
}

char *rdt_model_config_to_json(const rdt_model_config *c) {
  rdt_jw w;
  char name[32];
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "action_dim"), jw_int(&w, c->action_dim);
  jw_key(&w, "ema"), jw_obj(&w);
  jw_key(&w, "inv_gamma"), jw_num(&w, c->ema_inv_gamma);
  jw_key(&w, "max_value"), jw_num(&w, c->ema_max_value);
  jw_key(&w, "min_value"), jw_num(&w, c->ema_min_value);
  jw_key(&w, "power"), jw_num(&w, c->ema_power);
  jw_key(&w, "update_after_step"), jw_int(&w, c->ema_update_after_step);
  jw_obj_end(&w);
  jw_key(&w, "img_adaptor"), jw_str(&w, adaptor_name(c->img_adaptor, name, sizeof name));
  jw_key(&w, "img_cond_len"), jw_int(&w, c->img_cond_len);
  jw_key(&w, "img_pos_embed_config"), write_pos_config(&w, &c->img_pos);
  jw_key(&w, "img_token_dim"), jw_int(&w, c->img_token_dim);
  jw_key(&w, "lang_adaptor"), jw_str(&w, adaptor_name(c->lang_adaptor, name, sizeof name));
  jw_key(&w, "lang_pos_embed_config"), write_pos_config(&w, &c->lang_pos);
  jw_key(&w, "lang_token_dim"), jw_int(&w, c->lang_token_dim);
  jw_key(&w, "max_lang_cond_len"), jw_int(&w, c->max_lang_cond_len);
  jw_key(&w, "noise_scheduler"), jw_obj(&w);
  jw_key(&w, "beta_schedule"), jw_str(&w, c->beta_schedule);
  jw_key(&w, "clip_sample"), jw_bool(&w, c->clip_sample);
  jw_key(&w, "num_inference_timesteps"), jw_int(&w, c->num_inference_timesteps);
  jw_key(&w, "num_train_timesteps"), jw_int(&w, c->num_train_timesteps);
  jw_key(&w, "prediction_type"), jw_str(&w, c->prediction_type);
  jw_key(&w, "type"), jw_str(&w, "ddpm");
  jw_obj_end(&w);
  jw_key(&w, "pred_horizon"), jw_int(&w, c->pred_horizon);
  jw_key(&w, "rdt"), jw_obj(&w);
  jw_key(&w, "cond_pos_embed_type"), jw_str(&w, "multimodal");
  jw_key(&w, "depth"), jw_int(&w, c->depth);
  jw_key(&w, "hidden_size"), jw_int(&w, c->hidden_size);
  jw_key(&w, "num_heads"), jw_int(&w, c->num_heads);
  jw_obj_end(&w);
  jw_key(&w, "state_adaptor"), jw_str(&w, adaptor_name(c->state_adaptor, name, sizeof name));
  jw_key(&w, "state_token_dim"), jw_int(&w, c->state_token_dim);
  jw_obj_end(&w);
  return jw_finish(&w);
}

int rdt_model_config_write(const rdt_model_config *cfg, const char *path) {
  char *text = rdt_model_config_to_json(cfg);
  size_t n = strlen(text);
  text = rdt_realloc(text, n + 2);
  text[n] = '\n';
  int rc = rdt_write_file_atomic(path, text, n + 1);
  free(text);
  return rc;
}

/* ================================================================ parameter table */

typedef struct {
  rdt_param_info *t;
  int n, cap;
  size_t offset;
} table_builder;

/* Append one tensor (shape given as up to 3 sizes; 0 ends the list). */
static void table_add(table_builder *tb, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...)
    RDT_PRINTF(5, 6);
static void table_add(table_builder *tb, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...) {
  if (tb->n == tb->cap) {
    tb->cap = tb->cap ? 2 * tb->cap : 64;
    tb->t = rdt_realloc(tb->t, sizeof *tb->t * tb->cap);
  }
  rdt_param_info *p = &tb->t[tb->n++];
  memset(p, 0, sizeof *p);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->name, sizeof p->name, fmt, ap);
  va_end(ap);
  int64_t dims[3] = {d0, d1, d2};
  p->numel = 1;
  for (int i = 0; i < 3 && dims[i] > 0; i++) p->shape[p->ndim++] = dims[i], p->numel *= (size_t)dims[i];
  p->offset = tb->offset;
  tb->offset += p->numel;
}

/* A Linear's weight [out, in] and bias [out] under prefix. */
static void table_linear(table_builder *tb, const char *prefix, int out, int in) {
  table_add(tb, out, in, 0, "%s.weight", prefix);
  table_add(tb, out, 0, 0, "%s.bias", prefix);
}

/* An adaptor: a bare Linear (linear) or Sequential Linear, (GELU, Linear) x (n-1). */
static void table_adaptor(table_builder *tb, const char *name, rdt_adaptor_kind k, int in, int H) {
  char prefix[64];
  if (k.depth == 0) {
    table_linear(tb, name, H, in);
    return;
  }
  for (int i = 0; i < k.depth; i++) {
    snprintf(prefix, sizeof prefix, "%s.%d", name, 2 * i);
    table_linear(tb, prefix, H, i == 0 ? in : H);
  }
}

int rdt_param_table(const rdt_model_config *c, rdt_param_info **out) {
  table_builder tb = {0};
  int H = c->hidden_size, hd = c->hidden_size / c->num_heads;
  char p[96];
  /* RDT's own parameters first, then its children in registration order. */
  table_add(&tb, 1, c->pred_horizon + 3, H, "model.x_pos_embed");
  table_add(&tb, 1, c->max_lang_cond_len, H, "model.lang_cond_pos_embed");
  table_add(&tb, 1, c->img_cond_len, H, "model.img_cond_pos_embed");
  const char *embedders[2] = {"t_embedder", "freq_embedder"};
  for (int e = 0; e < 2; e++) {
    snprintf(p, sizeof p, "model.%s.mlp.0", embedders[e]);
    table_linear(&tb, p, H, 256);
    snprintf(p, sizeof p, "model.%s.mlp.2", embedders[e]);
    table_linear(&tb, p, H, H);
  }
  for (int i = 0; i < c->depth; i++) {
    table_add(&tb, H, 0, 0, "model.blocks.%d.norm1.weight", i);
    snprintf(p, sizeof p, "model.blocks.%d.attn.qkv", i), table_linear(&tb, p, 3 * H, H);
    table_add(&tb, hd, 0, 0, "model.blocks.%d.attn.q_norm.weight", i);
    table_add(&tb, hd, 0, 0, "model.blocks.%d.attn.k_norm.weight", i);
    snprintf(p, sizeof p, "model.blocks.%d.attn.proj", i), table_linear(&tb, p, H, H);
    snprintf(p, sizeof p, "model.blocks.%d.cross_attn.q", i), table_linear(&tb, p, H, H);
    snprintf(p, sizeof p, "model.blocks.%d.cross_attn.kv", i), table_linear(&tb, p, 2 * H, H);
    table_add(&tb, hd, 0, 0, "model.blocks.%d.cross_attn.q_norm.weight", i);
    table_add(&tb, hd, 0, 0, "model.blocks.%d.cross_attn.k_norm.weight", i);
    snprintf(p, sizeof p, "model.blocks.%d.cross_attn.proj", i), table_linear(&tb, p, H, H);
    table_add(&tb, H, 0, 0, "model.blocks.%d.norm2.weight", i);
    snprintf(p, sizeof p, "model.blocks.%d.ffn.fc1", i), table_linear(&tb, p, H, H);
    snprintf(p, sizeof p, "model.blocks.%d.ffn.fc2", i), table_linear(&tb, p, H, H);
    table_add(&tb, H, 0, 0, "model.blocks.%d.norm3.weight", i);
  }
  table_add(&tb, H, 0, 0, "model.final_layer.norm_final.weight");
  table_linear(&tb, "model.final_layer.ffn_final.fc1", H, H);
  table_linear(&tb, "model.final_layer.ffn_final.fc2", c->action_dim, H);
  table_adaptor(&tb, "lang_adaptor", c->lang_adaptor, c->lang_token_dim, H);
  table_adaptor(&tb, "img_adaptor", c->img_adaptor, c->img_token_dim, H);
  table_adaptor(&tb, "state_adaptor", c->state_adaptor, 2 * c->state_token_dim, H);
  *out = tb.t;
  return tb.n;
}

size_t rdt_param_total(const rdt_param_info *t, int n) {
  return n > 0 ? t[n - 1].offset + t[n - 1].numel : 0;
}
