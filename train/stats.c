/* train/stats.c: dataset_stat.json entries (see stats.h). */
#include "train/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"

int rdt_stats_compute(const rdt_libero_data *d, int ds, rdt_dataset_stats *out) {
  rdt_stat_acc state, action;
  rdt_stat_acc_init(&state);
  rdt_stat_acc_init(&action);
  if (rdt_libero_stats(d, ds, &state, &action) != 0) return -1;
  RDT_CHECK(state.n > 0, "dataset %s has no steps", rdt_libero_dataset_name(d, ds));
  rdt_stat_acc_result(&state, &out->state);
  rdt_stat_acc_result(&action, &out->action);
  float mask[RDT_UNI_DIM];
  rdt_uni_action_mask(rdt_libero_options(d)->format, mask);
  double var = 0;
  int slots = 0;
  for (int i = 0; i < RDT_UNI_DIM; i++)
    if (mask[i] != 0) var += out->action.std[i] * out->action.std[i], slots++;
  out->action_std_global = slots ? sqrt(var / slots) : 0;
  out->num_steps = state.n;
  out->num_episodes = 0;
  for (int e = 0; e < rdt_libero_num_episodes(d); e++) out->num_episodes += rdt_libero_episode(d, e)->dataset == ds;
  return 0;
}

static void write_vec(rdt_jw *w, const char *key, const double *v) {
  jw_key(w, key);
  jw_arr(w);
  for (int i = 0; i < RDT_UNI_DIM; i++) jw_num(w, v[i]);
  jw_arr_end(w);
}

/* One entry as JSON text (malloc'd). */
static char *entry_json(const char *name, const rdt_dataset_stats *s) {
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "dataset_name"), jw_str(&w, name);
  write_vec(&w, "state_mean", s->state.mean);
  write_vec(&w, "state_std", s->state.std_nz);
  write_vec(&w, "state_min", s->state.min);
  write_vec(&w, "state_max", s->state.max);
  write_vec(&w, "action_mean", s->action.mean);
  write_vec(&w, "action_std", s->action.std);
  write_vec(&w, "action_min", s->action.min);
  write_vec(&w, "action_max", s->action.max);
  jw_key(&w, "action_std_global"), jw_num(&w, s->action_std_global);
  jw_key(&w, "num_steps"), jw_int(&w, s->num_steps);
  jw_key(&w, "num_episodes"), jw_int(&w, s->num_episodes);
  jw_obj_end(&w);
  return jw_finish(&w);
}

/* Re-encode a parsed JSON value (for the entries kept from an existing file). */
static void write_value(rdt_jw *w, const rdt_json *j) {
  switch (j->type) {
    case RDT_JSON_NULL: jw_null(w); break;
    case RDT_JSON_BOOL: jw_bool(w, j->boolean); break;
    case RDT_JSON_NUMBER: jw_raw(w, j->raw); break;
    case RDT_JSON_STRING: jw_str(w, j->string); break;
    case RDT_JSON_ARRAY:
      jw_arr(w);
      for (int i = 0; i < j->count; i++) write_value(w, &j->items[i]);
      jw_arr_end(w);
      break;
    case RDT_JSON_OBJECT:
      jw_obj(w);
      for (int i = 0; i < j->count; i++) jw_key(w, j->items[i].key), write_value(w, &j->items[i]);
      jw_obj_end(w);
      break;
  }
}

int rdt_stats_write(const char *path, const char *name, const rdt_dataset_stats *s) {
  rdt_json *old = rdt_is_file(path) ? rdt_json_load(path) : NULL;
  if (rdt_is_file(path) && (!old || old->type != RDT_JSON_OBJECT)) {
    rdt_json_free(old);
    return rdt_fail("%s: exists but is not a statistics JSON object; not overwriting it", path);
  }
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  for (int i = 0; old && i < old->count; i++)
    if (strcmp(old->items[i].key, name) != 0) jw_key(&w, old->items[i].key), write_value(&w, &old->items[i]);
  char *entry = entry_json(name, s);
  jw_key(&w, name), jw_raw(&w, entry);
  jw_obj_end(&w);
  char *text = jw_finish(&w);
  int rc = rdt_write_file_atomic(path, text, strlen(text));
  free(text);
  free(entry);
  rdt_json_free(old);
  return rc;
}

/* NAME's entry of a statistics file: 1, 0 (absent) or -1; *j_out to free. */
static int stats_entry(const char *path, const char *name, rdt_json **j_out, const rdt_json **e) {
  *j_out = rdt_json_load(path);
  if (!*j_out) return -1;
  *e = rdt_json_get(*j_out, name);
  return *e != NULL;
}

int rdt_stats_state_mean(const char *path, const char *name, float mean[RDT_UNI_DIM]) {
  rdt_json *j;
  const rdt_json *e;
  int rc = stats_entry(path, name, &j, &e);
  if (rc == 1) {
    const rdt_json *v = rdt_json_get(e, "state_mean");
    if (!v || v->type != RDT_JSON_ARRAY || v->count != RDT_UNI_DIM) {
      rc = rdt_fail("%s: %s.state_mean is not an array of %d numbers", path, name, RDT_UNI_DIM);
    } else {
      for (int i = 0; i < RDT_UNI_DIM; i++) {
        if (v->items[i].type != RDT_JSON_NUMBER) rc = rdt_fail("%s: %s.state_mean[%d] is not a number", path, name, i);
        mean[i] = (float)v->items[i].number;
      }
    }
  }
  rdt_json_free(j);
  return rc;
}

int rdt_stats_action_std_global(const char *path, const char *name, double *out) {
  rdt_json *j;
  const rdt_json *e;
  int rc = stats_entry(path, name, &j, &e);
  if (rc == 1) {
    const rdt_json *v = rdt_json_get(e, "action_std_global");
    if (!v) rc = 0;
    else if (v->type != RDT_JSON_NUMBER) rc = rdt_fail("%s: %s.action_std_global is not a number", path, name);
    else *out = v->number;
  }
  rdt_json_free(j);
  return rc;
}
