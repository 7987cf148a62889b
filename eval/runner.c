/* eval/runner.c: the episode loop and the parallel runner (see runner.h). */
#include "eval/runner.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/progress.h"
#include "core/rng.h"

static const char *end_names[] = {"success", "max_steps", "sim_error"};

const char *eval_end_name(eval_end e) { return end_names[e]; }

int eval_end_parse(const char *name) {
  for (int i = 0; i < 3; i++)
    if (strcmp(name, end_names[i]) == 0) return i;
  return -1;
}

/* ================================================================ one episode */

/* The last two rendered frames of both cameras and the policy step each shows. */
typedef struct {
  int size;
  uint8_t *buf[2][RDT_RAW_CAMERAS];
  int at[2];            /* policy-step index of slot 0 (current) and 1 (previous); -1 none */
} frames;

static void frames_init(frames *f, int size) {
  f->size = size;
  for (int s = 0; s < 2; s++) {
    for (int c = 0; c < RDT_RAW_CAMERAS; c++) f->buf[s][c] = rdt_malloc((size_t)size * size * 3);
    f->at[s] = -1;
  }
}

static void frames_free(frames *f) {
  for (int s = 0; s < 2; s++)
    for (int c = 0; c < RDT_RAW_CAMERAS; c++) free(f->buf[s][c]);
}

/* Keep the images of observation o (policy step j) as the current frame. */
static void frames_push(frames *f, const sim_obs *o, int j) {
  for (int c = 0; c < RDT_RAW_CAMERAS; c++) {
    uint8_t *t = f->buf[1][c];
    f->buf[1][c] = f->buf[0][c];
    f->buf[0][c] = t;
    memcpy(t, c == RDT_CAM_AGENTVIEW ? o->agentview : o->eye_in_hand, (size_t)f->size * f->size * 3);
  }
  f->at[1] = f->at[0];
  f->at[0] = j;
}

/* The raw observation at policy step j; images only when asked and kept. */
static void observe(const sim_obs *o, const frames *f, int j, int images, rdt_raw_obs *raw) {
  const uint8_t *const *cur = images && f->at[0] == j ? (const uint8_t *const *)f->buf[0] : NULL;
  const uint8_t *const *prev = images && j > 0 && f->at[1] == j - 1 ? (const uint8_t *const *)f->buf[1] : NULL;
  eval_raw_obs(o, cur, prev, f->size, raw);
}

/* Record the simulator's failure as the episode's end. */
static void sim_failed(eval_episode *out) {
  out->end = EVAL_END_SIM_ERROR;
  snprintf(out->detail, sizeof out->detail, "%s", rdt_error());
}

/* Reset and settle; renders the last settle step (or the reset) when `images`.
 * 0, or 1 when the simulation failed (out filled). */
