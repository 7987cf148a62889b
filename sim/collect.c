/* sim/collect.c: expert demonstrations into LIBERO files (see collect.h). */
#include "sim/collect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mujoco/mujoco.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "sim/expert.h"

void sim_collect_opts_default(sim_collect_opts *o) {
  memset(o, 0, sizeof *o);
  o->demos = 10;
  o->max_steps = 300;
  o->settle = 10;
  o->skip = 5;
  o->hold = 10;
}

uint64_t sim_collect_seed(const sim_collect_opts *o, int attempt) { return o->seed * 1000003u + (uint64_t)attempt; }

int sim_collect_init(const sim_collect_opts *o, int attempt, int n) { return (o->init_start + attempt) % n; }

/* ------------------------------------------------------------------ one episode */

int sim_collect_episode(sim_env *e, int k, uint64_t seed, const sim_collect_opts *o, sim_demo *d) {
  RDT_CHECK(o->skip >= 0 && o->skip <= o->settle, "collect: skip (%d) must be within the settle steps (%d)", o->skip,
            o->settle);
  if (sim_env_reset(e, k, 0)) return -1;
  if (d) sim_demo_clear(d), d->init_index = k;
  const sim_info *in = sim_env_info(e);
  static const double noop[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
  double *state = rdt_malloc(sizeof(double) * (size_t)in->init_state_width);
  sim_expert *x = NULL;
  int held = -1, last = 0, result = 0;
  for (int j = 0; j < o->settle + o->max_steps && result == 0; j++) {
    double a[SIM_ACTION_DIM];
    if (j < o->settle) {
      memcpy(a, noop, sizeof a);
    } else {
      if (!x) x = sim_expert_new(e, seed);
      if (!x || sim_expert_act(x, a)) {
        result = -1;
        break;
      }
    }
    int record = d && j >= o->skip;
    if (record) sim_env_get_state(e, state, in->init_state_width);
    if (sim_env_step(e, a, record ? SIM_OBS_IMAGES : 0)) {
      rdt_warn("%s, init state %d: %s (attempt dropped)", in->name, k, rdt_error());
      break;
    }
    if (record) sim_demo_push(d, state, a, sim_env_obs(e));
    if (last) result = 1;
    if (!sim_env_success(e)) held = -1;
    else if (++held == o->hold) last = 1;   /* one more step, then stop */
  }
  sim_expert_free(x);
  free(state);
  return result;
}

/* ------------------------------------------------------------------ file attributes */

char *sim_collect_file_name(int task) {
  const char *name = sim_task_name(task);
  char *out = rdt_malloc(strlen(name) + 16);
  sprintf(out, "%s_demo.hdf5", name);
  return out;
}

/* LIBERO's class name of a problem: libero_kitchen_tabletop_manipulation -> Libero_Kitchen_Tabletop_Manipulation. */
static char *collect_env_name(const char *problem) {
  char *s = rdt_strdup(problem);
  for (char *p = s; *p; p++)
    if (p == s || p[-1] == '_') *p = (char)toupper((unsigned char)*p);
  return s;
}

/* Fill meta's JSON strings and file fields for an open env (free with collect_meta_free). */
static int collect_meta(const sim_env *e, const sim_config *cfg, const sim_collect_opts *o, sim_demo_meta *m) {
  const sim_info *in = sim_env_info(e);
  int size = sim_env_obs(e)->image_size;
  const char *root = cfg->libero_root && *cfg->libero_root ? cfg->libero_root : getenv("RDT_LIBERO_ROOT");
  char rel[512];
  snprintf(rel, sizeof rel, "bddl_files/libero_90/%s.bddl", in->name);
  char *bddl = rdt_path_join(root ? root : ".", rel);
  char *content = rdt_read_file(bddl, NULL);
  if (!content) {
    free(bddl);
    return -1;
  }
  char *env_name = collect_env_name(in->problem_class);
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "problem_name"), jw_str(&w, in->problem_class);
  jw_key(&w, "domain_name"), jw_str(&w, "robosuite");
  jw_key(&w, "language_instruction"), jw_str(&w, in->bddl_language);
  jw_obj_end(&w);
  m->problem_info = jw_finish(&w);
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "type"), jw_int(&w, 1);
  jw_key(&w, "env_name"), jw_str(&w, env_name);
  jw_key(&w, "problem_name"), jw_str(&w, in->problem_class);
  jw_key(&w, "bddl_file"), jw_str(&w, bddl);
  jw_key(&w, "env_kwargs"), jw_obj(&w);
  jw_key(&w, "bddl_file_name"), jw_str(&w, bddl);
  jw_key(&w, "robots"), jw_arr(&w), jw_str(&w, "Panda"), jw_arr_end(&w);
  jw_key(&w, "controller"), jw_str(&w, "OSC_POSE");
  jw_key(&w, "control_freq"), jw_int(&w, 20);
  jw_key(&w, "camera_names"), jw_arr(&w), jw_str(&w, "robot0_eye_in_hand"), jw_str(&w, "agentview"), jw_arr_end(&w);
  jw_key(&w, "camera_heights"), jw_int(&w, size);
  jw_key(&w, "camera_widths"), jw_int(&w, size);
  jw_key(&w, "use_camera_obs"), jw_bool(&w, 1);
  jw_key(&w, "ignore_done"), jw_bool(&w, 1);
  jw_obj_end(&w);
  jw_obj_end(&w);
  m->env_args = jw_finish(&w);
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "generator"), jw_str(&w, "rdt sim collect (scripted expert, sim/expert.c)");
  jw_key(&w, "simulator"), jw_str(&w, "rdt sim (MuJoCo C API)");
  jw_key(&w, "mujoco_version"), jw_int(&w, mj_version());
  jw_key(&w, "seed"), jw_int(&w, (int64_t)o->seed);
  jw_key(&w, "settle_steps"), jw_int(&w, o->settle);
  jw_key(&w, "skipped_steps"), jw_int(&w, o->skip);
  jw_key(&w, "hold_steps"), jw_int(&w, o->hold);
  jw_key(&w, "max_steps"), jw_int(&w, o->max_steps);
  jw_key(&w, "init_start"), jw_int(&w, o->init_start);
  jw_key(&w, "image_size"), jw_int(&w, size);
  jw_obj_end(&w);
  m->collect_info = jw_finish(&w);
  m->env_name = env_name;
  m->bddl_file_name = bddl;
  m->bddl_file_content = content;
  return 0;
}

