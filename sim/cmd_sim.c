/* sim/cmd_sim.c: `rdt sim list | info | render | rollout | collect`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/flags.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/rng.h"
#include "sim/collect.h"
#include "sim/env.h"
#include "sim/expert.h"
#include "sim/png.h"

/* Flags every subcommand that opens a task shares. */
typedef struct {
  const char *task, *libero_root, *robosuite_assets, *config;
  sim_config cfg;
} sim_cli;

#define SIM_COMMON_FLAGS(c)                                                                                   \
  {"task", RDT_FLAG_STR, &(c).task, NULL, "task index (0..89) or name"},                                      \
  {"libero_root", RDT_FLAG_STR, &(c).libero_root, NULL, "LIBERO package folder (default $RDT_LIBERO_ROOT)"},  \
  {"robosuite_assets", RDT_FLAG_STR, &(c).robosuite_assets, NULL,                                             \
   "robosuite models/assets folder (default $RDT_ROBOSUITE_ASSETS)"},                                         \
  {"config", RDT_FLAG_STR, &(c).config, NULL, "YAML config whose sim.libero_root/sim.robosuite_assets apply"}

/* Parse flags; exits on --help (0) or error (1). */
static void sim_parse(const char *summary, const rdt_flag *flags, int n, int argc, char **argv) {
  char name[64];
  snprintf(name, sizeof name, "sim %s", argv[0]);
  int rc = rdt_flags_parse(name, summary, flags, n, argc, argv, NULL, NULL);
  if (rc == 1) exit(0);
  if (rc < 0) rdt_die_last();
}

/* Task index from --task (index or name); dies when missing or unknown. */
static int sim_task_arg(const sim_cli *c) {
  if (!c->task) rdt_die("--task is required (an index 0..%d or a task name; see rdt sim list)", SIM_NUM_TASKS - 1);
  char *end;
  long i = strtol(c->task, &end, 10);
  if (!*end && *c->task) {
    if (i < 0 || i >= SIM_NUM_TASKS) rdt_die("--task %ld: expected 0..%d", i, SIM_NUM_TASKS - 1);
    return (int)i;
  }
  int k = sim_task_find(c->task);
  if (k < 0) rdt_die("--task %s: no such libero_90 task (see rdt sim list)", c->task);
  return k;
}

/* Data paths from flags, then config, then (in sim_env_open) the environment. */
static void sim_cli_paths(sim_cli *c, rdt_config **conf) {
  c->cfg.libero_root = c->libero_root;
  c->cfg.robosuite_assets = c->robosuite_assets;
  if (c->config) {
    *conf = rdt_config_load(c->config);
    if (!*conf) rdt_die_last();
    if (!c->cfg.libero_root) c->cfg.libero_root = rdt_config_str(*conf, "sim.libero_root", NULL);
    if (!c->cfg.robosuite_assets) c->cfg.robosuite_assets = rdt_config_str(*conf, "sim.robosuite_assets", NULL);
  }
}

/* Open the task with paths from flags, then config, then the environment. */
static sim_env *sim_cli_open(sim_cli *c, rdt_config **conf) {
  int task = sim_task_arg(c);
  sim_cli_paths(c, conf);
  sim_env *e = sim_env_open(&c->cfg, task);
  if (!e) rdt_die_last();
  return e;
}

/* ------------------------------------------------------------------ list / info */

static int cmd_list(int argc, char **argv) {
  int as_json = 0;
  rdt_flag flags[] = {{"json", RDT_FLAG_BOOL, &as_json, "false", "print JSON"}};
  sim_parse("rdt sim list: the libero_90 tasks (index, name, instruction)", flags, 1, argc, argv);
  rdt_jw w;
  jw_init(&w, 1);
  jw_arr(&w);
  for (int i = 0; i < SIM_NUM_TASKS; i++) {
    if (!as_json) {
      printf("%2d  %-95s  %s\n", i, sim_task_name(i), sim_task_instruction(i));
      continue;
    }
    jw_obj(&w);
    jw_key(&w, "index"), jw_int(&w, i);
    jw_key(&w, "name"), jw_str(&w, sim_task_name(i));
    jw_key(&w, "instruction"), jw_str(&w, sim_task_instruction(i));
    jw_obj_end(&w);
  }
  jw_arr_end(&w);
  char *text = jw_finish(&w);
  if (as_json) printf("%s\n", text);
  free(text);
  return 0;
}