static int settle(sim_env *e, int trial, int wait, int images, eval_episode *out) {
  static const double noop[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
  if (sim_env_reset(e, trial, wait == 0 && images ? SIM_OBS_IMAGES : 0) != 0) {
    sim_failed(out);
    return 1;
  }
  for (int i = 0; i < wait; i++)
    if (sim_env_step(e, noop, i == wait - 1 && images ? SIM_OBS_IMAGES : 0) != 0) {
      sim_failed(out);
      return 1;
    }
  return 0;
}

int eval_episode_run(sim_env *e, int trial, const eval_protocol *p, eval_actor *a, eval_recorder *video,
                     eval_episode *out) {
  double t0 = rdt_now();
  const sim_info *info = sim_env_info(e);
  memset(out, 0, sizeof *out);
  out->task = info->task_index, out->trial = trial, out->end = EVAL_END_MAX_STEPS;
  out->digest = RDT_FNV_OFFSET;
  int want = a->needs_images || video;
  if (settle(e, trial, p->num_steps_wait, want, out)) {
    out->wall_s = rdt_now() - t0;
    return 0;
  }
  const sim_obs *o = sim_env_obs(e);
  frames f;
  frames_init(&f, o->image_size);
  int rc = 0, plan = 0, k = 0, j = 0;
  if (want) frames_push(&f, o, 0);
  if (video && eval_recorder_frame(video, f.buf[0][RDT_CAM_AGENTVIEW], f.buf[0][RDT_CAM_EYE_IN_HAND]) != 0) rc = -1;
  while (rc == 0 && j < p->max_steps) {
    rdt_raw_obs raw;
    if (k == plan) {
      observe(o, &f, j, a->needs_images, &raw);
      int n = a->plan(a, &raw);
      if (n < 0) {
        rc = -1;
        break;
      }
      out->queries++;
      plan = n < p->exec_horizon ? n : p->exec_horizon, k = 0;
    }
    double act[SIM_ACTION_DIM];
    observe(o, &f, j, 0, &raw);
    a->action(a, k++, &raw, act);
    out->digest = rdt_fnv1a(out->digest, act, sizeof act);
    /* the next plan reads step j + 1 + (plan - k) and the step before it */
    int next = j + 1 + (plan - k);
    int render = video || (a->needs_images && next < p->max_steps && j + 1 >= next - 1);
    if (sim_env_step(e, act, render ? SIM_OBS_IMAGES : 0) != 0) {
      sim_failed(out);
      j++;
      break;
    }
    j++;
    o = sim_env_obs(e);
    if (render) frames_push(&f, o, j);
    if (video && eval_recorder_frame(video, f.buf[0][RDT_CAM_AGENTVIEW], f.buf[0][RDT_CAM_EYE_IN_HAND]) != 0)
      rc = -1;
    if (sim_env_success(e)) {
      out->success = 1, out->end = EVAL_END_SUCCESS;
      break;
    }
  }
  out->steps = j;
  out->frames = video ? (int)eval_recorder_frames(video) : 0;
  out->wall_s = rdt_now() - t0;
  frames_free(&f);
  return rc;
}

/* ================================================================ videos */

char *eval_video_path(const char *dir, int task, int trial, int outcome) {
  const char *name = sim_task_name(task);
  size_t n = strlen(dir) + strlen(name) + 64;
  char *p = rdt_malloc(n);
  snprintf(p, n, "%s/%02d_%s/trial%02d%s.mp4", dir, task, name, trial,
           outcome < 0 ? "" : outcome ? "_success" : "_failure");
  return p;
}

/* Start the video of an episode (its folder made), or NULL + rdt_error(). */
static eval_recorder *video_start(const char *dir, int task, int trial, int size) {
  char *path = eval_video_path(dir, task, trial, -1), *folder = rdt_dirname(path);
  eval_recorder *r = rdt_mkdirs(folder) == 0 ? eval_recorder_open(path, size) : NULL;
  free(path), free(folder);
  return r;
}

/* Finish the video and give it the outcome's name (replacing one from an
 * earlier run of the same episode).  0 or -1. */
static int video_finish(eval_recorder *r, const char *dir, int task, int trial, int success) {
  if (eval_recorder_close(r) != 0) return -1;
  char *tmp = eval_video_path(dir, task, trial, -1), *fin = eval_video_path(dir, task, trial, success);
  char *other = eval_video_path(dir, task, trial, !success);
  remove(other);
  int rc = rename(tmp, fin) == 0 ? 0 : rdt_fail("%s: cannot rename to %s", tmp, fin);
  free(tmp), free(fin), free(other);
  return rc;
}

/* ================================================================ batching */

/* Requests of waiting workers, answered together by the model thread. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  eval_policy *policy;
  int live;                 /* workers not finished */
  int pending;              /* requests waiting */
  eval_request **req;       /* [workers] the waiting requests */
  int **status;             /* [workers] where each one's answer status goes (1 while waiting) */
  int stop;                 /* a fatal error: no more batches */
  char error[1024];         /* the first fatal error */
} broker;