static void collect_meta_free(sim_demo_meta *m) {
  free((char *)m->env_name), free((char *)m->problem_info), free((char *)m->bddl_file_name);
  free((char *)m->bddl_file_content), free((char *)m->env_args), free((char *)m->collect_info);
}

/* ------------------------------------------------------------------ one task */

/* The attempts: until o->demos successes or the attempt limit. */
static int collect_attempts(sim_env *e, sim_demo_file *f, const sim_collect_opts *o, sim_collect_result *r) {
  const sim_info *in = sim_env_info(e);
  sim_demo d;
  sim_demo_init(&d, in->init_state_width, sim_env_obs(e)->image_size);
  rdt_progress bar;
  char label[64];
  snprintf(label, sizeof label, "collect %.40s", in->name);
  if (o->progress) rdt_progress_start(&bar, label, o->demos);
  int rc = 0;
  for (int a = 0; r->successes < o->demos && a < 2 * o->demos + 10 && !rc; a++) {
    int ok = sim_collect_episode(e, sim_collect_init(o, a, in->num_init_states), sim_collect_seed(o, a), o, &d);
    r->attempts++;
    if (ok < 0 || (ok && sim_demo_file_add(f, &d))) rc = -1;
    if (ok > 0 && !rc) r->successes++, r->steps += d.length;
    if (o->progress) rdt_progress_update(&bar, r->successes, "attempts %d", r->attempts);
  }
  if (o->progress) rdt_progress_end(&bar);
  sim_demo_free(&d);
  return rc;
}

int sim_collect_task(const sim_config *cfg, int task, const char *dir, const sim_collect_opts *o, sim_collect_result *r) {
  memset(r, 0, sizeof *r);
  double t0 = rdt_now();
  RDT_CHECK(sim_expert_has(task), "task %d (%s): no scripted expert", task, sim_task_name(task) ? sim_task_name(task) : "?");
  if (rdt_mkdirs(dir)) return -1;
  sim_env *e = sim_env_open(cfg, task);
  if (!e) return -1;
  char *file = sim_collect_file_name(task);
  r->path = rdt_path_join(dir, file);
  free(file);
  sim_demo_meta meta;
  sim_demo_file *f = NULL;
  int rc = collect_meta(e, cfg, o, &meta);
  if (!rc) {
    f = sim_demo_file_create(r->path, &meta);
    collect_meta_free(&meta);
    rc = f ? 0 : -1;
  }
  if (!rc) rc = collect_attempts(e, f, o, r);
  if (!rc && r->successes == 0) rc = rdt_fail("%s: the expert succeeded in none of %d attempts", sim_task_name(task), r->attempts);
  if (f) {
    if (rc) sim_demo_file_abort(f);
    else rc = sim_demo_file_commit(f);
  }
  sim_env_close(e);
  r->seconds = rdt_now() - t0;
  return rc;
}
