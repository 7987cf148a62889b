/* eval/cmd_eval.c: `rdt eval` -- evaluate a checkpoint on LIBERO-90 (flags of
 * the zxy6677 fork's eval_sim/eval_rdt_libero.py plus the protocol, parallel,
 * video and results options; docs/EVAL.md), and `rdt eval --merge` (one
 * checkpoint x task table from many results files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/commands.h"
#include "core/config.h"
#include "core/error.h"
#include "core/flags.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "eval/results.h"

typedef struct {
  const char *config, *pretrained, *text_encoder, *vision_encoder, *precomp_lang_embed, *lang_embed_dir, *benchmark;
  const char *video_output_dir, *output, *device, *precision, *libero_root, *robosuite_assets, *policy_batch;
  int64_t num_tasks, num_trials, max_steps, num_steps_wait, exec_horizon, videos_per_task, image_size, seed,
      workers, threads;
  int record_video, resume, merge, fast_render;
  rdt_strlist tasks;
  int argc;     /* the command line, recorded in results.json */
  char **argv;
} eval_args;

/* ================================================================ config */

/* Protocol flags that the config's eval: section may set when not given. */
static const char *config_ints[] = {"num_tasks", "num_trials", "max_steps", "num_steps_wait", "exec_horizon",
                                    "image_size", "workers", "videos_per_task"};

/* eval.<flag> keys of the config for flags not on the command line. */
static int apply_eval_section(const rdt_config *cfg, const rdt_flag *f, int n) {
  for (size_t i = 0; i < sizeof config_ints / sizeof *config_ints; i++) {
    if (rdt_flag_given(f, n, config_ints[i])) continue;
    char key[64];
    snprintf(key, sizeof key, "eval.%s", config_ints[i]);
    for (int k = 0; k < n; k++)
      if (strcmp(f[k].name, config_ints[i]) == 0 && rdt_config_get_int(cfg, key, f[k].ptr) < 0)
        return rdt_fail_ctx("%s", key);
  }
  return 0;
}

/* ================================================================ the plan */

/* The task indices to evaluate (sorted, no repeats) into tasks; returns the count or -1. */
static int plan_tasks(const eval_args *a, int *tasks) {
  int mark[SIM_NUM_TASKS] = {0}, n = 0;
  if (a->tasks.n == 0) {
    RDT_CHECK(a->num_tasks >= 1 && a->num_tasks <= SIM_NUM_TASKS, "--num_tasks must be in 1..%d", SIM_NUM_TASKS);
    for (int i = 0; i < a->num_tasks; i++) mark[i] = 1;
  }
  for (int i = 0; i < a->tasks.n; i++) {
    const char *s = a->tasks.v[i];
    char *end;
    long k = strtol(s, &end, 10);
    int t = *s && !*end ? (k >= 0 && k < SIM_NUM_TASKS ? (int)k : -1) : sim_task_find(s);
    RDT_CHECK(t >= 0, "--tasks: '%s' is neither a task index (0..%d) nor a libero_90 task name (rdt sim list)", s,
              SIM_NUM_TASKS - 1);
    mark[t] = 1;
  }
  for (int t = 0; t < SIM_NUM_TASKS; t++)
    if (mark[t]) tasks[n++] = t;
  return n;
}

/* Check the numeric flags. */
static int check_args(const eval_args *a) {
  RDT_CHECK(strcmp(a->benchmark, "libero_90") == 0, "--benchmark %s: only libero_90 is supported", a->benchmark);
  RDT_CHECK(a->num_trials >= 1 && a->num_trials <= 1000, "--num_trials must be in 1..1000 (LIBERO has 50 init "
            "states per task)");
  RDT_CHECK(a->max_steps >= 1 && a->max_steps <= 100000, "--max_steps must be in 1..100000");
  RDT_CHECK(a->num_steps_wait >= 0 && a->num_steps_wait <= 10000, "--num_steps_wait must be in 0..10000");
  RDT_CHECK(a->exec_horizon >= 1, "--exec_horizon must be at least 1");
  RDT_CHECK(a->image_size >= 16 && a->image_size <= 1024, "--image_size must be in 16..1024");
  RDT_CHECK(a->workers >= 1 && a->workers <= 256, "--workers must be in 1..256");
  RDT_CHECK(a->threads >= 0, "--threads must be >= 0");
  RDT_CHECK(eval_batch_mode_parse(a->policy_batch) >= 0, "--policy_batch must be auto, batch or rows");
  return 0;
}