static int cmd_info(int argc, char **argv) {
  sim_cli c = {0};
  sim_config_default(&c.cfg);
  rdt_flag flags[] = {SIM_COMMON_FLAGS(c)};
  sim_parse("rdt sim info --task N: compose and compile a task; print JSON (name, instruction, problem\n"
            "class, nq, nv, nu, init states and their width, goal)",
            flags, (int)(sizeof flags / sizeof *flags), argc, argv);
  c.cfg.physics_only = 1;
  rdt_config *conf = NULL;
  sim_env *e = sim_cli_open(&c, &conf);
  const sim_info *in = sim_env_info(e);
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "index"), jw_int(&w, in->task_index);
  jw_key(&w, "name"), jw_str(&w, in->name);
  jw_key(&w, "instruction"), jw_str(&w, in->instruction);
  jw_key(&w, "bddl_language"), jw_str(&w, in->bddl_language);
  jw_key(&w, "problem_class"), jw_str(&w, in->problem_class);
  jw_key(&w, "nq"), jw_int(&w, in->nq);
  jw_key(&w, "nv"), jw_int(&w, in->nv);
  jw_key(&w, "nu"), jw_int(&w, in->nu);
  jw_key(&w, "num_init_states"), jw_int(&w, in->num_init_states);
  jw_key(&w, "init_state_width"), jw_int(&w, in->init_state_width);
  jw_key(&w, "goal"), jw_str(&w, in->goal_text);
  jw_key(&w, "num_goal_atoms"), jw_int(&w, in->num_goal_atoms);
  jw_obj_end(&w);
  char *text = jw_finish(&w);
  printf("%s\n", text);
  free(text);
  sim_env_close(e);
  rdt_config_free(conf);
  return 0;
}

/* ------------------------------------------------------------------ render */

/* Write an image read out bottom-row-first as a PNG, upright unless raw. */
static void sim_save_png(const char *path, const uint8_t *rgb, int size, int raw) {
  uint8_t *img = rdt_malloc((size_t)size * size * 3);
  memcpy(img, rgb, (size_t)size * size * 3);
  if (!raw) sim_image_flip_rows(img, size, size);
  if (sim_write_png(path, img, size, size)) rdt_die_last();
  free(img);
}

