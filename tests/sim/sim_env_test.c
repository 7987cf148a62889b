/* tests/sim/sim_env_test.c: controller and goal predicates on real tasks.
 *
 * Controller bounds come from worked calculations (below); predicate tests
 * build states by hand (teleport an object, move a joint across LIBERO's
 * threshold) and check success flips from false to true. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/osc.h"
#include "sim_helpers.h"

/* ------------------------------------------------------------------ controller */

/* +x command 1.0 for one step.  Worked: OSC_POSE scales it to a goal 0.05 m
 * ahead; the decoupled task-space dynamics x'' = kp e - kd x' (kp 150, kd
 * 2 sqrt(kp), critically damped, w = sqrt(150)) move the grip site by
 * 0.05 [1 - (1 + w t) e^(-w t)]; the observation is the kinematics before the
 * 24th substep's integration, t = 23 * 0.002 s: 5.5 mm.  Joint friction and
 * damping only slow it: expect 0.5..1.1 of that along x, under 20 % of it
 * sideways or up/down. */
static void t_osc_step_x(void) {
  sim_env *e = test_open("KITCHEN_SCENE1_put_the_black_bowl_on_the_plate", 0);
  CHECK(sim_env_reset(e, 0, 0) == 0 && test_noop(e, 10) == 0);
  const sim_obs *o = sim_env_obs(e);
  double p0[3];
  memcpy(p0, o->eef_pos, sizeof p0);
  const double a[SIM_ACTION_DIM] = {1, 0, 0, 0, 0, 0, -1};
  CHECK(sim_env_step(e, a, 0) == 0);
  double w = sqrt(150.0), t = 23 * 0.002, ideal = 0.05 * (1 - (1 + w * t) * exp(-w * t));
  double dx = o->eef_pos[0] - p0[0], dy = o->eef_pos[1] - p0[1], dz = o->eef_pos[2] - p0[2];
  CHECK_MSG(dx > 0.5 * ideal && dx < 1.1 * ideal, "dx %.5f, worked %.5f", dx, ideal);
  CHECK_MSG(fabs(dy) < 0.2 * dx && fabs(dz) < 0.2 * dx, "dy %.5f dz %.5f", dy, dz);
  /* a command beyond 1 is clipped to 1: same goal, same motion */
  sim_env_reset(e, 0, 0), test_noop(e, 10);
  const double big[SIM_ACTION_DIM] = {7, 0, 0, 0, 0, 0, -1};
  sim_env_step(e, big, 0);
  CHECK_NEAR(o->eef_pos[0] - p0[0], dx, 1e-12);
  sim_env_close(e);
}

/* Zero commands hold the pose: after the 10 settle steps the grip site stays
 * within 1 mm for 50 more steps (each zero delta re-targets the current pose). */
static void t_osc_hold(void) {
  sim_env *e = test_open("KITCHEN_SCENE1_put_the_black_bowl_on_the_plate", 0);
  CHECK(sim_env_reset(e, 0, 0) == 0 && test_noop(e, 10) == 0);
  const sim_obs *o = sim_env_obs(e);
  double p0[3], worst = 0;
  memcpy(p0, o->eef_pos, sizeof p0);
  const double zero[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < 50; k++) {
    CHECK(sim_env_step(e, zero, 0) == 0);
    double d = sqrt(pow(o->eef_pos[0] - p0[0], 2) + pow(o->eef_pos[1] - p0[1], 2) + pow(o->eef_pos[2] - p0[2], 2));
    worst = fmax(worst, d);
  }
  CHECK_MSG(worst < 0.001, "drift %.6f m", worst);
  sim_env_close(e);
}

/* Gripper.  Worked: the command moves 0.01 per substep, so open -> closed
 * takes 2 / (0.01 * 25) = 8 control steps, the finger target ramping from
 * 0.04 m to 0 at 5 mm per step (0.1 m/s).  The finger (position servo kp
 * 1000, joint damping 100) lags a ramp by v * damping / kp = 0.01 m and
 * then decays with tau = 0.1 s (2 steps).  So: ~0.01 m left after 8 steps,
 * under 4 mm after 12, symmetric fingers, monotone closing. */