/* Record the first fatal error (the calling thread's rdt_error()) and stop. */
static void broker_fail(broker *b) {
  pthread_mutex_lock(&b->mu);
  if (!b->stop) snprintf(b->error, sizeof b->error, "%s", rdt_error());
  b->stop = 1;
  pthread_cond_broadcast(&b->work);
  pthread_mutex_unlock(&b->mu);
}

/* Submit a prepared request and wait for its answer (the model thread always
 * gives one, -1 when the run stops); 0 or -1. */
static int broker_ask(broker *b, eval_request *r) {
  int status = -1;
  pthread_mutex_lock(&b->mu);
  if (!b->stop) {
    status = 1;
    b->req[b->pending] = r;
    b->status[b->pending++] = &status;
    pthread_cond_signal(&b->work);
    while (status == 1) pthread_cond_wait(&b->done, &b->mu);
  }
  pthread_mutex_unlock(&b->mu);
  return status == 0 ? 0 : rdt_fail("the evaluation stopped");
}

/* A worker is done for good. */
static void broker_leave(broker *b) {
  pthread_mutex_lock(&b->mu);
  b->live--;
  pthread_cond_signal(&b->work);
  pthread_mutex_unlock(&b->mu);
}

/* The model thread: answer the waiting requests whenever every live worker waits. */
static void broker_serve(broker *b, int workers) {
  eval_request **req = rdt_malloc((size_t)workers * sizeof *req);
  int **status = rdt_malloc((size_t)workers * sizeof *status);
  pthread_mutex_lock(&b->mu);
  for (;;) {
    while (!b->stop && b->live > 0 && (b->pending == 0 || b->pending < b->live)) pthread_cond_wait(&b->work, &b->mu);
    if (b->stop || b->live == 0) break;
    int n = b->pending;
    memcpy(req, b->req, (size_t)n * sizeof *req);
    memcpy(status, b->status, (size_t)n * sizeof *status);
    b->pending = 0;
    pthread_mutex_unlock(&b->mu);
    int rc = eval_policy_run(b->policy, req, n);
    if (rc != 0) broker_fail(b);
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < n; i++) *status[i] = rc;
    pthread_cond_broadcast(&b->done);
  }
  for (int i = 0; i < b->pending; i++) *b->status[i] = -1;   /* stopped: nobody waits for ever */
  b->pending = 0;
  pthread_cond_broadcast(&b->done);
  pthread_mutex_unlock(&b->mu);
  free(req), free(status);
}

/* ================================================================ workers */

/* The RDT policy as an episode's actor. */
typedef struct {
  eval_actor base;
  broker *b;
  eval_request *req;
  int instruction;
  rdt_rng rng;
} policy_actor;

static int policy_plan(eval_actor *a, const rdt_raw_obs *obs) {
  policy_actor *pa = (policy_actor *)a;
  if (eval_policy_prepare(pa->b->policy, obs, pa->instruction, &pa->rng, pa->req) != 0) return -1;
  if (broker_ask(pa->b, pa->req) != 0) return -1;
  return eval_policy_model_config(pa->b->policy)->pred_horizon;
}

static void policy_action(eval_actor *a, int k, const rdt_raw_obs *obs, double act[SIM_ACTION_DIM]) {
  policy_actor *pa = (policy_actor *)a;
  eval_policy_action(pa->b->policy, pa->req, k, obs, act);
}

typedef struct {
  const eval_run_opts *o;
  const eval_job *jobs;
  int njobs, next;
  broker b;
  pthread_mutex_t report;   /* serialises on_episode */
} run_state;

/* The next job index, or -1 when none is left or the run stopped. */
static int take_job(run_state *s) {
  pthread_mutex_lock(&s->b.mu);
  int i = !s->b.stop && s->next < s->njobs ? s->next++ : -1;
  pthread_mutex_unlock(&s->b.mu);
  return i;
}

