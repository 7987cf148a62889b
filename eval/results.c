/* eval/results.c: episode records, summaries, results files, merging (see results.h). */
#include "eval/results.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"

/* A growing text buffer with printf-style appends. */
typedef struct {
  char *s;
  size_t n, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) RDT_PRINTF(2, 3);
static void tprintf(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->n + (size_t)k + 1 > t->cap) {
    t->cap = 2 * (t->n + (size_t)k + 1) + 256;
    t->s = rdt_realloc(t->s, t->cap);
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  t->n += (size_t)k;
}

/* ================================================================ records */

void eval_results_init(eval_results *r) { memset(r, 0, sizeof *r); }

void eval_results_free(eval_results *r) {
  for (int i = 0; i < r->n; i++) free(r->video[i]);
  free(r->ep), free(r->video);
  free(r->benchmark), free(r->checkpoint), free(r->settings), free(r->run);
  memset(r, 0, sizeof *r);
}

/* Index of (task, trial) if present, else where it belongs (as -1 - index). */
static int locate(const eval_results *r, int task, int trial) {
  int lo = 0, hi = r->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    const eval_episode *e = &r->ep[mid];
    if (e->task < task || (e->task == task && e->trial < trial))
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < r->n && r->ep[lo].task == task && r->ep[lo].trial == trial) return lo;
  return -1 - lo;
}

void eval_results_put(eval_results *r, const eval_episode *ep, const char *video) {
  int i = locate(r, ep->task, ep->trial);
  if (i < 0) {
    i = -1 - i;
    if (r->n == r->cap) {
      r->cap = r->cap ? 2 * r->cap : 64;
      r->ep = rdt_realloc(r->ep, (size_t)r->cap * sizeof *r->ep);
      r->video = rdt_realloc(r->video, (size_t)r->cap * sizeof *r->video);
    }
    memmove(r->ep + i + 1, r->ep + i, (size_t)(r->n - i) * sizeof *r->ep);
    memmove(r->video + i + 1, r->video + i, (size_t)(r->n - i) * sizeof *r->video);
    r->n++;
  } else {
    free(r->video[i]);
  }
  r->ep[i] = *ep;
  r->video[i] = video ? rdt_strdup(video) : NULL;
}

const eval_episode *eval_results_find(const eval_results *r, int task, int trial) {
  int i = locate(r, task, trial);
  return i >= 0 ? &r->ep[i] : NULL;
}

/* Replace a malloc'd string member. */
static void set_str(char **dst, const char *s) {
  free(*dst);
  *dst = s ? rdt_strdup(s) : NULL;
}

void eval_results_describe(eval_results *r, const char *benchmark, const char *checkpoint, const char *settings,
                           const char *run) {
  set_str(&r->benchmark, benchmark);
  set_str(&r->checkpoint, checkpoint);
  set_str(&r->settings, settings);
  set_str(&r->run, run);
}

const char *eval_scene_class(const char *name) {
  static const char *prefixes[][2] = {{"KITCHEN_", "kitchen"}, {"LIVING_ROOM_", "living_room"}, {"STUDY_", "study"}};
  for (int i = 0; i < 3; i++)
    if (strncmp(name, prefixes[i][0], strlen(prefixes[i][0])) == 0) return prefixes[i][1];
  return "other";
}

/* ================================================================ summaries */

typedef struct {
  int trials, successes;
  double steps, steps_success;
} tally;

static void tally_add(tally *t, const eval_episode *e) {
  t->trials++;
  t->successes += e->success;
  t->steps += e->steps;
  if (e->success) t->steps_success += e->steps;
}

static double rate(const tally *t) { return t->trials ? (double)t->successes / t->trials : 0; }

/* The members of a tally as JSON. */
static void tally_json(rdt_jw *w, const tally *t) {
  jw_key(w, "trials"), jw_int(w, t->trials);
  jw_key(w, "successes"), jw_int(w, t->successes);
  jw_key(w, "rate"), jw_num(w, rate(t));
  jw_key(w, "mean_steps");
  t->trials ? jw_num(w, t->steps / t->trials) : jw_null(w);
  jw_key(w, "mean_steps_success");
  t->successes ? jw_num(w, t->steps_success / t->successes) : jw_null(w);
}

#define NSCENES 4
static const char *scenes[NSCENES] = {"kitchen", "living_room", "study", "other"};