static void t_gripper(void) {
  sim_env *e = test_open("KITCHEN_SCENE1_put_the_black_bowl_on_the_plate", 0);
  CHECK(sim_env_reset(e, 0, 0) == 0 && test_noop(e, 10) == 0);
  const sim_obs *o = sim_env_obs(e);
  CHECK_MSG(o->gripper_qpos[0] > 0.035, "open %.4f", o->gripper_qpos[0]);
  const double close[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, 1};
  double prev = o->gripper_qpos[0];
  int monotone = 1;
  for (int k = 1; k <= 12; k++) {
    CHECK(sim_env_step(e, close, 0) == 0);
    monotone &= o->gripper_qpos[0] <= prev + 1e-6;
    prev = o->gripper_qpos[0];
    CHECK_NEAR(o->gripper_qpos[0], -o->gripper_qpos[1], 1e-4);
    if (k == 8) CHECK_MSG(fabs(o->gripper_qpos[0] - 0.01) < 0.004, "after 8 steps %.4f", o->gripper_qpos[0]);
  }
  CHECK(monotone);
  CHECK_MSG(o->gripper_qpos[0] < 0.004, "after 12 steps %.4f", o->gripper_qpos[0]);
  sim_env_close(e);
}

/* Determinism: the same init state and actions give bit-identical states. */
static void t_deterministic(void) {
  sim_env *e = test_open("KITCHEN_SCENE1_put_the_black_bowl_on_the_plate", 0);
  int n = sim_env_info(e)->init_state_width;
  double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n);
  const double act[SIM_ACTION_DIM] = {0.3, -0.2, 0.1, 0.1, 0.0, -0.2, 1};
  for (int run = 0; run < 2; run++) {
    sim_env_reset(e, 3, 0);
    for (int k = 0; k < 15; k++) sim_env_step(e, act, 0);
    sim_env_get_state(e, run ? b : a, n);
  }
  CHECK(!memcmp(a, b, sizeof(double) * n));
  free(a), free(b);
  sim_env_close(e);
}

/* The env's substep (mj_step1, repeated constraint solves, controller,
 * mj_step2) gives bit-identical states to upstream's literal order: mj_forward
 * (env), mj_forward + update() (skipped on the first substep after reset,
 * where robosuite's controller still holds the state it was built with at
 * init_qpos), controller, mj_step. */
static void t_step_split_matches_upstream_order(void) {
  sim_env *e = test_open("KITCHEN_SCENE1_open_the_top_drawer_of_the_cabinet_and_put_the_bowl_in_it", 0);
  const sim_scene *s = sim_env_scene(e);
  mjModel *m = s->m;
  int n = sim_env_info(e)->init_state_width;
  double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n);
  const double act[SIM_ACTION_DIM] = {0.5, -0.3, -0.6, 0.2, 0.0, -0.1, 1};
  sim_env_reset(e, 2, 0);
  for (int k = 0; k < 12; k++) sim_env_step(e, act, 0);
  sim_env_get_state(e, a, n);
  /* the same episode in upstream's order on a second data */
  mjData *d = mj_makeData(m);
  osc c;
  osc_links l;
  memcpy(l.qpos, s->arm_qpos, sizeof l.qpos), memcpy(l.dof, s->arm_dof, sizeof l.dof);
  memcpy(l.act, s->arm_act, sizeof l.act), memcpy(l.grip_act, s->grip_act, sizeof l.grip_act);
  l.site = s->grip_site;
  osc_init(&c, m, &l);
  for (int j = 0; j < 7; j++) d->qpos[s->arm_qpos[j]] = s->init_qpos[j];
  mj_forward(m, d);
  osc_update(&c, m, d);
  osc_reset(&c, s->init_qpos);
  mj_resetData(m, d);
  sim_env_reset(e, 2, 0);
  sim_env_get_state(e, b, n);
  d->time = b[0];
  memcpy(d->qpos, b + 1, sizeof(double) * m->nq);
  memcpy(d->qvel, b + 1 + m->nq, sizeof(double) * m->nv);
  mj_forward(m, d);
  for (int k = 0; k < 12 * 25; k++) {
    mj_forward(m, d);
    if (k) {
      mj_forward(m, d);
      osc_update(&c, m, d);
    }
    if (k % 25 == 0) osc_set_goal(&c, act);
    osc_torques(&c, m, d);
    osc_gripper(&c, m, d, act[6]);
    for (int j = 0; j < 7; j++) d->ctrl[l.act[j]] = c.torques[j];
    mj_step(m, d);
  }
  b[0] = d->time;
  memcpy(b + 1, d->qpos, sizeof(double) * m->nq);
  memcpy(b + 1 + m->nq, d->qvel, sizeof(double) * m->nv);
  CHECK(!memcmp(a, b, sizeof(double) * n));
  osc_free(&c);
  mj_deleteData(d);
  free(a), free(b);
  sim_env_close(e);
}

