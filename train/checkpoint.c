/* train/checkpoint.c: atomic training checkpoints and resume (see checkpoint.h). */
#include "train/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"

/* ---------------------------------------------------------------- names */
/* N for a name of the exact form checkpoint-<digits>, else -1. */
static int64_t ckpt_number(const char *name) {
  if (strncmp(name, "checkpoint-", 11) != 0 || !name[11]) return -1;
  int64_t n = 0;
  for (const char *p = name + 11; *p; p++) {
    if (*p < '0' || *p > '9' || n > INT64_MAX / 10 - 10) return -1;
    n = n * 10 + (*p - '0');
  }
  return n;
}

typedef struct {
  int64_t step;
  char *path;
} ckpt_entry;

static int entry_cmp(const void *a, const void *b) {
  int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
  return (x > y) - (x < y);
}

/* Complete checkpoint folders of output_dir, oldest first; count or -1. */
static int ckpt_list(const char *output_dir, ckpt_entry **out) {
  *out = NULL;
  if (!rdt_is_dir(output_dir)) return 0;
  char **names;
  int n = rdt_list_dir(output_dir, "", &names);
  if (n < 0) return -1;
  ckpt_entry *e = rdt_calloc((size_t)n + 1, sizeof *e);
  int k = 0;
  for (int i = 0; i < n; i++) {
    int64_t step = ckpt_number(names[i]);
    char *path = rdt_path_join(output_dir, names[i]);
    char *state = rdt_path_join(path, "trainer_state.json");
    if (step >= 0 && rdt_is_dir(path) && rdt_is_file(state)) {
      e[k].step = step;
      e[k++].path = path;
    } else {
      free(path);
    }
    free(state);
    free(names[i]);
  }
  free(names);
  qsort(e, (size_t)k, sizeof *e, entry_cmp);
  *out = e;
  return k;
}

static void ckpt_list_free(ckpt_entry *e, int n) {
  for (int i = 0; i < n; i++) free(e[i].path);
  free(e);
}

char *rdt_ckpt_latest(const char *output_dir) {
  ckpt_entry *e;
  int n = ckpt_list(output_dir, &e);
  char *latest = NULL;
  if (n > 0) latest = rdt_strdup(e[n - 1].path);
  if (n >= 0) ckpt_list_free(e, n);
  rdt_error_clear();
  return latest;
}

int rdt_ckpt_prune(const char *output_dir, int limit) {
  if (limit <= 0) return 0;
  ckpt_entry *e;
  int n = ckpt_list(output_dir, &e);
  if (n < 0) return -1;
  int removed = 0, rc = 0;
  for (int i = 0; i + limit < n && rc == 0; i++, removed++) rc = rdt_rmtree(e[i].path);
  ckpt_list_free(e, n);
  return rc ? -1 : removed;
}

int rdt_ckpt_clean_temp(const char *output_dir) {
  char **names = NULL;
  int n = rdt_is_dir(output_dir) ? rdt_list_dir(output_dir, "", &names) : 0;
  int removed = 0;
  for (int i = 0; i < n; i++) {
    if (strncmp(names[i], ".checkpoint-", 12) == 0) {
      char *path = rdt_path_join(output_dir, names[i]);
      if (rdt_is_dir(path) && rdt_rmtree(path) == 0) removed++;
      free(path);
    }
    free(names[i]);
  }
  if (n >= 0) free(names);
  rdt_error_clear();
  return removed;
}

/* ---------------------------------------------------------------- optimizer file */
/* AdamW moments by parameter name, F32. */
static int optim_save(rdt_model *m, const rdt_ckpt_host *h, int64_t adam_step, const char *path) {
  rdt_st_writer *w = rdt_st_writer_new();
  char step[32], name[128];
  snprintf(step, sizeof step, "%lld", (long long)adam_step);
  rdt_st_writer_meta(w, "step", step);
  for (int i = 0; i < rdt_model_param_count(m); i++) {
    const rdt_param_info *p = rdt_model_param(m, i);
    snprintf(name, sizeof name, "%s.exp_avg", p->name);
    rdt_st_writer_add(w, name, RDT_F32, p->ndim, p->shape, h->exp_avg + p->offset);
    snprintf(name, sizeof name, "%s.exp_avg_sq", p->name);
    rdt_st_writer_add(w, name, RDT_F32, p->ndim, p->shape, h->exp_avg_sq + p->offset);
  }
  int rc = rdt_st_writer_save(w, path);
  rdt_st_writer_free(w);
  return rc;
}

/* One F32 moment tensor of the right shape into host + offset. */
static int optim_read_one(const rdt_st *st, const rdt_param_info *p, const char *suffix, float *dst) {
  char name[128];
  snprintf(name, sizeof name, "%s.%s", p->name, suffix);
  const rdt_tensor *t = rdt_st_find(st, name);
  RDT_CHECK(t && t->dtype == RDT_F32 && (size_t)rdt_numel(t) == p->numel,
            "%s: missing or malformed tensor %s", rdt_st_path(st), name);
  memcpy(dst, t->data, p->numel * sizeof(float));
  return 0;
}