static int cmd_render(int argc, char **argv) {
  sim_cli c = {0};
  sim_config_default(&c.cfg);
  const char *camera = "agentview", *out = NULL;
  int64_t init = 0, size = 128, settle = 0;
  int raw = 0, fast = 0;
  rdt_flag flags[] = {
      SIM_COMMON_FLAGS(c),
      {"init", RDT_FLAG_INT, &init, "0", "init state index"},
      {"camera", RDT_FLAG_STR, &camera, "agentview", "camera name (agentview, robot0_eye_in_hand, frontview, ...)"},
      {"size", RDT_FLAG_INT, &size, "128", "image width and height"},
      {"settle", RDT_FLAG_INT, &settle, "0", "no-op steps [0,0,0,0,0,0,-1] before rendering"},
      {"out", RDT_FLAG_STR, &out, NULL, "PNG file to write"},
      {"raw", RDT_FLAG_BOOL, &raw, "false", "keep MuJoCo's bottom-row-first order (as LIBERO stores images)"},
      {"fast", RDT_FLAG_BOOL, &fast, "false", "low-fidelity rendering (no shadows, reflections, MSAA)"},
  };
  sim_parse("rdt sim render --task N --init K --camera NAME --size S --out F.png: render one camera\n"
            "image of an init state (upright PNG unless --raw)",
            flags, (int)(sizeof flags / sizeof *flags), argc, argv);
  if (!out) rdt_die("--out is required (the PNG file to write)");
  if (size < 1 || size > 4096) rdt_die("--size %lld: expected 1..4096", (long long)size);
  c.cfg.image_size = (int)size;
  c.cfg.fast_render = fast;
  rdt_config *conf = NULL;
  sim_env *e = sim_cli_open(&c, &conf);
  if (sim_env_reset(e, (int)init, 0)) rdt_die_last();
  const double noop[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
  for (int64_t t = 0; t < settle; t++)
    if (sim_env_step(e, noop, 0)) rdt_die_last();
  uint8_t *rgb = rdt_malloc((size_t)size * size * 3);
  if (sim_env_render(e, camera, (int)size, rgb)) rdt_die_last();
  sim_save_png(out, rgb, (int)size, raw);
  fprintf(stderr, "wrote %s (%s, %lldx%lld)\n", out, camera, (long long)size, (long long)size);
  free(rgb);
  sim_env_close(e);
  rdt_config_free(conf);
  return 0;
}

/* ------------------------------------------------------------------ rollout */

/* Read actions: 7 numbers per line (spaces or commas), '#' comments. */
static double *sim_read_actions(const char *path, int *count) {
  size_t len;
  char *text = rdt_read_file(path, &len);
  if (!text) return NULL;
  double *a = NULL;
  int n = 0, line = 0;
  for (char *p = text, *next; p && *p; p = next) {
    next = strchr(p, '\n');
    if (next) *next++ = 0;
    line++;
    for (char *q = p; *q; q++)
      if (*q == ',') *q = ' ';
    char *hash = strchr(p, '#');
    if (hash) *hash = 0;
    double v[SIM_ACTION_DIM + 1];
    int k = 0;
    char *q = p, *end;
    for (;;) {
      double x = strtod(q, &end);
      if (end == q) break;
      if (k <= SIM_ACTION_DIM) v[k] = x;
      k++;
      q = end;
    }
    while (*q == ' ' || *q == '\t' || *q == '\r') q++;
    if (k == 0 && !*q) continue;
    if (k != SIM_ACTION_DIM || *q) {
      free(a);
      free(text);
      return rdt_fail("%s:%d: expected 7 numbers (dx dy dz ax ay az gripper)", path, line), NULL;
    }
    a = rdt_realloc(a, sizeof(double) * SIM_ACTION_DIM * (size_t)(n + 1));
    memcpy(a + SIM_ACTION_DIM * n, v, sizeof(double) * SIM_ACTION_DIM);
    n++;
  }
  free(text);
  if (!n) return rdt_fail("%s: no actions", path), NULL;
  *count = n;
  return a;
}

static int cmd_rollout(int argc, char **argv) {
  sim_cli c = {0};
  sim_config_default(&c.cfg);
  const char *actions_path = NULL, *frames = NULL;
  int64_t init = 0, steps = 0, seed = 0, size = 128;
  int random = 0, stop = 0;
  rdt_flag flags[] = {
      SIM_COMMON_FLAGS(c),
      {"init", RDT_FLAG_INT, &init, "0", "init state index"},
      {"actions", RDT_FLAG_STR, &actions_path, NULL, "text file, one action per line: dx dy dz ax ay az gripper"},
      {"random", RDT_FLAG_BOOL, &random, "false", "uniform random actions in [-1, 1] instead of --actions"},
      {"seed", RDT_FLAG_INT, &seed, "0", "seed for --random"},
      {"steps", RDT_FLAG_INT, &steps, "0", "control steps (default: all actions in the file)"},
      {"frames", RDT_FLAG_STR, &frames, NULL, "folder for agentview PNG frames (one per step; upright)"},
      {"size", RDT_FLAG_INT, &size, "128", "frame size"},
      {"stop_on_success", RDT_FLAG_BOOL, &stop, "false", "stop at the first successful step"},
  };
  sim_parse("rdt sim rollout --task N --init K --actions FILE|--random --steps T: run actions, print JSON\n"
            "(success, first success step, final end-effector pose).  Videos: rdt eval --record_video, or\n"
            "--frames DIR here",
            flags, (int)(sizeof flags / sizeof *flags), argc, argv);
  if (!!actions_path == !!random) rdt_die("give exactly one of --actions FILE or --random");
  if (random && steps <= 0) rdt_die("--random needs --steps T (T > 0)");
  int nact = 0;
  double *acts = actions_path ? sim_read_actions(actions_path, &nact) : NULL;
  if (actions_path && !acts) rdt_die_last();
  if (steps <= 0) steps = nact;
  if (acts && steps > nact) rdt_die("--steps %lld exceeds the %d actions in %s", (long long)steps, nact, actions_path);
  if (frames && rdt_mkdirs(frames)) rdt_die_last();
  c.cfg.image_size = (int)size;
  rdt_config *conf = NULL;
  sim_env *e = sim_cli_open(&c, &conf);
  if (sim_env_reset(e, (int)init, 0)) rdt_die_last();
  rdt_rng rng;
  rdt_rng_seed(&rng, (uint64_t)seed, 0);
  int first = -1;
  int64_t t = 0;
  for (; t < steps; t++) {
    double a[SIM_ACTION_DIM];
    for (int k = 0; k < SIM_ACTION_DIM; k++) a[k] = acts ? acts[SIM_ACTION_DIM * t + k] : 2 * rdt_rng_uniform(&rng) - 1;
    if (sim_env_step(e, a, frames ? SIM_OBS_IMAGES : 0)) rdt_die_last();
    if (frames) {
      char name[64];
      snprintf(name, sizeof name, "frame_%05lld.png", (long long)t);
      char *p = rdt_path_join(frames, name);
      sim_save_png(p, sim_env_obs(e)->agentview, (int)size, 0);
      free(p);
    }
    if (sim_env_success(e) && first < 0) first = (int)t;
    if (stop && first >= 0) {
      t++;
      break;
    }
  }
  const sim_obs *o = sim_env_obs(e);
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "task"), jw_str(&w, sim_env_info(e)->name);
  jw_key(&w, "init"), jw_int(&w, init);
  jw_key(&w, "steps"), jw_int(&w, t);
  jw_key(&w, "success"), jw_bool(&w, sim_env_success(e));
  jw_key(&w, "first_success_step");
  if (first >= 0) jw_int(&w, first);
  else jw_null(&w);
  jw_key(&w, "eef_pos"), jw_arr(&w);
  for (int k = 0; k < 3; k++) jw_num(&w, o->eef_pos[k]);
  jw_arr_end(&w);
  jw_key(&w, "eef_quat"), jw_arr(&w);
  for (int k = 0; k < 4; k++) jw_num(&w, o->eef_quat[k]);
  jw_arr_end(&w);
  jw_key(&w, "gripper_qpos"), jw_arr(&w);
  for (int k = 0; k < 2; k++) jw_num(&w, o->gripper_qpos[k]);
  jw_arr_end(&w);
  jw_obj_end(&w);
  char *text = jw_finish(&w);
  printf("%s\n", text);
  free(text);
  free(acts);
  sim_env_close(e);
  rdt_config_free(conf);
  return 0;
}

