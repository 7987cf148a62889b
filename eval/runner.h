/* eval/runner.h: the LIBERO episode loop and the parallel runner.
 *
 * Episode (eval_episode_run), LIBERO's usual protocol:
 *   1. reset to stored init state `trial`;
 *   2. num_steps_wait settle steps with [0, 0, 0, 0, 0, 0, -1] (gripper open),
 *      not counted, no success check, no rendering except the last one when
 *      the policy or the video needs the first observation's images;
 *   3. up to max_steps policy steps: when the current plan is used up (or at
 *      the start) the actor plans from the current observation and the next
 *      min(plan length, exec_horizon) actions are executed; success is checked
 *      after every step and the episode ends at the first success.
 * Images reach the actor at planning time: the current frame and the frame of
 * the previous policy step (none at the first plan, as training at an episode
 * start).  Only those frames are rendered, unless a video records every step.
 * A video holds 1 + steps frames: the observation the first plan sees (after
 * the settle steps, which are NOT in the video), then one per policy step.
 *
 * Runner (eval_run): W worker threads, each with its own simulator envs (and
 * so its own GL context, made in that thread), take episodes from one queue;
 * their policy queries are answered in batches by the calling thread: a batch
 * runs when every worker still working waits for an answer, with B = the
 * number of waiting workers.  The diffusion noise of an episode comes from its
 * own generator, rdt_rng_seed(seed, task * 65536 + trial), so an episode's
 * result does not depend on the number of workers or the order of episodes.
 */
#ifndef RDT_EVAL_RUNNER_H
#define RDT_EVAL_RUNNER_H

#include <stdint.h>
#include "eval/policy.h"
#include "eval/recorder.h"
#include "sim/env.h"

typedef struct {
  int num_steps_wait;   /* settle steps before the policy acts (10) */
  int max_steps;        /* policy steps at most (400 for libero_90) */
  int exec_horizon;     /* actions executed per plan before replanning */
} eval_protocol;

/* What acts in an episode: the RDT policy, or a scripted controller in tests. */
typedef struct eval_actor eval_actor;
struct eval_actor {
  int needs_images;   /* 1: plans read the camera images (current and previous step) */
  /* A new plan for the observation: its number of actions (>= 1), or -1 + rdt_error(). */
  int (*plan)(eval_actor *a, const rdt_raw_obs *obs);
  /* Action k of the current plan, taken from observation obs. */
  void (*action)(eval_actor *a, int k, const rdt_raw_obs *obs, double act[SIM_ACTION_DIM]);
};

/* Why an episode ended. */
typedef enum { EVAL_END_SUCCESS, EVAL_END_MAX_STEPS, EVAL_END_SIM_ERROR } eval_end;
const char *eval_end_name(eval_end e);   /* "success", "max_steps", "sim_error" */
int eval_end_parse(const char *name);    /* the enum value, or -1 */

typedef struct {
  int task, trial;      /* task index, init state index */
  int success;
  int steps;            /* policy steps executed (settle steps excluded) */
  int queries;          /* plans asked for (model queries) */
  eval_end end;
  double wall_s;
  uint64_t digest;      /* FNV-1a 64 of the executed actions (IEEE doubles): a reproducibility fingerprint */
  int frames;           /* video frames written (0: no video) */
  char detail[200];     /* the simulator's message when it diverged */
} eval_episode;

/* One episode on e (used only from this thread) from init state `trial`.
 * video: NULL, or a recorder for the camera size of e.  Returns 0 with the
 * outcome in *out (a diverged simulation is an outcome: EVAL_END_SIM_ERROR),
 * or -1 when the actor or the video failed. */
int eval_episode_run(sim_env *e, int trial, const eval_protocol *p, eval_actor *a, eval_recorder *video,
                     eval_episode *out);

/* ---------------------------------------------------------------- parallel runs */
typedef struct {
  int task, trial;
} eval_job;

typedef struct {
  sim_config sim;              /* data paths, camera size, render mode */
  eval_protocol protocol;
  int workers;                 /* environments stepping in parallel */
  uint64_t seed;
  eval_policy *policy;
  const int *instruction;      /* instruction index (eval_policy_instructions) per task index */
  const char *video_dir;       /* NULL: no videos */
  int videos_per_task;         /* trials with init index < N get a video; < 0: all */
  /* Called once per finished episode, from a worker thread, never two at a
   * time; non-zero stops the run (the message in rdt_error()). */
  int (*on_episode)(void *ctx, const eval_episode *ep);
  void *ctx;
} eval_run_opts;

/* Run the jobs.  0, or -1 + rdt_error() at the first failure that is not an
 * episode outcome (task that does not open, model error, unwritable video). */
int eval_run(const eval_run_opts *o, const eval_job *jobs, int njobs);

/* The video path of an episode under dir:
 * {task:02d}_{task_name}/trial{trial:02d}_{success|failure}.mp4; outcome < 0
 * gives the name used while recording, trial{trial:02d}.mp4.  Malloc'd. */
char *eval_video_path(const char *dir, int task, int trial, int outcome);

#endif
