/* sim/collect.h: demonstrations from the scripted experts, as LIBERO files.
 *
 * An episode is LIBERO's data collection replayed through create_dataset.py:
 * reset to stored init state k, `settle` no-op steps [0,0,0,0,0,0,-1] (the
 * evaluation protocol's wait), then the expert (sim/expert.h) until the task
 * has been successful for `hold` further steps and one more step is taken
 * (LIBERO's collect_demonstration.py), at most `max_steps` expert steps.  The
 * first `skip` steps are not recorded (create_dataset.py's cap_index 5); they
 * are settle steps, so reset(k) + `skip` no-ops + the stored actions replays a
 * demonstration exactly.
 *
 * sim_collect_task runs attempts 0, 1, ... from init states init_start,
 * init_start + 1, ... (modulo the task's 50; each attempt has its own expert
 * seed) until `demos` successes or 2 x demos + 10 attempts, and writes
 * DIR/<task name>_demo.hdf5 (sim/demo_file.h) with the successful ones.
 * Evaluations use init states 0..trials-1, so init_start = trials keeps the
 * demonstrations' initial states out of them.
 */
#ifndef RDT_SIM_COLLECT_H
#define RDT_SIM_COLLECT_H

#include <stdint.h>

#include "sim/demo_file.h"
#include "sim/env.h"

typedef struct {
  int demos;         /* successful demonstrations wanted per task */
  int max_steps;     /* expert steps per attempt at most */
  int settle;        /* no-op steps after reset (10) */
  int skip;          /* leading steps not recorded (5; <= settle) */
  int hold;          /* steps the success must last (10) */
  int init_start;    /* init state of the first attempt (0) */
  uint64_t seed;     /* expert randomness */
  int progress;      /* 1: progress bar on stderr */
} sim_collect_opts;

void sim_collect_opts_default(sim_collect_opts *o);

/* The expert seed and the init state of attempt a (of a task with n init states). */
uint64_t sim_collect_seed(const sim_collect_opts *o, int attempt);
int sim_collect_init(const sim_collect_opts *o, int attempt, int n);

/* One episode of the task's expert from init state k (see above).  With d,
 * the recorded steps go into d (cleared first; images rendered at the env's
 * image size).  1 success, 0 failure (including a diverged simulation), -1
 * error (no expert, bad init state). */
int sim_collect_episode(sim_env *e, int k, uint64_t seed, const sim_collect_opts *o, sim_demo *d);

typedef struct {
  int attempts, successes;
  int64_t steps;      /* recorded steps written */
  double seconds;
  char *path;         /* the file written (malloc'd) */
} sim_collect_result;

/* Collect one task into dir (created if missing).  0 (also when fewer than
 * o->demos succeeded: compare r->successes) or -1 (nothing written). */
int sim_collect_task(const sim_config *cfg, int task, const char *dir, const sim_collect_opts *o, sim_collect_result *r);

/* The file name of a task's demonstrations: <name>_demo.hdf5 (malloc'd). */
char *sim_collect_file_name(int task);

#endif
