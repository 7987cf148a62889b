/* The episode loop on a real LIBERO task (KITCHEN_SCENE10_close_the_top_drawer
 * _of_the_cabinet, task 0, whose init states leave the top drawer open):
 *   - exec horizon: with K = 8 and 30 steps the actor plans ceil(30/8) = 4
 *     times, at steps 0, 8, 16, 24; a plan shorter than K replans sooner;
 *   - image history: the first plan has no t-1 frame; with K = 1 every plan's
 *     t-1 frame is byte for byte the previous plan's current frame; with K = 8
 *     the t-1 frame is rendered for the step before the plan;
 *   - success: a scripted closed-loop controller (waypoints in front of the
 *     drawer, then a push; only the public observation is read) closes the
 *     drawer and the loop reports success at the first step the env API says
 *     so (checked by replaying the same controller by hand); zero actions
 *     report failure after max_steps;
 *   - a video holds 1 + steps frames. */
#include <math.h>
#include "core/error.h"
#include "eval/runner.h"
#include "eval_fixture.h"

enum { SIZE = 64, TASK = 0 };

/* ================================================================ actors */

/* Plans of fixed length, moving +x; records what each plan saw. */
typedef struct {
  eval_actor base;
  int len, nplans;
  int had_cur[64], had_prev[64];
  uint8_t *cur[64], *prev[64];   /* copies of the agentview frames */
} counting_actor;

static uint8_t *copy_frame(const uint8_t *f) {
  if (!f) return NULL;
  uint8_t *c = malloc((size_t)SIZE * SIZE * 3);
  memcpy(c, f, (size_t)SIZE * SIZE * 3);
  return c;
}

static int counting_plan(eval_actor *a, const rdt_raw_obs *o) {
  counting_actor *c = (counting_actor *)a;
  int i = c->nplans++;
  if (i < 64) {
    c->had_cur[i] = o->image[RDT_CAM_AGENTVIEW][1] && o->image[RDT_CAM_EYE_IN_HAND][1];
    c->had_prev[i] = o->image[RDT_CAM_AGENTVIEW][0] && o->image[RDT_CAM_EYE_IN_HAND][0];
    c->cur[i] = copy_frame(o->image[RDT_CAM_EYE_IN_HAND][1]);
    c->prev[i] = copy_frame(o->image[RDT_CAM_EYE_IN_HAND][0]);
  }
  return c->len;
}

static void counting_action(eval_actor *a, int k, const rdt_raw_obs *o, double act[7]) {
  (void)a, (void)k, (void)o;
  double v[7] = {0.4, 0, 0, 0, 0, 0, -1};
  memcpy(act, v, sizeof v);
}

static void counting_free(counting_actor *c) {
  for (int i = 0; i < c->nplans && i < 64; i++) free(c->cur[i]), free(c->prev[i]);
}

/* Close the drawer: go in front of it, lower, push along -y (gripper closed). */
static const double waypoints[3][3] = {{0.0, 0.06, 1.16}, {0.0, 0.06, 1.09}, {0.0, -0.2, 1.09}};

typedef struct {
  eval_actor base;
  int w;   /* current waypoint */
} drawer_actor;

/* The proportional controller both the loop and the hand replay use. */
static void drawer_control(int *w, const double eef[3], double act[7]) {
  double err = 0;
  for (int k = 0; k < 3; k++) {
    double d = waypoints[*w][k] - eef[k];
    act[k] = fmax(-1, fmin(1, d / 0.025));
    err += fabs(d);
  }
  act[3] = act[4] = act[5] = 0, act[6] = 1;
  if (err < 0.02 && *w < 2) (*w)++;
}

static int drawer_plan(eval_actor *a, const rdt_raw_obs *o) {
  (void)a, (void)o;
  return 1;
}

static void drawer_action(eval_actor *a, int k, const rdt_raw_obs *o, double act[7]) {
  (void)k;
  drawer_control(&((drawer_actor *)a)->w, o->eef_pos, act);
}

static int zero_plan(eval_actor *a, const rdt_raw_obs *o) {
  (void)a, (void)o;
  return 64;
}

static void zero_action(eval_actor *a, int k, const rdt_raw_obs *o, double act[7]) {
  (void)a, (void)k, (void)o;
  memset(act, 0, 7 * sizeof *act);
}

/* ================================================================ cases */

static sim_env *env;
static char dir[4096];