/* results.json and results.csv paths of --output (malloc'd). */
static void output_paths(const char *out, char **json, char **csv) {
  size_t n = strlen(out);
  if (n > 5 && strcmp(out + n - 5, ".json") == 0) {
    *json = rdt_strdup(out);
    *csv = rdt_strdup(out);
    strcpy(*csv + n - 5, ".csv");
  } else {
    *json = rdt_path_join(out, "results.json");
    *csv = rdt_path_join(out, "results.csv");
  }
}

/* ================================================================ settings */

/* A string member, or null. */
static void key_str(rdt_jw *w, const char *k, const char *v) {
  jw_key(w, k);
  v ? jw_str(w, v) : jw_null(w);
}

/* Everything that decides the outcome of an episode (JSON text). */
static char *settings_json(const eval_args *a, const char *weights, const rdt_config *cfg, const rdt_overrides *ov) {
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  key_str(&w, "weights", weights);
  key_str(&w, "config", a->config);
  jw_key(&w, "config_overrides");
  jw_obj(&w);
  for (int i = 0; i < ov->n; i++) key_str(&w, ov->keys[i], ov->values[i]);
  jw_obj_end(&w);
  jw_key(&w, "config_tree");   /* without eval: and sim: (protocol flags below; data paths) */
  char *t = cfg ? rdt_config_to_json(cfg) : NULL;
  rdt_json *tree = t ? rdt_json_parse(t, strlen(t)) : NULL;
  if (tree) {
    jw_obj(&w);
    for (int i = 0; i < tree->count; i++)
      if (strcmp(tree->items[i].key, "eval") != 0 && strcmp(tree->items[i].key, "sim") != 0) {
        jw_key(&w, tree->items[i].key);
        jw_value(&w, &tree->items[i]);
      }
    jw_obj_end(&w);
  } else {
    jw_null(&w);
  }
  rdt_json_free(tree);
  free(t);
  key_str(&w, "text_encoder", a->text_encoder);
  key_str(&w, "vision_encoder", a->vision_encoder);
  key_str(&w, "precomp_lang_embed", a->precomp_lang_embed);
  key_str(&w, "benchmark", a->benchmark);
  jw_key(&w, "seed"), jw_int(&w, a->seed);
  jw_key(&w, "max_steps"), jw_int(&w, a->max_steps);
  jw_key(&w, "num_steps_wait"), jw_int(&w, a->num_steps_wait);
  jw_key(&w, "exec_horizon"), jw_int(&w, a->exec_horizon);
  jw_key(&w, "image_size"), jw_int(&w, a->image_size);
  jw_key(&w, "fast_render"), jw_bool(&w, a->fast_render);
  jw_obj_end(&w);
  return jw_finish(&w);
}

/* One invocation: its arguments, results and progress. */
typedef struct {
  const eval_args *a;
  eval_results *res;
  const char *json, *csv;
  rdt_progress bar;
  int done;
  const eval_policy *policy;
  const int *tasks;
  int ntasks, resumed;
  double t0;
  const char *started;
} session;