/* ------------------------------------------------------------------ collect */

/* A task from an index or a name, or -1. */
static int collect_task_lookup(const char *s) {
  char *end;
  long i = strtol(s, &end, 10);
  if (*s && !*end) return i >= 0 && i < SIM_NUM_TASKS ? (int)i : -1;
  return sim_task_find(s);
}

/* Add task t to the list once; dies when it has no expert. */
static void collect_task_add(int t, int *tasks, int *n) {
  if (!sim_expert_has(t)) rdt_die("--tasks: task %d (%s) has no scripted expert (see rdt sim collect --list)", t, sim_task_name(t));
  for (int i = 0; i < *n; i++)
    if (tasks[i] == t) return;
  tasks[(*n)++] = t;
}

/* Task indices from --tasks (indices, names, or "all" = every task with an
 * expert), in the order given without repeats; dies on an unknown or
 * expert-less task. */
static int collect_task_list(const rdt_strlist *l, int *tasks) {
  int n = 0;
  for (int i = 0; i < l->n; i++) {
    if (!strcmp(l->v[i], "all")) {
      for (int k = 0; k < sim_expert_count(); k++) collect_task_add(sim_expert_task(k), tasks, &n);
      continue;
    }
    int t = collect_task_lookup(l->v[i]);
    if (t < 0) rdt_die("--tasks: '%s' is neither a task index (0..%d) nor a libero_90 task name", l->v[i], SIM_NUM_TASKS - 1);
    collect_task_add(t, tasks, &n);
  }
  if (!n) rdt_die("--tasks is required (indices or names, comma-separated, or all; see rdt sim collect --list)");
  return n;
}