static int optim_load(rdt_model *m, rdt_ckpt_host *h, const char *path) {
  rdt_st *st = rdt_st_open(path);
  if (!st) return -1;
  int rc = 0;
  for (int i = 0; i < rdt_model_param_count(m) && rc == 0; i++) {
    const rdt_param_info *p = rdt_model_param(m, i);
    rc = optim_read_one(st, p, "exp_avg", h->exp_avg + p->offset);
    if (rc == 0) rc = optim_read_one(st, p, "exp_avg_sq", h->exp_avg_sq + p->offset);
  }
  rdt_st_close(st);
  return rc;
}

/* ---------------------------------------------------------------- trainer state */
static char *state_to_json(const rdt_train_state *s, const char *args_json) {
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "global_step"), jw_int(&w, s->global_step);
  jw_key(&w, "samples_seen"), jw_int(&w, s->samples_seen);
  jw_key(&w, "micro_steps"), jw_int(&w, s->micro_steps);
  jw_key(&w, "ema_updates"), jw_int(&w, s->ema_updates);
  jw_key(&w, "adam_step"), jw_int(&w, s->adam_step);
  jw_key(&w, "validations"), jw_int(&w, s->validations);
  jw_key(&w, "seed"), jw_int(&w, (int64_t)s->seed);
  jw_key(&w, "world_size"), jw_int(&w, s->world_size);
  jw_key(&w, "train_batch_size"), jw_int(&w, s->train_batch_size);
  jw_key(&w, "gradient_accumulation_steps"), jw_int(&w, s->grad_accum);
  jw_key(&w, "rng");
  jw_str(&w, "every draw comes from a stream seeded by (seed, sample index); samples_seen is the position");
  if (args_json) jw_key(&w, "args"), jw_raw(&w, args_json);
  jw_obj_end(&w);
  return jw_finish(&w);
}

int rdt_ckpt_read_state(const char *dir, rdt_train_state *s) {
  char *path = rdt_path_join(dir, "trainer_state.json");
  rdt_json *j = rdt_json_load(path);
  int rc = j ? 0 : -1;
  struct { const char *key; int64_t *dst; } f[] = {
      {"global_step", &s->global_step}, {"samples_seen", &s->samples_seen},
      {"micro_steps", &s->micro_steps}, {"ema_updates", &s->ema_updates},
      {"adam_step", &s->adam_step},     {"validations", &s->validations},
      {"train_batch_size", &s->train_batch_size}, {"gradient_accumulation_steps", &s->grad_accum}};
  for (size_t i = 0; rc == 0 && i < sizeof f / sizeof f[0]; i++)
    if (rdt_json_int64(rdt_json_get(j, f[i].key), f[i].dst) != 0)
      rc = rdt_fail("%s: missing or non-integer \"%s\"", path, f[i].key);
  int64_t seed = 0, world = 0;
  if (rc == 0 && (rdt_json_int64(rdt_json_get(j, "seed"), &seed) != 0 ||
                  rdt_json_int64(rdt_json_get(j, "world_size"), &world) != 0))
    rc = rdt_fail("%s: missing seed or world_size", path);
  s->seed = (uint64_t)seed;
  s->world_size = (int)world;
  rdt_json_free(j);
  free(path);
  return rc;
}

/* ---------------------------------------------------------------- save and load */
/* Write every file of a checkpoint into folder dir (which exists). */
static int ckpt_write_files(const char *dir, rdt_model *m, const rdt_ckpt_host *h, const rdt_train_state *st,
                            const char *args_json) {
  char *ema_dir = rdt_path_join(dir, "ema");
  char *p_model = rdt_path_join(dir, "model.safetensors");
  char *p_ema = rdt_path_join(ema_dir, "model.safetensors");
  char *p_opt = rdt_path_join(dir, "optimizer.safetensors");
  char *p_cfg = rdt_path_join(dir, "config.json");
  char *p_state = rdt_path_join(dir, "trainer_state.json");
  char *state = state_to_json(st, args_json);
  int rc = rdt_mkdirs(ema_dir);
  if (rc == 0) rc = rdt_model_save(m, NULL, p_model, RDT_F32);
  if (rc == 0) rc = rdt_model_save_host(m, h->ema, p_ema, RDT_F32);
  if (rc == 0) rc = optim_save(m, h, st->adam_step, p_opt);
  if (rc == 0) rc = rdt_model_config_write(rdt_model_cfg(m), p_cfg);
  if (rc == 0) rc = rdt_write_file_atomic(p_state, state, strlen(state));
  if (rc == 0) rc = rdt_fsync_dir(ema_dir);
  if (rc == 0) rc = rdt_fsync_dir(dir);
  free(state), free(p_state), free(p_cfg), free(p_opt), free(p_ema), free(p_model), free(ema_dir);
  return rc;
}