/* How this invocation runs (JSON text). */
static char *run_json(const session *s) {
  const eval_args *a = s->a;
  const eval_policy *p = s->policy;
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "command");
  jw_arr(&w);
  for (int i = 0; i < a->argc; i++) jw_str(&w, a->argv[i]);
  jw_arr_end(&w);
  key_str(&w, "started", s->started);
  key_str(&w, "device", p ? eval_policy_describe(p) : a->device);
  jw_key(&w, "workers"), jw_int(&w, a->workers);
  jw_key(&w, "threads"), jw_int(&w, a->threads);
  jw_key(&w, "tasks");
  jw_arr(&w);
  for (int i = 0; i < s->ntasks; i++) jw_int(&w, s->tasks[i]);
  jw_arr_end(&w);
  jw_key(&w, "num_trials"), jw_int(&w, a->num_trials);
  jw_key(&w, "record_video"), jw_bool(&w, a->record_video);
  key_str(&w, "video_output_dir", a->record_video ? a->video_output_dir : NULL);
  jw_key(&w, "episodes_from_earlier_runs"), jw_int(&w, s->resumed);
  key_str(&w, "policy_batch", a->policy_batch);
  jw_key(&w, "model_calls"), jw_int(&w, p ? eval_policy_calls(p) : 0);
  jw_key(&w, "model_rows"), jw_int(&w, p ? eval_policy_rows(p) : 0);
  jw_key(&w, "wall_s"), jw_num(&w, rdt_now() - s->t0);
  jw_obj_end(&w);
  return jw_finish(&w);
}

/* ================================================================ running */


/* Rewrite results.json and results.csv with the current records and run info. */
static int save(session *s) {
  char *run = run_json(s);
  free(s->res->run);
  s->res->run = run;
  return eval_results_write(s->res, s->json, s->csv);
}

/* After every episode: record, write atomically, advance the bar. */
static int on_episode(void *ctx, const eval_episode *ep) {
  session *s = ctx;
  char *video = ep->frames > 0 ? eval_video_path(s->a->video_output_dir, ep->task, ep->trial, ep->success) : NULL;
  eval_results_put(s->res, ep, video);
  free(video);
  if (ep->end == EVAL_END_SIM_ERROR)
    rdt_warn("task %d trial %d: the simulation diverged at step %d: %s", ep->task, ep->trial, ep->steps, ep->detail);
  int rc = save(s);
  int succ = 0;
  for (int i = 0; i < s->res->n; i++) succ += s->res->ep[i].success;
  s->done++;
  rdt_progress_update(&s->bar, s->done, "success %d/%d (%.1f%%)", succ, s->res->n, 100.0 * succ / s->res->n);
  return rc;
}

/* The episodes of the plan not yet in the results. */
static eval_job *pending_jobs(const eval_results *r, const int *tasks, int ntasks, int trials, int *n) {
  eval_job *jobs = rdt_malloc((size_t)ntasks * (size_t)trials * sizeof *jobs);
  *n = 0;
  for (int i = 0; i < ntasks; i++)
    for (int k = 0; k < trials; k++)
      if (!eval_results_find(r, tasks[i], k)) jobs[(*n)++] = (eval_job){tasks[i], k};
  return jobs;
}

/* Load the results to resume from, refusing other settings.  0 or -1. */
static int resume_from(eval_results *r, const char *json, const char *settings, int resume) {
  int rc = resume ? eval_results_load(r, json) : 1;
  if (rc < 0) return rdt_fail_ctx("--resume");
  if (rc == 1) {
    if (!resume && rdt_is_file(json)) rdt_warn("%s exists: starting over (pass --resume to continue it)", json);
    return 0;
  }
  char *what = NULL;
  int same = eval_settings_equal(r->settings, settings, &what);
  if (same != 1) {
    rdt_fail("--resume: %s was made with different settings (%s differs); use another --output or drop --resume",
             json, what ? what : "settings");
    free(what);
    return -1;
  }
  return 0;
}