/* Two envs stepped and rendered in two threads at once (each creates its GL
 * context in its own thread) give the same states and images as one env run
 * alone: envs share nothing. */
typedef struct {
  const char *task;
  int render;
  double *state;
  int n;
  uint8_t img[32 * 32 * 3];
} thread_job;

static void *thread_run(void *arg) {
  thread_job *j = arg;
  sim_config c;
  sim_config_default(&c);
  c.libero_root = test_libero_root();
  c.robosuite_assets = test_robosuite_assets();
  c.image_size = 32;
  c.physics_only = !j->render;
  sim_env *e = sim_env_open(&c, sim_task_find(j->task));
  if (!e) return NULL;
  const double act[SIM_ACTION_DIM] = {0.2, 0.1, -0.3, 0, 0.1, 0, 1};
  sim_env_reset(e, 1, 0);
  for (int k = 0; k < 8; k++) sim_env_step(e, act, j->render && k == 7 ? SIM_OBS_IMAGES : 0);
  j->n = sim_env_info(e)->init_state_width;
  j->state = malloc(sizeof(double) * j->n);
  sim_env_get_state(e, j->state, j->n);
  if (j->render && sim_env_obs(e)->agentview) memcpy(j->img, sim_env_obs(e)->agentview, sizeof j->img);
  sim_env_close(e);
  return NULL;
}