static int scene_index(int task) {
  const char *c = eval_scene_class(sim_task_name(task));
  for (int i = 0; i < NSCENES - 1; i++)
    if (strcmp(c, scenes[i]) == 0) return i;
  return NSCENES - 1;
}

/* Per-task, per-scene and overall tallies of the records. */
typedef struct {
  tally task[SIM_NUM_TASKS], scene[NSCENES], all;
  int scene_tasks[NSCENES], ntasks;
  double task_rate_sum, scene_rate_sum[NSCENES];
} summary;

static void summarise(const eval_results *r, summary *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < r->n; i++) {
    const eval_episode *e = &r->ep[i];
    if (e->task < 0 || e->task >= SIM_NUM_TASKS) continue;
    tally_add(&s->task[e->task], e);
    tally_add(&s->scene[scene_index(e->task)], e);
    tally_add(&s->all, e);
  }
  for (int t = 0; t < SIM_NUM_TASKS; t++)
    if (s->task[t].trials) {
      s->ntasks++;
      s->task_rate_sum += rate(&s->task[t]);
      s->scene_tasks[scene_index(t)]++;
      s->scene_rate_sum[scene_index(t)] += rate(&s->task[t]);
    }
}

/* ================================================================ results.json */

/* Compact text of a parsed value (malloc'd). */
static char *json_text(const rdt_json *j) {
  rdt_jw w;
  jw_init(&w, 0);
  jw_value(&w, j);
  return jw_finish(&w);
}

/* JSON text (NULL: {}) as a value of w, laid out as w lays out its own. */
static void write_json_text(rdt_jw *w, const char *json) {
  rdt_json *j = json ? rdt_json_parse(json, strlen(json)) : NULL;
  if (j)
    jw_value(w, j);
  else
    jw_raw(w, json ? json : "{}");
  rdt_json_free(j);
}

/* One episode record. */
static void episode_json(rdt_jw *w, const eval_episode *e, const char *video) {
  char digest[17];
  snprintf(digest, sizeof digest, "%016" PRIx64, e->digest);
  jw_obj(w);
  jw_key(w, "task"), jw_int(w, e->task);
  jw_key(w, "trial"), jw_int(w, e->trial);
  jw_key(w, "success"), jw_bool(w, e->success);
  jw_key(w, "steps"), jw_int(w, e->steps);
  jw_key(w, "queries"), jw_int(w, e->queries);
  jw_key(w, "end"), jw_str(w, eval_end_name(e->end));
  jw_key(w, "wall_s"), jw_num(w, e->wall_s);
  jw_key(w, "digest"), jw_str(w, digest);
  jw_key(w, "frames"), jw_int(w, e->frames);
  jw_key(w, "video");
  video ? jw_str(w, video) : jw_null(w);
  jw_key(w, "detail"), jw_str(w, e->detail);
  jw_obj_end(w);
}

char *eval_results_json(const eval_results *r) {
  summary s;
  summarise(r, &s);
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "benchmark"), jw_str(&w, r->benchmark ? r->benchmark : "libero_90");
  jw_key(&w, "checkpoint"), jw_str(&w, r->checkpoint ? r->checkpoint : "");
  jw_key(&w, "settings"), write_json_text(&w, r->settings);
  jw_key(&w, "run"), write_json_text(&w, r->run);
  jw_key(&w, "overall");
  jw_obj(&w);
  jw_key(&w, "tasks"), jw_int(&w, s.ntasks);
  tally_json(&w, &s.all);
  jw_key(&w, "mean_task_rate"), jw_num(&w, s.ntasks ? s.task_rate_sum / s.ntasks : 0);
  jw_obj_end(&w);
  jw_key(&w, "scene_classes");
  jw_obj(&w);
  for (int c = 0; c < NSCENES; c++) {
    if (!s.scene_tasks[c]) continue;
    jw_key(&w, scenes[c]);
    jw_obj(&w);
    jw_key(&w, "tasks"), jw_int(&w, s.scene_tasks[c]);
    tally_json(&w, &s.scene[c]);
    jw_key(&w, "mean_task_rate"), jw_num(&w, s.scene_rate_sum[c] / s.scene_tasks[c]);
    jw_obj_end(&w);
  }
  jw_obj_end(&w);
  jw_key(&w, "tasks");
  jw_arr(&w);
  for (int t = 0; t < SIM_NUM_TASKS; t++) {
    if (!s.task[t].trials) continue;
    jw_obj(&w);
    jw_key(&w, "task"), jw_int(&w, t);
    jw_key(&w, "name"), jw_str(&w, sim_task_name(t));
    jw_key(&w, "instruction"), jw_str(&w, sim_task_instruction(t));
    jw_key(&w, "scene"), jw_str(&w, eval_scene_class(sim_task_name(t)));
    tally_json(&w, &s.task[t]);
    jw_obj_end(&w);
  }
  jw_arr_end(&w);
  jw_key(&w, "episodes");
  jw_arr(&w);
  for (int i = 0; i < r->n; i++) episode_json(&w, &r->ep[i], r->video[i]);
  jw_arr_end(&w);
  jw_obj_end(&w);
  return jw_finish(&w);
}