/* Open the policy and encode the planned tasks' instructions. */
static eval_policy *open_policy(const eval_args *a, const rdt_config *cfg, const int *tasks, int ntasks,
                                int *instruction) {
  eval_policy_opts po = {a->pretrained, a->text_encoder, a->vision_encoder, a->precomp_lang_embed, a->device,
                         (int)a->threads, a->precision, (eval_batch_mode)eval_batch_mode_parse(a->policy_batch)};
  eval_policy *p = eval_policy_open(cfg, &po);
  if (!p) return NULL;
  const char **text = rdt_malloc((size_t)ntasks * sizeof *text);
  for (int i = 0; i < ntasks; i++) {
    text[i] = sim_task_instruction(tasks[i]);
    instruction[tasks[i]] = i;
  }
  int rc = eval_policy_instructions(p, text, ntasks);
  free(text);
  if (rc != 0) {
    eval_policy_free(p);
    return NULL;
  }
  return p;
}

/* Simulator settings: flags, then the config's sim: keys, then the environment. */
static void sim_settings(const eval_args *a, const rdt_config *cfg, sim_config *sc) {
  sim_config_default(sc);
  sc->libero_root = a->libero_root ? a->libero_root : cfg ? rdt_config_str(cfg, "sim.libero_root", NULL) : NULL;
  sc->robosuite_assets = a->robosuite_assets ? a->robosuite_assets
                         : cfg ? rdt_config_str(cfg, "sim.robosuite_assets", NULL) : NULL;
  sc->image_size = (int)a->image_size;
  sc->fast_render = a->fast_render;
}

/* Fail early (before loading the model) when the LIBERO task files are not
 * where the simulator will look; the simulator checks the rest. */
static int check_data(const sim_config *sc) {
  const char *root = sc->libero_root ? sc->libero_root : getenv("RDT_LIBERO_ROOT");
  RDT_CHECK(root && *root, "LIBERO data not found: pass --libero_root DIR, set sim.libero_root in the config or "
            "RDT_LIBERO_ROOT (the LIBERO package folder with assets/, bddl_files/, init_files/)");
  char *bddl = rdt_path_join(root, "bddl_files/libero_90");
  int ok = rdt_is_dir(bddl);
  free(bddl);
  RDT_CHECK(ok, "LIBERO data not found: %s has no bddl_files/libero_90 folder", root);
  return 0;
}

/* Open the policy and run the pending jobs; results are saved after every
 * episode by on_episode.  0 or -1. */
static int run_jobs(const eval_args *a, const rdt_config *cfg, session *s, const eval_job *jobs, int njobs) {
  int instruction[SIM_NUM_TASKS] = {0};
  eval_run_opts ro = {.protocol = {(int)a->num_steps_wait, (int)a->max_steps, (int)a->exec_horizon},
                      .workers = (int)a->workers, .seed = (uint64_t)a->seed, .instruction = instruction,
                      .video_dir = a->record_video ? a->video_output_dir : NULL,
                      .videos_per_task = (int)a->videos_per_task, .on_episode = on_episode, .ctx = s};
  sim_settings(a, cfg, &ro.sim);
  if (check_data(&ro.sim) != 0) return -1;
  eval_policy *p = open_policy(a, cfg, s->tasks, s->ntasks, instruction);
  if (!p) return -1;
  char *dir = rdt_dirname(s->json);
  int rc = rdt_mkdirs(dir);
  free(dir);
  if (rc == 0) {
    ro.policy = p;
    s->policy = p;
    rdt_info("eval: %s on %d task(s) x %d trial(s): %d episode(s) to run%s; %s, %lld worker(s)",
             eval_policy_weights(p), s->ntasks, (int)a->num_trials, njobs, s->resumed ? " (the rest resumed)" : "",
             eval_policy_describe(p), (long long)a->workers);
    rdt_progress_start(&s->bar, "eval", njobs);
    rc = eval_run(&ro, jobs, njobs);
    rdt_progress_end(&s->bar);
    if (rc == 0) rc = save(s);   /* the run information with the final counts */
  }
  s->policy = NULL;
  eval_policy_free(p);
  return rc;
}

/* The evaluation proper, once the flags and the config are read: plan,
 * resume, run what is missing, print the table. */
