/* sim/bench_sim.c: `rdt bench sim --task N`: control steps per second of a
 * LIBERO task, physics only and with both cameras rendered every step at 128
 * and 256 pixels.  Rates are given per wall second and per CPU second of the
 * whole process (software GL may use several threads: LP_NUM_THREADS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/flags.h"
#include "core/json.h"
#include "core/progress.h"
#include "sim/env.h"
#include "sim/render.h"

/* Process CPU seconds. */
static double bench_cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Step an env n times with no-op-ish actions; wall and CPU rates into out[2]. */
static int bench_run(sim_env *e, int n, int flags, double out[2]) {
  if (sim_env_reset(e, 0, 0)) return -1;
  const double noop[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
  double w0 = rdt_now(), c0 = bench_cpu();
  for (int t = 0; t < n; t++)
    if (sim_env_step(e, noop, flags)) return -1;
  double w = rdt_now() - w0, c = bench_cpu() - c0;
  out[0] = n / w, out[1] = n / c;
  return 0;
}

/* Write one measurement as {"steps_per_s":.., "steps_per_cpu_s":..}. */
static void bench_key(rdt_jw *w, const char *key, const double r[2]) {
  jw_key(w, key);
  jw_obj(w);
  jw_key(w, "steps_per_s"), jw_num(w, r[0]);
  jw_key(w, "steps_per_cpu_s"), jw_num(w, r[1]);
  jw_obj_end(w);
}

int rdt_bench_sim(int argc, char **argv) {
  const char *task = "KITCHEN_SCENE1_put_the_black_bowl_on_the_plate";
  int64_t steps = 100;
  int fast = 0;
  rdt_flag flags[] = {
      {"task", RDT_FLAG_STR, &task, "KITCHEN_SCENE1_put_the_black_bowl_on_the_plate", "task index or name"},
      {"steps", RDT_FLAG_INT, &steps, "100", "control steps per measurement"},
      {"fast", RDT_FLAG_BOOL, &fast, "false", "also measure the low-fidelity render mode"},
  };
  int rc = rdt_flags_parse("bench sim", "rdt bench sim --task N: control steps/s, physics only and with two cameras\n"
                           "(agentview + robot0_eye_in_hand) rendered every step at 128 and 256 pixels",
                           flags, 3, argc, argv, NULL, NULL);
  if (rc == 1) return 0;
  if (rc < 0) rdt_die_last();
  char *end;
  long idx = strtol(task, &end, 10);
  int t = *end ? sim_task_find(task) : (int)idx;
  if (t < 0 || t >= SIM_NUM_TASKS) rdt_die("--task %s: no such libero_90 task", task);
  double phys[2], r128[2], r256[2], f128[2] = {0, 0};
  int sizes[2] = {128, 256};
  double *rates[2] = {r128, r256};
  const char *gl = NULL;
  for (int s = 0; s < 2; s++) {
    sim_config cfg;
    sim_config_default(&cfg);
    cfg.image_size = sizes[s];
    sim_env *e = sim_env_open(&cfg, t);
    if (!e) rdt_die_last();
    if (s == 0 && bench_run(e, (int)steps, 0, phys)) rdt_die_last();
    if (bench_run(e, (int)steps, SIM_OBS_IMAGES, rates[s])) rdt_die_last();
    gl = sim_gl_backend();
    sim_env_close(e);
  }
  if (fast) {
    sim_config cfg;
    sim_config_default(&cfg);
    cfg.fast_render = 1;
    sim_env *e = sim_env_open(&cfg, t);
    if (!e || bench_run(e, (int)steps, SIM_OBS_IMAGES, f128)) rdt_die_last();
    sim_env_close(e);
  }
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "task"), jw_str(&w, sim_task_name(t));
  jw_key(&w, "steps"), jw_int(&w, steps);
  jw_key(&w, "substeps_per_step"), jw_int(&w, 25);
  jw_key(&w, "gl"), jw_str(&w, gl ? gl : "none");
  jw_key(&w, "lp_num_threads"), getenv("LP_NUM_THREADS") ? jw_str(&w, getenv("LP_NUM_THREADS")) : jw_null(&w);
  bench_key(&w, "physics_only", phys);
  bench_key(&w, "two_cameras_128", r128);
  bench_key(&w, "two_cameras_256", r256);
  if (fast) bench_key(&w, "two_cameras_128_fast", f128);
  jw_obj_end(&w);
  char *text = jw_finish(&w);
  printf("%s\n", text);
  free(text);
  return 0;
}