/* One CSV row of a tally. */
static void csv_row(text *t, const char *scope, int task, const char *name, const tally *x) {
  char num[32] = "", steps[32] = "", succ[32] = "";
  if (task >= 0) snprintf(num, sizeof num, "%d", task);
  if (x->trials) snprintf(steps, sizeof steps, "%.2f", x->steps / x->trials);
  if (x->successes) snprintf(succ, sizeof succ, "%.2f", x->steps_success / x->successes);
  tprintf(t, "%s,%s,%s,%d,%d,%.4f,%s,%s\n", scope, num, name, x->trials, x->successes, rate(x), steps, succ);
}

/* results.csv text (malloc'd). */
static char *results_csv(const eval_results *r) {
  summary s;
  summarise(r, &s);
  text t = {0};
  tprintf(&t, "scope,task,name,trials,successes,rate,mean_steps,mean_steps_success\n");
  for (int i = 0; i < SIM_NUM_TASKS; i++)
    if (s.task[i].trials) csv_row(&t, "task", i, sim_task_name(i), &s.task[i]);
  for (int c = 0; c < NSCENES; c++)
    if (s.scene_tasks[c]) csv_row(&t, "scene", -1, scenes[c], &s.scene[c]);
  csv_row(&t, "overall", -1, "all", &s.all);
  return t.s;
}

int eval_results_write(const eval_results *r, const char *json_path, const char *csv_path) {
  char *json = eval_results_json(r), *csv = results_csv(r);
  int rc = rdt_write_file_atomic(json_path, json, strlen(json));
  if (rc == 0 && csv_path) rc = rdt_write_file_atomic(csv_path, csv, strlen(csv));
  free(json), free(csv);
  return rc;
}

void eval_results_print(const eval_results *r, FILE *f) {
  summary s;
  summarise(r, &s);
  fprintf(f, "\n%-4s %-60s %7s %9s %7s %10s\n", "task", "name", "trials", "successes", "rate", "mean steps");
  for (int t = 0; t < SIM_NUM_TASKS; t++) {
    const tally *x = &s.task[t];
    if (x->trials)
      fprintf(f, "%-4d %-60.60s %7d %9d %6.1f%% %10.1f\n", t, sim_task_name(t), x->trials, x->successes,
              100 * rate(x), x->steps / x->trials);
  }
  for (int c = 0; c < NSCENES; c++) {
    const tally *x = &s.scene[c];
    if (s.scene_tasks[c])
      fprintf(f, "%-4s %-60s %7d %9d %6.1f%% %10.1f\n", "", scenes[c], x->trials, x->successes, 100 * rate(x),
              x->steps / x->trials);
  }
  if (s.all.trials)
    fprintf(f, "%-4s %-60s %7d %9d %6.1f%% %10.1f   (mean of task rates %.1f%%)\n", "", "overall", s.all.trials,
            s.all.successes, 100 * rate(&s.all), s.all.steps / s.all.trials, 100 * s.task_rate_sum / s.ntasks);
}

/* ================================================================ reading */

/* Integer member of a JSON object; -1 + message when absent or not an integer. */
static int get_int(const rdt_json *o, const char *key, int *out, const char *path) {
  const rdt_json *v = rdt_json_get(o, key);
  int64_t x;
  if (!v || v->type != RDT_JSON_NUMBER || rdt_json_int64(v, &x) != 0 || x < INT32_MIN || x > INT32_MAX)
    return rdt_fail("%s: episode record without an integer \"%s\"", path, key);
  *out = (int)x;
  return 0;
}

/* A string member or NULL. */
static const char *get_str(const rdt_json *o, const char *key) {
  const rdt_json *v = rdt_json_get(o, key);
  return v && v->type == RDT_JSON_STRING ? v->string : NULL;
}