static int evaluate(const eval_args *a, const rdt_config *cfg, const rdt_overrides *ov) {
  int tasks[SIM_NUM_TASKS];
  int ntasks = plan_tasks(a, tasks);
  if (ntasks < 0 || check_args(a) != 0) return -1;
  RDT_CHECK(a->pretrained, "rdt eval needs --pretrained (see rdt eval --help)");
  char *json, *csv, *weights = eval_weights_path(a->pretrained);
  output_paths(a->output, &json, &csv);
  char *settings = settings_json(a, weights, cfg, ov);
  eval_results res;
  eval_results_init(&res);
  int rc = resume_from(&res, json, settings, a->resume);
  time_t now = time(NULL);
  char started[32];
  strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%S", localtime(&now));
  session s = {.a = a, .res = &res, .json = json, .csv = csv, .tasks = tasks, .ntasks = ntasks,
               .resumed = res.n, .t0 = rdt_now(), .started = started};
  eval_results_describe(&res, a->benchmark, weights, settings, NULL);
  int njobs = 0;
  eval_job *jobs = rc == 0 ? pending_jobs(&res, tasks, ntasks, (int)a->num_trials, &njobs) : NULL;
  if (rc == 0) rc = njobs > 0 ? run_jobs(a, cfg, &s, jobs, njobs) : save(&s);
  if (rc == 0) {
    eval_results_print(&res, stdout);
    rdt_info("eval: results in %s and %s", json, csv);
  }
  free(jobs), free(json), free(csv), free(weights), free(settings);
  eval_results_free(&res);
  return rc;
}