static void t_threads(void) {
  setenv("RDT_GL", "osmesa", 1);
  thread_job alone = {"KITCHEN_SCENE3_turn_on_the_stove", 1, NULL, 0, {0}};
  thread_run(&alone);
  thread_job jobs[2] = {{"KITCHEN_SCENE3_turn_on_the_stove", 1, NULL, 0, {0}},
                        {"LIVING_ROOM_SCENE2_pick_up_the_butter_and_put_it_in_the_basket", 0, NULL, 0, {0}}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, thread_run, &jobs[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK(alone.state && jobs[0].state && jobs[1].state && alone.n == jobs[0].n);
  if (alone.state && jobs[0].state) CHECK(!memcmp(alone.state, jobs[0].state, sizeof(double) * alone.n));
  CHECK(!memcmp(alone.img, jobs[0].img, sizeof alone.img));
  int lit = 0;
  for (size_t i = 0; i < sizeof alone.img; i++) lit |= alone.img[i] != alone.img[0];
  CHECK(lit);
  free(alone.state), free(jobs[0].state), free(jobs[1].state);
}

/* ------------------------------------------------------------------ predicates */

/* Set qpos[adr] = v for each (adr, v) pair via the flat state; 0 or -1. */
static int set_qpos(sim_env *e, int n, const int *adr, const double *v) {
  int w = sim_env_info(e)->init_state_width;
  double *s = malloc(sizeof(double) * w);
  sim_env_get_state(e, s, w);
  for (int i = 0; i < n; i++) s[1 + adr[i]] = v[i];
  for (int i = 1 + sim_env_info(e)->nq; i < w; i++) s[i] = 0;
  int rc = sim_env_set_state(e, s, w);
  free(s);
  return rc;
}

/* Move a movable object's free joint so its body origin is at p (identity kept). */
static int teleport(sim_env *e, const char *obj, const double p[3]) {
  const sim_object *o = &sim_env_scene(e)->obj[test_object(e, obj)];
  int adr[3] = {o->jnt_qpos[0], o->jnt_qpos[0] + 1, o->jnt_qpos[0] + 2};
  return set_qpos(e, 3, adr, p);
}

/* Start a predicate test: reset, settle, success must be false. */
static sim_env *pred_start(const char *task) {
  sim_env *e = test_open(task, 0);
  CHECK(sim_env_reset(e, 0, 0) == 0 && test_noop(e, 10) == 0);
  CHECK_MSG(!sim_env_success(e), "%s succeeds at the start", task);
  return e;
}

/* World position of a body or a site. */
static void body_pos(sim_env *e, int body, double out[3]) { memcpy(out, sim_env_data(e)->xpos + 3 * body, 3 * sizeof(double)); }

/* On(object, object): the bowl put on the plate (z above, touching, xy < 3 cm). */
static void t_pred_on_object(void) {
  sim_env *e = pred_start("KITCHEN_SCENE1_put_the_black_bowl_on_the_plate");
  double p[3];
  body_pos(e, sim_env_scene(e)->obj[test_object(e, "plate_1")].body, p);
  p[2] += 0.02;
  CHECK(teleport(e, "akita_black_bowl_1", p) == 0 && test_noop(e, 10) == 0);
  CHECK(sim_env_success(e));
  /* moved 5 cm aside it is not on the plate any more (xy distance rule) */
  p[1] += 0.05, p[2] += 0.01;
  CHECK(teleport(e, "akita_black_bowl_1", p) == 0 && test_noop(e, 5) == 0);
  CHECK(!sim_env_success(e));
  sim_env_close(e);
}

/* On(object, site of a fixture): the bowl on top of the cabinet (under() and contact). */
static void t_pred_on_site(void) {
  sim_env *e = pred_start("KITCHEN_SCENE1_put_the_black_bowl_on_top_of_the_cabinet");
  const sim_scene *s = sim_env_scene(e);
  const sim_region *r = &s->region[sim_scene_region(s, "wooden_cabinet_1_top_side")];
  double p[3];
  memcpy(p, sim_env_data(e)->site_xpos + 3 * r->site, sizeof p);
  p[2] += 0.01;
  CHECK(teleport(e, "akita_black_bowl_1", p) == 0 && test_noop(e, 10) == 0);
  CHECK(sim_env_success(e));
  sim_env_close(e);
}

/* On(object, table zone): no contact needed, height window and xy box. */
static void t_pred_on_zone(void) {
  sim_env *e = pred_start("KITCHEN_SCENE7_put_the_white_bowl_to_the_right_of_the_plate");
  const sim_scene *s = sim_env_scene(e);
  const pred_atom *g;
  int n;
  g = sim_env_goal(e, &n);
  CHECK(n == 1 && g[0].kind == PRED_ON && g[0].b.region >= 0 && s->region[g[0].b.region].parent < 0);
  double p[3];
  memcpy(p, sim_env_data(e)->site_xpos + 3 * s->region[g[0].b.region].site, sizeof p);
  p[2] = 0.95;
  CHECK(teleport(e, "white_bowl_1", p) == 0 && test_noop(e, 10) == 0);
  CHECK(sim_env_success(e));
  sim_env_close(e);
}

/* In(object, drawer region) with Open: open the drawer, put the bowl inside. */
static void t_pred_in_open(void) {
  sim_env *e = pred_start("KITCHEN_SCENE1_open_the_top_drawer_of_the_cabinet_and_put_the_bowl_in_it");
  const sim_scene *s = sim_env_scene(e);
  const sim_region *r = &s->region[sim_scene_region(s, "wooden_cabinet_1_top_region")];
  CHECK(r->njoint == 1);
  const double open = -0.15;  /* WoodenCabinet.is_open: q < -0.14 */
  CHECK(set_qpos(e, 1, r->jnt_qpos, &open) == 0);
  int n;
  const pred_atom *g = sim_env_goal(e, &n);
  CHECK(n == 2 && pred_eval(s, sim_env_data(e), &g[0]) && !sim_env_success(e));
  double p[3];
  memcpy(p, sim_env_data(e)->site_xpos + 3 * r->site, sizeof p);
  CHECK(teleport(e, "akita_black_bowl_1", p) == 0);
  CHECK(pred_eval(s, sim_env_data(e), &g[1]));
  CHECK(sim_env_success(e));
  sim_env_close(e);
}

/* Open / Close of drawers and the microwave door at LIBERO's thresholds. */
static void t_pred_joints(void) {
  static const struct {
    const char *task, *region;
    double before, after;
  } cases[] = {
      {"KITCHEN_SCENE1_open_the_bottom_drawer_of_the_cabinet", "wooden_cabinet_1_bottom_region", -0.13, -0.145},
      {"KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet", "wooden_cabinet_1_top_region", -0.05, 0.002},
      {"KITCHEN_SCENE6_close_the_microwave", NULL, -0.3, -0.004},    /* Microwave.is_close: q > -0.005 */
      {"KITCHEN_SCENE7_open_the_microwave", NULL, -1.2, -1.35},      /* Microwave.is_open: q < -1.3 */
      {"KITCHEN_SCENE3_turn_on_the_stove", NULL, 0.45, 0.55},        /* FlatStove.turn_on: q >= 0.5 */
      {"KITCHEN_SCENE8_turn_off_the_stove", NULL, 0.3, -0.002},      /* FlatStove.turn_off: q < 0 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sim_env *e = test_open(cases[i].task, 0);
    CHECK(sim_env_reset(e, 0, 0) == 0);
    const sim_scene *s = sim_env_scene(e);
    const int *adr;
    if (cases[i].region) {
      adr = s->region[sim_scene_region(s, cases[i].region)].jnt_qpos;
    } else {
      int n;
      const pred_atom *g = sim_env_goal(e, &n);
      adr = s->obj[g[0].a.obj].jnt_qpos;
    }
    CHECK(set_qpos(e, 1, adr, &cases[i].before) == 0);
    CHECK_MSG(!sim_env_success(e), "%s at %g", cases[i].task, cases[i].before);
    CHECK(set_qpos(e, 1, adr, &cases[i].after) == 0);
    CHECK_MSG(sim_env_success(e), "%s at %g", cases[i].task, cases[i].after);
    sim_env_close(e);
  }
}

/* The stove's burner site lights up (alpha > 0) while the knob is on. */
static void t_burner_visual(void) {
  sim_env *e = test_open("KITCHEN_SCENE3_turn_on_the_stove", 0);
  CHECK(sim_env_reset(e, 0, 0) == 0);
  const sim_scene *s = sim_env_scene(e);
  int n;
  const pred_atom *g = sim_env_goal(e, &n);
  const sim_object *stove = &s->obj[g[0].a.obj];
  CHECK(stove->burner_site >= 0);
  CHECK(s->m->site_rgba[4 * stove->burner_site + 3] <= 0);
  const double on = 1.0;
  set_qpos(e, 1, stove->jnt_qpos, &on);
  CHECK(s->m->site_rgba[4 * stove->burner_site + 3] > 0);
  sim_env_close(e);
}

int main(void) {
  test_libero_root();
  RUN(t_osc_step_x);
  RUN(t_osc_hold);
  RUN(t_gripper);
  RUN(t_deterministic);
  RUN(t_threads);
  RUN(t_step_split_matches_upstream_order);
  RUN(t_pred_on_object);
  RUN(t_pred_on_site);
  RUN(t_pred_on_zone);
  RUN(t_pred_in_open);
  RUN(t_pred_joints);
  RUN(t_burner_visual);
  return test_done();
}