/* One job on this worker's env (reopened when the task changes).  0 or -1. */
static int worker_job(run_state *s, const eval_job *job, sim_env **env, policy_actor *pa) {
  const eval_run_opts *o = s->o;
  if (!*env || sim_env_info(*env)->task_index != job->task) {
    sim_env_close(*env);
    *env = sim_env_open(&o->sim, job->task);
    if (!*env) return rdt_fail_ctx("task %d", job->task);
  }
  if (job->trial >= sim_env_info(*env)->num_init_states)
    return rdt_fail("task %d has %d init states; trial %d does not exist", job->task,
                    sim_env_info(*env)->num_init_states, job->trial);
  pa->instruction = o->instruction[job->task];
  rdt_rng_seed(&pa->rng, o->seed, (uint64_t)job->task * 65536 + (uint64_t)job->trial);
  eval_recorder *video = NULL;
  if (o->video_dir && (o->videos_per_task < 0 || job->trial < o->videos_per_task)) {
    video = video_start(o->video_dir, job->task, job->trial, o->sim.image_size);
    if (!video) return -1;
  }
  eval_episode ep;
  if (eval_episode_run(*env, job->trial, &o->protocol, &pa->base, video, &ep) != 0) {
    if (video) eval_recorder_abort(video);
    return -1;
  }
  if (video && video_finish(video, o->video_dir, job->task, job->trial, ep.success) != 0) return -1;
  pthread_mutex_lock(&s->report);
  int rc = o->on_episode ? o->on_episode(o->ctx, &ep) : 0;
  pthread_mutex_unlock(&s->report);
  return rc == 0 ? 0 : -1;
}

static void *worker_main(void *arg) {
  run_state *s = arg;
  policy_actor pa = {{1, policy_plan, policy_action}, &s->b, eval_request_new(s->o->policy), 0, {{0}, 0, 0}};
  sim_env *env = NULL;
  for (int i; (i = take_job(s)) >= 0;)
    if (worker_job(s, &s->jobs[i], &env, &pa) != 0) {
      broker_fail(&s->b);
      break;
    }
  sim_env_close(env);
  eval_request_free(pa.req);
  broker_leave(&s->b);
  return NULL;
}

int eval_run(const eval_run_opts *o, const eval_job *jobs, int njobs) {
  RDT_CHECK(o->workers >= 1 && o->protocol.exec_horizon >= 1 && o->protocol.max_steps >= 0 &&
            o->protocol.num_steps_wait >= 0, "eval_run: bad options");
  int W = o->workers < njobs ? o->workers : njobs;
  if (W == 0) return 0;
  run_state s = {.o = o, .jobs = jobs, .njobs = njobs};
  pthread_mutex_init(&s.b.mu, NULL);
  pthread_mutex_init(&s.report, NULL);
  pthread_cond_init(&s.b.work, NULL);
  pthread_cond_init(&s.b.done, NULL);
  s.b.policy = o->policy;
  s.b.req = rdt_calloc((size_t)W, sizeof *s.b.req);
  s.b.status = rdt_calloc((size_t)W, sizeof *s.b.status);
  s.b.live = W;
  pthread_t *t = rdt_calloc((size_t)W, sizeof *t);
  int started = 0;
  for (; started < W; started++)
    if (pthread_create(&t[started], NULL, worker_main, &s) != 0) break;
  if (started < W) {   /* run with the threads that did start */
    pthread_mutex_lock(&s.b.mu);
    s.b.live -= W - started;
    pthread_mutex_unlock(&s.b.mu);
  }
  if (started == 0) {
    rdt_fail("cannot start a worker thread");
    broker_fail(&s.b);
  }
  broker_serve(&s.b, W);
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  int rc = s.b.stop ? rdt_fail("%s", s.b.error) : 0;
  free(t), free(s.b.req), free(s.b.status);
  pthread_mutex_destroy(&s.b.mu);
  pthread_mutex_destroy(&s.report);
  pthread_cond_destroy(&s.b.work);
  pthread_cond_destroy(&s.b.done);
  return rc;
}