int rdt_cmd_eval(int argc, char **argv) {
  eval_args a = {.argc = argc, .argv = argv};
  rdt_flag flags[] = {
    {"config", RDT_FLAG_STR, &a.config, NULL, "model config (YAML: configs/base.yaml, tiny.yaml; dotted overrides "
     "allowed); default: config.json beside the weights"},
    {"pretrained", RDT_FLAG_STR, &a.pretrained, NULL, "weights: ema/model.safetensors, a checkpoint folder (its "
     "ema/model.safetensors) or pytorch_model.bin"},
    {"text_encoder", RDT_FLAG_STR, &a.text_encoder, NULL, "T5 folder (google/t5-v1_1-xxl)"},
    {"vision_encoder", RDT_FLAG_STR, &a.vision_encoder, NULL, "SigLIP folder (google/siglip-so400m-patch14-384)"},
    {"precomp_lang_embed", RDT_FLAG_STR, &a.precomp_lang_embed, NULL,
     "folder of precomputed instruction embeddings (rdt encode-lang); replaces T5"},
    {"lang_embed_dir", RDT_FLAG_STR, &a.lang_embed_dir, NULL,
     "the same folder under rdt train's name (--precomp_lang_embed DIR and --lang_embed_dir DIR are one flag)"},
    {"benchmark", RDT_FLAG_STR, &a.benchmark, "libero_90", "task suite (libero_90)"},
    {"num_tasks", RDT_FLAG_INT, &a.num_tasks, "90", "evaluate the first N tasks"},
    {"tasks", RDT_FLAG_LIST, &a.tasks, NULL, "task indices or names (comma-separated); replaces --num_tasks"},
    {"num_trials", RDT_FLAG_INT, &a.num_trials, "50", "episodes per task, from init states 0..N-1"},
    {"max_steps", RDT_FLAG_INT, &a.max_steps, "400", "policy steps per episode at most"},
    {"num_steps_wait", RDT_FLAG_INT, &a.num_steps_wait, "10", "settle steps with [0,0,0,0,0,0,-1] first"},
    {"exec_horizon", RDT_FLAG_INT, &a.exec_horizon, "16", "actions executed from each 64-action chunk"},
    {"record_video", RDT_FLAG_BOOL, &a.record_video, "false", "write one mp4 per episode"},
    {"video_output_dir", RDT_FLAG_STR, &a.video_output_dir, "videos", "folder of the videos"},
    {"videos_per_task", RDT_FLAG_INT, &a.videos_per_task, "-1", "videos for init states 0..N-1 only (-1: all)"},
    {"image_size", RDT_FLAG_INT, &a.image_size, "128", "camera image size (LIBERO data: 128)"},
    {"seed", RDT_FLAG_INT, &a.seed, "0", "seed of the diffusion noise (per task and trial)"},
    {"output", RDT_FLAG_STR, &a.output, "eval_results", "results folder (results.json, results.csv) or a .json "
     "file; with --merge the summary prefix"},
    {"workers", RDT_FLAG_INT, &a.workers, "1", "environments run in parallel (threads), queries batched"},
    {"resume", RDT_FLAG_BOOL, &a.resume, "false", "skip the episodes already in the results file"},
    {"device", RDT_FLAG_STR, &a.device, "cpu", "cpu, cuda or cuda:N"},
    {"threads", RDT_FLAG_INT, &a.threads, "0", "CPU threads of the model (0: all cores)"},
    {"mixed_precision", RDT_FLAG_STR, &a.precision, "bf16", "CUDA activations: bf16 or no"},
    {"policy_batch", RDT_FLAG_STR, &a.policy_batch, "auto", "waiting queries: batch (one model call), rows (one "
     "at a time: bit-identical for any --workers) or auto (rows on cpu, batch on cuda)"},
    {"libero_root", RDT_FLAG_STR, &a.libero_root, NULL, "LIBERO package folder (default: sim.libero_root of "
     "--config, then $RDT_LIBERO_ROOT)"},
    {"robosuite_assets", RDT_FLAG_STR, &a.robosuite_assets, NULL, "robosuite models/assets folder (default: "
     "sim.robosuite_assets, then $RDT_ROBOSUITE_ASSETS)"},
    {"fast_render", RDT_FLAG_BOOL, &a.fast_render, "false", "low-fidelity rendering (no shadows, reflections)"},
    {"merge", RDT_FLAG_BOOL, &a.merge, "false", "merge the results files given as arguments into --output.csv "
     "and --output.md"},
  };
  const int nflags = (int)(sizeof flags / sizeof flags[0]);
  rdt_overrides ov;
  rdt_strlist pos = {0};
  int rc = rdt_flags_parse(argv[0], "Evaluate an RDT checkpoint on LIBERO-90 in MuJoCo: success rates, videos, "
                           "results.json/csv (docs/EVAL.md).  rdt eval --merge --output PREFIX FILE...: one table "
                           "from many results files.", flags, nflags, argc, argv, &ov, &pos);
  if (rc == 1) return 0;
  if (rc != 0) rdt_die_last();
  if (a.lang_embed_dir) {
    if (a.precomp_lang_embed && strcmp(a.precomp_lang_embed, a.lang_embed_dir) != 0)
      rdt_die("--precomp_lang_embed %s and --lang_embed_dir %s name different folders", a.precomp_lang_embed,
              a.lang_embed_dir);
    a.precomp_lang_embed = a.lang_embed_dir;
  }
  if (a.merge) {
    if (eval_merge((const char *const *)pos.v, pos.n, a.output, stdout) != 0) rdt_die_last();
  } else {
    if (pos.n) rdt_die("rdt eval takes no positional arguments (got '%s'); --merge takes results files", pos.v[0]);
    rdt_config *cfg = NULL;
    if (a.config) {
      cfg = rdt_config_load(a.config);
      if (!cfg) rdt_die_last();
    } else if (ov.n) {
      rdt_die("--%s: config overrides need --config", ov.keys[0]);
    }
    for (int i = 0; cfg && i < ov.n; i++)
      if (rdt_config_set(cfg, ov.keys[i], ov.values[i]) != 0) rdt_die("--%s: %s", ov.keys[i], rdt_error());
    if ((cfg && apply_eval_section(cfg, flags, nflags) != 0) || evaluate(&a, cfg, &ov) != 0) rdt_die_last();
    rdt_config_free(cfg);
  }
  rdt_strlist_free(&pos);
  rdt_strlist_free(&a.tasks);
  rdt_overrides_free(&ov);
  return 0;
}