static void t_exec_horizon(void) {
  eval_protocol p = {10, 30, 8};
  counting_actor c = {{1, counting_plan, counting_action}, 64, 0, {0}, {0}, {NULL}, {NULL}};
  eval_episode ep;
  CHECK_MSG(eval_episode_run(env, 0, &p, &c.base, NULL, &ep) == 0, "%s", rdt_error());
  CHECK_MSG(c.nplans == (30 + 8 - 1) / 8 && ep.queries == c.nplans, "%d plans", c.nplans);
  CHECK(ep.steps == 30 && ep.end == EVAL_END_MAX_STEPS && !ep.success && ep.task == TASK && ep.trial == 0);
  CHECK(c.had_cur[0] && !c.had_prev[0]);
  for (int i = 1; i < c.nplans && i < 64; i++) {
    CHECK(c.had_cur[i] && c.had_prev[i]);
    /* the arm moves, so step t-1 and t differ, and t-1 is not the previous plan's frame */
    CHECK(c.prev[i] && c.cur[i] && memcmp(c.prev[i], c.cur[i], (size_t)SIZE * SIZE * 3) != 0);
    CHECK(c.prev[i] && memcmp(c.prev[i], c.cur[i - 1], (size_t)SIZE * SIZE * 3) != 0);
  }
  counting_free(&c);
  /* a plan shorter than the horizon: 3 actions per plan -> ceil(30 / 3) plans */
  counting_actor s = {{0, counting_plan, counting_action}, 3, 0, {0}, {0}, {NULL}, {NULL}};
  CHECK(eval_episode_run(env, 1, &p, &s.base, NULL, &ep) == 0);
  CHECK(s.nplans == 10 && ep.queries == 10 && ep.steps == 30 && ep.trial == 1);
  CHECK(!s.had_cur[0] && !s.had_prev[3]);   /* an actor that reads no images gets none */
  counting_free(&s);
}

static void t_history_k1(void) {
  eval_protocol p = {2, 6, 1};
  counting_actor c = {{1, counting_plan, counting_action}, 64, 0, {0}, {0}, {NULL}, {NULL}};
  eval_episode ep;
  CHECK(eval_episode_run(env, 0, &p, &c.base, NULL, &ep) == 0);
  CHECK(c.nplans == 6 && !c.had_prev[0]);
  for (int i = 1; i < c.nplans; i++)
    CHECK_MSG(c.prev[i] && c.cur[i - 1] && !memcmp(c.prev[i], c.cur[i - 1], (size_t)SIZE * SIZE * 3),
              "plan %d: t-1 frame is not plan %d's frame", i, i - 1);
  counting_free(&c);
}

/* The first step at which the hand-driven controller reaches success (or -1). */
static int replay_by_hand(int trial, int wait, int max_steps) {
  static const double noop[7] = {0, 0, 0, 0, 0, 0, -1};
  int w = 0;
  if (sim_env_reset(env, trial, 0) != 0) return -2;
  for (int i = 0; i < wait; i++) sim_env_step(env, noop, 0);
  for (int t = 1; t <= max_steps; t++) {
    double act[7];
    drawer_control(&w, sim_env_obs(env)->eef_pos, act);
    if (sim_env_step(env, act, 0) != 0) return -2;
    if (sim_env_success(env)) return t;
  }
  return -1;
}

static void t_scripted_success(void) {
  eval_protocol p = {10, 120, 8};
  drawer_actor d = {{0, drawer_plan, drawer_action}, 0};
  eval_episode ep;
  CHECK(eval_episode_run(env, 0, &p, &d.base, NULL, &ep) == 0);
  CHECK_MSG(ep.success && ep.end == EVAL_END_SUCCESS, "end %s after %d steps", eval_end_name(ep.end), ep.steps);
  CHECK(ep.steps > 10 && ep.steps < 120 && ep.queries == ep.steps);
  int first = replay_by_hand(0, 10, 120);
  CHECK_MSG(first == ep.steps, "hand replay succeeds at step %d, the loop reported %d", first, ep.steps);
}

static void t_zero_actions_fail(void) {
  eval_protocol p = {10, 40, 16};
  eval_actor z = {0, zero_plan, zero_action};
  eval_episode ep;
  CHECK(eval_episode_run(env, 0, &p, &z, NULL, &ep) == 0);
  CHECK(!ep.success && ep.end == EVAL_END_MAX_STEPS && ep.steps == 40 && ep.queries == 3);
  CHECK(!sim_env_success(env));
}

static void t_video_frames(void) {
#if RDT_EVAL_VIDEO
  char path[4200];
  snprintf(path, sizeof path, "%s/ep.mp4", dir);
  eval_recorder *r = eval_recorder_open(path, SIZE);
  CHECK_MSG(r != NULL, "%s", rdt_error());
  if (!r) return;
  eval_protocol p = {3, 9, 4};
  eval_actor z = {0, zero_plan, zero_action};
  eval_episode ep;
  CHECK(eval_episode_run(env, 2, &p, &z, r, &ep) == 0);
  CHECK(ep.frames == 1 + 9);
  CHECK(eval_recorder_close(r) == 0 && rdt_is_file(path));
#endif
}

int main(void) {
  fx_libero_env();
  snprintf(dir, sizeof dir, "%s", test_tmpdir("eval-episode"));
  sim_config cfg;
  sim_config_default(&cfg);
  cfg.image_size = SIZE;
  env = sim_env_open(&cfg, TASK);
  if (!env) return fprintf(stderr, "%s\n", rdt_error()), 1;
  RUN(t_exec_horizon);
  RUN(t_history_k1);
  RUN(t_scripted_success);
  RUN(t_zero_actions_fail);
  RUN(t_video_frames);
  sim_env_close(env);
  if (!test_done()) test_sh("rm -rf '%s'", dir);
  return test_done();
}