/* --check: each expert's first `demos` attempts, physics only; JSON rates. */
static void collect_check(sim_cli *c, const int *tasks, int n, const sim_collect_opts *o) {
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "tasks"), jw_arr(&w);
  c->cfg.physics_only = 1;
  for (int i = 0; i < n; i++) {
    sim_env *e = sim_env_open(&c->cfg, tasks[i]);
    if (!e) rdt_die_last();
    int ok = 0, trials = 0;
    double steps = 0;
    jw_obj(&w);
    jw_key(&w, "task"), jw_int(&w, tasks[i]);
    jw_key(&w, "name"), jw_str(&w, sim_task_name(tasks[i]));
    jw_key(&w, "failed_init_states"), jw_arr(&w);
    for (int k = 0; k < o->demos; k++, trials++) {
      int init = sim_collect_init(o, k, sim_env_info(e)->num_init_states);
      int r = sim_collect_episode(e, init, sim_collect_seed(o, k), o, NULL);
      if (r < 0) rdt_die_last();
      if (r) ok++, steps += sim_env_steps(e) - o->settle;
      else jw_int(&w, init);
      fprintf(stderr, "\r%s: %d/%d", sim_task_name(tasks[i]), ok, trials + 1);
    }
    fprintf(stderr, "\n");
    jw_arr_end(&w);
    jw_key(&w, "trials"), jw_int(&w, trials);
    jw_key(&w, "successes"), jw_int(&w, ok);
    jw_key(&w, "rate"), jw_num(&w, (double)ok / trials);
    jw_key(&w, "mean_expert_steps"), jw_num(&w, ok ? steps / ok : 0);
    jw_obj_end(&w);
    sim_env_close(e);
  }
  jw_arr_end(&w);
  jw_obj_end(&w);
  char *text = jw_finish(&w);
  printf("%s\n", text);
  free(text);
}