/* One episode record of a results file. */
static int parse_episode(const rdt_json *j, const char *path, eval_episode *e, const char **video) {
  memset(e, 0, sizeof *e);
  const rdt_json *succ = rdt_json_get(j, "success"), *wall = rdt_json_get(j, "wall_s");
  const char *end = get_str(j, "end"), *digest = get_str(j, "digest"), *detail = get_str(j, "detail");
  if (j->type != RDT_JSON_OBJECT || get_int(j, "task", &e->task, path) || get_int(j, "trial", &e->trial, path) ||
      get_int(j, "steps", &e->steps, path) || get_int(j, "queries", &e->queries, path) ||
      get_int(j, "frames", &e->frames, path))
    return -1;
  RDT_CHECK(succ && succ->type == RDT_JSON_BOOL && end && eval_end_parse(end) >= 0 && digest,
            "%s: episode (task %d, trial %d): bad success, end or digest", path, e->task, e->trial);
  RDT_CHECK(e->task >= 0 && e->task < SIM_NUM_TASKS && e->trial >= 0, "%s: episode with task %d, trial %d", path,
            e->task, e->trial);
  e->success = succ->boolean;
  e->end = (eval_end)eval_end_parse(end);
  e->digest = strtoull(digest, NULL, 16);
  e->wall_s = wall && wall->type == RDT_JSON_NUMBER ? wall->number : 0;
  if (detail) snprintf(e->detail, sizeof e->detail, "%s", detail);
  *video = get_str(j, "video");
  return 0;
}

int eval_results_load(eval_results *r, const char *path) {
  if (!rdt_is_file(path)) return 1;
  rdt_json *j = rdt_json_load(path);
  if (!j) return -1;
  const rdt_json *eps = rdt_json_get(j, "episodes"), *settings = rdt_json_get(j, "settings");
  int rc = 0;
  if (j->type != RDT_JSON_OBJECT || !eps || eps->type != RDT_JSON_ARRAY || !settings ||
      settings->type != RDT_JSON_OBJECT)
    rc = rdt_fail("%s: not an rdt eval results file (no settings or episodes)", path);
  for (int i = 0; rc == 0 && i < eps->count; i++) {
    eval_episode e;
    const char *video = NULL;
    rc = parse_episode(&eps->items[i], path, &e, &video);
    if (rc == 0) eval_results_put(r, &e, video);
  }
  if (rc == 0) {
    free(r->settings);
    r->settings = json_text(settings);
    set_str(&r->benchmark, get_str(j, "benchmark"));
    set_str(&r->checkpoint, get_str(j, "checkpoint"));
  }
  rdt_json_free(j);
  return rc;
}

int eval_settings_equal(const char *a, const char *b, char **what) {
  rdt_json *ja = rdt_json_parse(a, strlen(a)), *jb = rdt_json_parse(b, strlen(b));
  int rc = ja && jb ? 1 : -1;
  *what = NULL;
  if (rc == 1 && (ja->type != RDT_JSON_OBJECT || jb->type != RDT_JSON_OBJECT)) rc = -1;
  for (int pass = 0; rc == 1 && pass < 2; pass++) {   /* members of a missing in b, then of b missing in a */
    const rdt_json *x = pass ? jb : ja, *y = pass ? ja : jb;
    for (int i = 0; rc == 1 && i < x->count; i++) {
      const rdt_json *other = rdt_json_get(y, x->items[i].key);
      char *s = json_text(&x->items[i]), *t = other ? json_text(other) : NULL;
      if (!t || strcmp(s, t) != 0) {
        rc = 0;
        *what = rdt_strdup(x->items[i].key);
      }
      free(s), free(t);
    }
  }
  rdt_json_free(ja), rdt_json_free(jb);
  return rc;
}

/* ================================================================ merging */

/* One checkpoint's pooled tallies. */
typedef struct {
  char *label;
  tally task[SIM_NUM_TASKS];
} column;

/* The checkpoint label of a results file: its weights path without the
 * trailing /ema/model.safetensors or /model.safetensors. */
static char *checkpoint_label(const char *checkpoint) {
  static const char *tails[] = {"/ema/model.safetensors", "/model.safetensors"};
  char *s = rdt_strdup(checkpoint && *checkpoint ? checkpoint : "?");
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(s), k = strlen(tails[i]);
    if (n > k && strcmp(s + n - k, tails[i]) == 0) {
      s[n - k] = 0;
      break;
    }
  }
  return s;
}