/* Move tmp into place as final, replacing an older folder of that name. */
static int ckpt_publish(const char *output_dir, const char *tmp, const char *final, int64_t step) {
  char old[64];
  snprintf(old, sizeof old, ".checkpoint-%lld.old-%d", (long long)step, (int)getpid());
  char *old_path = rdt_path_join(output_dir, old);
  int rc = 0, had_old = rdt_is_dir(final);
  if (had_old && rename(final, old_path) != 0) rc = rdt_fail("%s: cannot move aside: %s", final, strerror(errno));
  if (rc == 0 && rename(tmp, final) != 0) rc = rdt_fail("%s: cannot rename to %s: %s", tmp, final, strerror(errno));
  if (rc == 0) rc = rdt_fsync_dir(output_dir);
  if (rc == 0 && had_old) rc = rdt_rmtree(old_path);
  free(old_path);
  return rc;
}

int rdt_ckpt_save(const char *output_dir, rdt_model *m, const rdt_ckpt_host *h, const rdt_train_state *st,
                  const char *args_json) {
  char name[64], tmp_name[96];
  snprintf(name, sizeof name, "checkpoint-%lld", (long long)st->global_step);
  snprintf(tmp_name, sizeof tmp_name, ".%s.tmp-%d", name, (int)getpid());
  char *final = rdt_path_join(output_dir, name), *tmp = rdt_path_join(output_dir, tmp_name);
  if (rdt_is_dir(tmp)) rdt_rmtree(tmp);
  int rc = rdt_mkdirs(tmp);
  if (rc == 0) rc = ckpt_write_files(tmp, m, h, st, args_json);
  if (rc == 0) rc = ckpt_publish(output_dir, tmp, final, st->global_step);
  if (rc != 0) {
    rdt_fail_ctx("saving %s", final);
    rdt_rmtree(tmp);
  }
  free(final);
  free(tmp);
  return rc;
}

int rdt_ckpt_load(const char *dir, rdt_model *m, rdt_ckpt_host *h, rdt_train_state *st) {
  char *p_model = rdt_path_join(dir, "model.safetensors");
  char *p_ema = rdt_path_join(dir, "ema/model.safetensors");
  char *p_opt = rdt_path_join(dir, "optimizer.safetensors");
  int rc = rdt_ckpt_read_state(dir, st);
  rdt_st *sm = rc == 0 ? rdt_st_open(p_model) : NULL;
  if (rc == 0) rc = sm ? rdt_model_load(m, sm, NULL) : -1;
  rdt_st *se = rc == 0 ? rdt_st_open(p_ema) : NULL;
  if (rc == 0) rc = se ? rdt_model_load_host(m, se, h->ema) : -1;
  if (rc == 0) rc = optim_load(m, h, p_opt);
  rdt_st_close(sm);
  rdt_st_close(se);
  free(p_model), free(p_ema), free(p_opt);
  return rc;
}

int rdt_ckpt_load_upstream(const char *dir, rdt_model *m, float *ema, rdt_train_state *st, int64_t global_batch) {
  int64_t step = ckpt_number(rdt_basename(dir));
  RDT_CHECK(step >= 0, "%s: not a checkpoint-N folder, so its step is unknown", dir);
  rdt_st *sm = rdt_st_open(dir);
  int rc = sm ? rdt_model_load(m, sm, NULL) : -1;
  rdt_st_close(sm);
  char *p_ema = rdt_path_join(dir, "ema/model.safetensors");
  if (rc == 0 && rdt_is_file(p_ema)) {
    rdt_st *se = rdt_st_open(p_ema);
    rc = se ? rdt_model_load_host(m, se, ema) : -1;
    rdt_st_close(se);
  } else if (rc == 0) {
    k_download(rdt_model_backend(m), ema, rdt_model_params(m), rdt_model_numel(m) * sizeof(float));
  }
  free(p_ema);
  if (rc != 0) return -1;
  st->global_step = step;
  st->samples_seen = step * global_batch;
  st->micro_steps = step * st->grad_accum;
  st->ema_updates = step * st->grad_accum;
  st->adam_step = 0;
  return 0;
}

int rdt_ckpt_save_final(const char *output_dir, rdt_model *m, const float *ema) {
  char *ema_dir = rdt_path_join(output_dir, "ema");
  char *p_model = rdt_path_join(output_dir, "model.safetensors");
  char *p_ema = rdt_path_join(ema_dir, "model.safetensors");
  char *p_cfg = rdt_path_join(output_dir, "config.json");
  int rc = rdt_mkdirs(ema_dir);
  if (rc == 0) rc = rdt_model_save(m, NULL, p_model, RDT_F32);
  if (rc == 0) rc = rdt_model_save_host(m, ema, p_ema, RDT_F32);
  if (rc == 0) rc = rdt_model_config_write(rdt_model_cfg(m), p_cfg);
  free(p_cfg), free(p_ema), free(p_model), free(ema_dir);
  return rc;
}