static int cmd_collect(int argc, char **argv) {
  sim_cli c = {0};
  sim_config_default(&c.cfg);
  rdt_strlist tasks = {0};
  const char *out = NULL;
  int64_t demos, size, seed, max_steps, init_start;
  int list = 0, check = 0, skip_existing = 0, fast = 0;
  rdt_flag flags[] = {
      {"tasks", RDT_FLAG_LIST, &tasks, NULL, "task indices or names, comma-separated, or all (the tasks with an expert)"},
      {"demos", RDT_FLAG_INT, &demos, "10", "successful demonstrations per task"},
      {"out", RDT_FLAG_STR, &out, NULL, "folder for the <task>_demo.hdf5 files"},
      {"image_size", RDT_FLAG_INT, &size, "128", "camera image side (LIBERO's files: 128)"},
      {"seed", RDT_FLAG_INT, &seed, "0", "seed of the experts' randomness"},
      {"max_steps", RDT_FLAG_INT, &max_steps, "300", "expert steps per attempt at most"},
      {"init_start", RDT_FLAG_INT, &init_start, "0",
       "init state of the first attempt (evaluations use 0..trials-1: start at trials to keep them apart)"},
      {"skip_existing", RDT_FLAG_BOOL, &skip_existing, "false", "leave a task whose file exists"},
      {"check", RDT_FLAG_BOOL, &check, "false",
       "measure instead: each expert's first demos attempts without images; JSON rates, no files"},
      {"list", RDT_FLAG_BOOL, &list, "false", "print the tasks that have an expert"},
      {"fast_render", RDT_FLAG_BOOL, &fast, "false", "low-fidelity rendering (no shadows, reflections, MSAA)"},
      {"libero_root", RDT_FLAG_STR, &c.libero_root, NULL, "LIBERO package folder (default $RDT_LIBERO_ROOT)"},
      {"robosuite_assets", RDT_FLAG_STR, &c.robosuite_assets, NULL,
       "robosuite models/assets folder (default $RDT_ROBOSUITE_ASSETS)"},
      {"config", RDT_FLAG_STR, &c.config, NULL, "YAML config whose sim.libero_root/sim.robosuite_assets apply"},
  };
  sim_parse("rdt sim collect --tasks LIST --demos N --out DIR: demonstrations from scripted experts (init\n"
            "states init_start, init_start + 1, ...; failures skipped) written as LIBERO files DIR/<task>_demo.hdf5",
            flags, (int)(sizeof flags / sizeof *flags), argc, argv);
  if (list) {
    for (int i = 0; i < sim_expert_count(); i++) printf("%2d  %s\n", sim_expert_task(i), sim_task_name(sim_expert_task(i)));
    return 0;
  }
  int ids[SIM_NUM_TASKS], n = collect_task_list(&tasks, ids);
  if (demos < 1 || demos > 10000) rdt_die("--demos %lld: expected 1..10000", (long long)demos);
  if (size < 8 || size > 1024) rdt_die("--image_size %lld: expected 8..1024", (long long)size);
  if (max_steps < 1) rdt_die("--max_steps must be positive");
  if (init_start < 0) rdt_die("--init_start must be >= 0");
  if (!check && !out) rdt_die("--out is required (the folder for the demonstration files)");
  sim_collect_opts o;
  sim_collect_opts_default(&o);
  o.demos = (int)demos, o.max_steps = (int)max_steps, o.seed = (uint64_t)seed, o.progress = 1;
  o.init_start = (int)init_start;
  c.cfg.image_size = (int)size;
  c.cfg.fast_render = fast;
  rdt_config *conf = NULL;
  sim_cli_paths(&c, &conf);
  if (check) {
    collect_check(&c, ids, n, &o);
    rdt_config_free(conf);
    return 0;
  }
  int short_tasks = 0;
  for (int i = 0; i < n; i++) {
    char *name = sim_collect_file_name(ids[i]), *path = rdt_path_join(out, name);
    int exists = rdt_is_file(path);
    free(name);
    if (skip_existing && exists) {
      fprintf(stderr, "%s exists: skipped\n", path);
      free(path);
      continue;
    }
    free(path);
    sim_collect_result r;
    if (sim_collect_task(&c.cfg, ids[i], out, &o, &r)) rdt_die_last();
    fprintf(stderr, "wrote %s: %d demonstrations (%d attempts), %lld steps, %.0f s\n", r.path, r.successes,
            r.attempts, (long long)r.steps, r.seconds);
    short_tasks += r.successes < o.demos;
    free(r.path);
  }
  rdt_config_free(conf);
  if (short_tasks) rdt_die("%d task(s) got fewer than %d demonstrations (see above)", short_tasks, o.demos);
  return 0;
}

/* ------------------------------------------------------------------ dispatch */

int rdt_cmd_sim(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
  } subs[] = {
      {"list", cmd_list, "the libero_90 tasks: index, name, instruction"},
      {"info", cmd_info, "JSON facts of a task (nq, nv, init states, goal)"},
      {"render", cmd_render, "render a camera image of an init state to PNG"},
      {"rollout", cmd_rollout, "run actions from a file or random ones; JSON result"},
      {"collect", cmd_collect, "demonstrations from scripted experts, as LIBERO HDF5 files"},
  };
  int n = (int)(sizeof subs / sizeof *subs);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    FILE *f = argc < 2 ? stderr : stdout;
    fprintf(f, "usage: rdt sim SUBCOMMAND [flags]   (rdt sim SUBCOMMAND --help)\n\n");
    for (int i = 0; i < n; i++) fprintf(f, "  %-8s %s\n", subs[i].name, subs[i].help);
    fprintf(f, "\ndata: --libero_root / --robosuite_assets, sim.* keys of --config, or $RDT_LIBERO_ROOT /\n"
               "$RDT_ROBOSUITE_ASSETS; rendering: RDT_GL=egl|osmesa\n");
    return argc < 2 ? 2 : 0;
  }
  for (int i = 0; i < n; i++)
    if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc - 1, argv + 1);
  rdt_die("unknown sim subcommand '%s' (expected list, info, render, rollout or collect)", argv[1]);
}