/* Add a results file to the columns (pooled by label). */
static int merge_one(const char *path, column **cols, int *ncols) {
  eval_results r;
  eval_results_init(&r);
  int rc = eval_results_load(&r, path);
  if (rc == 1) rc = rdt_fail("%s: no such file", path);
  if (rc == 0) {
    char *label = checkpoint_label(r.checkpoint);
    int c = 0;
    while (c < *ncols && strcmp((*cols)[c].label, label) != 0) c++;
    if (c == *ncols) {
      *cols = rdt_realloc(*cols, (size_t)(*ncols + 1) * sizeof **cols);
      memset(&(*cols)[c], 0, sizeof **cols);
      (*cols)[c].label = label;
      (*ncols)++;
    } else {
      free(label);
    }
    for (int i = 0; i < r.n; i++) tally_add(&(*cols)[c].task[r.ep[i].task], &r.ep[i]);
  }
  eval_results_free(&r);
  return rc;
}

/* The tables: CSV (rates) and Markdown (percent and counts). */
static void merge_tables(const column *cols, int nc, text *csv, text *md) {
  tprintf(csv, "task,name");
  tprintf(md, "| task | name |");
  for (int c = 0; c < nc; c++) tprintf(csv, ",\"%s\"", cols[c].label), tprintf(md, " %s |", cols[c].label);
  tprintf(csv, "\n");
  tprintf(md, "\n|---|---|");
  for (int c = 0; c < nc; c++) tprintf(md, "---|");
  tprintf(md, "\n");
  tally *all = rdt_calloc((size_t)nc, sizeof *all);
  double *sum = rdt_calloc((size_t)nc, sizeof *sum);
  int *ntask = rdt_calloc((size_t)nc, sizeof *ntask);
  for (int t = 0; t < SIM_NUM_TASKS; t++) {
    int any = 0;
    for (int c = 0; c < nc; c++) any |= cols[c].task[t].trials > 0;
    if (!any) continue;
    tprintf(csv, "%d,%s", t, sim_task_name(t));
    tprintf(md, "| %d | %s |", t, sim_task_name(t));
    for (int c = 0; c < nc; c++) {
      const tally *x = &cols[c].task[t];
      if (!x->trials) {
        tprintf(csv, ","), tprintf(md, " - |");
        continue;
      }
      tprintf(csv, ",%.4f", rate(x));
      tprintf(md, " %.1f%% (%d/%d) |", 100 * rate(x), x->successes, x->trials);
      all[c].trials += x->trials, all[c].successes += x->successes;
      sum[c] += rate(x), ntask[c]++;
    }
    tprintf(csv, "\n"), tprintf(md, "\n");
  }
  tprintf(csv, "mean,mean of task rates");
  tprintf(md, "| | **mean of task rates** |");
  for (int c = 0; c < nc; c++) {
    double m = ntask[c] ? sum[c] / ntask[c] : 0;
    tprintf(csv, ",%.4f", m);
    tprintf(md, " **%.1f%%** (%d/%d) |", 100 * m, all[c].successes, all[c].trials);
  }
  tprintf(csv, "\n"), tprintf(md, "\n");
  free(all), free(sum), free(ntask);
}

int eval_merge(const char *const *paths, int n, const char *prefix, FILE *f) {
  column *cols = NULL;
  int nc = 0, rc = n > 0 ? 0 : rdt_fail("--merge: no results files given");
  for (int i = 0; rc == 0 && i < n; i++) rc = merge_one(paths[i], &cols, &nc);
  if (rc == 0) {
    text csv = {0}, md = {0};
    merge_tables(cols, nc, &csv, &md);
    size_t k = strlen(prefix) + 8;
    char *pc = rdt_malloc(k), *pm = rdt_malloc(k);
    snprintf(pc, k, "%s.csv", prefix), snprintf(pm, k, "%s.md", prefix);
    char *dir = rdt_dirname(pc);
    rc = rdt_mkdirs(dir);
    if (rc == 0) rc = rdt_write_file_atomic(pc, csv.s, csv.n);
    if (rc == 0) rc = rdt_write_file_atomic(pm, md.s, md.n);
    if (rc == 0 && f) fputs(md.s, f);
    free(csv.s), free(md.s), free(pc), free(pm), free(dir);
  }
  for (int i = 0; i < nc; i++) free(cols[i].label);
  free(cols);
  return rc;
}
