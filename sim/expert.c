/* sim/expert.c: scripted experts (see expert.h).
 *
 * Each expert is a small phase machine over one articulated part: a cabinet
 * drawer (closed by pushing) or the flat stove's knob (grasped and turned).
 * Targets are computed every step from the part's current pose, so the motion
 * follows the part as it moves.  The grip site is driven by a proportional
 * controller with a per-episode gain, speed limit and action noise; the hand
 * keeps its starting orientation, turned about the world z axis where a phase
 * asks for it.
 */
#include "sim/expert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <mujoco/mujoco.h>

#include "core/error.h"
#include "core/rng.h"

#define EXPERT_POS_SCALE 0.05    /* OSC_POSE: metres per unit of action */
#define EXPERT_ROT_SCALE 0.5     /* radians per unit of action */
#define EXPERT_PHASE_LIMIT 150   /* steps in one phase before the expert moves on */

typedef int (*expert_step_fn)(sim_expert *x, double a[SIM_ACTION_DIM]);

/* One task's expert: the part it works on and its phase machine. */
typedef struct {
  const char *task;          /* libero_90 task name */
  const char *site;          /* drawer: its region site; stove: unused */
  const char *body;          /* stove: the knob body; drawer: unused */
  const char *joint;         /* the part's joint */
  double goal;               /* knob: the joint value to reach */
  expert_step_fn step;
  const char *const *phases; /* phase names, NULL-terminated */
} expert_def;

struct sim_expert {
  sim_env *env;
  const expert_def *def;
  rdt_rng rng;
  int started;
  int phase, phase_steps;
  double gain, vmax, noise;  /* per-episode speed and action noise */
  double r[6];               /* per-episode offsets in [0, 1) */
  double hand0[4];           /* hand orientation (w x y z) at the first call */
  double yaw;                /* wanted turn of the hand about world z from hand0 */
  double yaw_phase;          /* yaw when the current phase began */
  double turn;               /* knob: how far to turn the hand (signed) */
  double hold[3];            /* the grip site's position when the current phase began */
};

static const double up[3] = {0, 0, 1};

/* ------------------------------------------------------------------ motion */

/* Drive the grip site toward target (proportional, speed-limited, plus the
 * episode's noise) and the hand toward hand0 turned by x->yaw; gripper
 * command g.  Returns the distance left to the target. */
static double expert_move(sim_expert *x, const double target[3], double g, double a[SIM_ACTION_DIM]) {
  const sim_obs *o = sim_env_obs(x->env);
  double d[3], dist = 0, norm = 0;
  for (int k = 0; k < 3; k++) {
    d[k] = target[k] - o->eef_pos[k];
    dist += d[k] * d[k];
    a[k] = x->gain * d[k] / EXPERT_POS_SCALE;
    norm += a[k] * a[k];
  }
  norm = sqrt(norm);
  for (int k = 0; k < 3; k++) {
    if (norm > x->vmax) a[k] *= x->vmax / norm;
    a[k] += x->noise * rdt_rng_normal(&x->rng);
  }
  /* orientation error as a world-frame rotation vector: want = Rz(yaw) hand0 */
  double turn[4], want[4], cur[4], inv[4], err[4], vec[3];
  double axis_z[3] = {0, 0, 1};
  mju_axisAngle2Quat(turn, axis_z, x->yaw);
  mju_mulQuat(want, turn, x->hand0);
  cur[0] = o->eef_quat[3], cur[1] = o->eef_quat[0], cur[2] = o->eef_quat[1], cur[3] = o->eef_quat[2];
  mju_negQuat(inv, cur);
  mju_mulQuat(err, want, inv);
  if (err[0] < 0)
    for (int k = 0; k < 4; k++) err[k] = -err[k];
  mju_quat2Vel(vec, err, 1);
  for (int k = 0; k < 3; k++) a[3 + k] = fmax(-1, fmin(1, 1.5 * vec[k] / EXPERT_ROT_SCALE));
  for (int k = 0; k < 3; k++) a[k] = fmax(-1, fmin(1, a[k]));
  a[6] = g;
  return sqrt(dist);
}

/* Turn the wanted hand yaw toward goal by at most rate per step. */
static void expert_turn(sim_expert *x, double goal, double rate) {
  x->yaw += fmax(-rate, fmin(rate, goal - x->yaw));
}

/* p + s u (3-vectors). */
static void expert_axpy(double out[3], const double p[3], double s, const double u[3]) {
  for (int k = 0; k < 3; k++) out[k] = p[k] + s * u[k];
}

/* Go to the next phase. */
static void expert_next(sim_expert *x) {
  x->phase++;
  x->phase_steps = -1;   /* incremented to 0 at the end of this step */
  x->yaw_phase = x->yaw;
  memcpy(x->hold, sim_env_obs(x->env)->eef_pos, sizeof x->hold);
}

/* A phase is over when its motion is done or it has run too long. */
static int expert_phase_over(const sim_expert *x, int done) { return done || x->phase_steps >= EXPERT_PHASE_LIMIT; }

/* ------------------------------------------------------------------ drawers */

/* Handle bar of a wooden cabinet drawer, from its region site: 0.113 m
 * along the opening direction from the site centre, at the site's height
 * (wooden_cabinet.xml: region sites at y 0.011, handle bars' contact boxes
 * at y -0.109 to -0.094 in the drawer frame, which opens towards -y). */
#define DRAWER_HANDLE_OFFSET 0.113

typedef struct {
  double handle[3];   /* handle bar centre */
  double u[3];        /* opening direction (horizontal, unit) */
  double w[3];        /* along the bar (horizontal, unit) */
  double q;           /* slide value: open < -0.14, closed > 0 */
} drawer_state;

/* The drawer's handle, directions and joint value now. */
static int drawer_read(const sim_expert *x, drawer_state *s) {
  double site[3], axis[3];
  if (sim_env_site_pose(x->env, x->def->site, site, NULL) || sim_env_joint(x->env, x->def->joint, &s->q, axis)) return -1;
  double n = hypot(axis[0], axis[1]);
  RDT_CHECK(n > 0.5, "%s: joint %s is not horizontal", sim_env_info(x->env)->name, x->def->joint);
  s->u[0] = -axis[0] / n, s->u[1] = -axis[1] / n, s->u[2] = 0;   /* the slide opens towards -axis */
  s->w[0] = -s->u[1], s->w[1] = s->u[0], s->w[2] = 0;
  expert_axpy(s->handle, site, DRAWER_HANDLE_OFFSET, s->u);
  return 0;
}

static const char *const close_phases[] = {"approach", "lower", "push", "back_off", "done", NULL};

/* Close an open drawer: turn the hand a quarter turn (its wide side, along
 * the finger axis, would catch the cabinet), go in front of the handle, lower,
 * push the drawer shut, back off. */
static int drawer_close_step(sim_expert *x, double a[SIM_ACTION_DIM]) {
  drawer_state s;
  if (drawer_read(x, &s)) return -1;
  double front = 0.06 + 0.04 * x->r[0], side = 0.05 * (x->r[1] - 0.5), height = -0.01 + 0.025 * x->r[2];
  double t[3];
  expert_axpy(t, s.handle, side, s.w);
  switch (x->phase) {
  case 0:   /* above and in front of the handle, gripper closed */
    expert_turn(x, M_PI / 2 + 0.3 * (x->r[4] - 0.5), 0.12);
    expert_axpy(t, t, front, s.u);
    expert_axpy(t, t, 0.05 + 0.05 * x->r[3], up);
    if (expert_phase_over(x, expert_move(x, t, 1, a) < 0.02 && x->yaw > 1.2)) expert_next(x);
    break;
  case 1:   /* down to the handle's height */
    expert_axpy(t, t, front, s.u);
    expert_axpy(t, t, height, up);
    if (expert_phase_over(x, expert_move(x, t, 1, a) < 0.012)) expert_next(x);
    break;
  case 2:   /* push along -u, the target a little beyond the handle */
    expert_axpy(t, t, -0.06, s.u);
    expert_axpy(t, t, height, up);
    expert_move(x, t, 1, a);
    if (expert_phase_over(x, s.q > 0.004)) expert_next(x);
    break;
  case 3:   /* back off, up and away */
    expert_axpy(t, s.handle, 0.10, s.u);
    expert_axpy(t, t, 0.08, up);
    if (expert_phase_over(x, expert_move(x, t, 1, a) < 0.02)) expert_next(x);
    break;
  default:  /* hold */
    expert_move(x, x->hold, 1, a);
  }
  return 0;
}

/* ------------------------------------------------------------------ stove knob */

#define KNOB_GRASP_HEIGHT 0.030  /* grip site above the knob body: mid-height of its fin */
#define KNOB_OVERTURN 0.25       /* the hand turns this much beyond the goal angle (the grip slips) */

static const char *const knob_phases[] = {"approach", "lower", "grasp", "turn", "release", "lift", "done", NULL};

/* Turn the stove's knob to x->def->goal (on: q >= 0.5, off: q < 0): grasp its
 * fin from above (the hand turned by the knob's angle, so the fingers close
 * across the fin), turn the hand about the vertical, slower near the goal;
 * on: let go and lift; off: keep holding (the knob springs back off its stop). */
static int knob_step(sim_expert *x, double a[SIM_ACTION_DIM]) {
  double c[3], q;
  if (sim_env_body_pose(x->env, x->def->body, c, NULL) || sim_env_joint(x->env, x->def->joint, &q, NULL)) return -1;
  double t[3] = {c[0] + 0.008 * (x->r[0] - 0.5), c[1] + 0.008 * (x->r[1] - 0.5), c[2]};
  switch (x->phase) {
  case 0:   /* above the knob, gripper open, fingers across the fin */
    expert_turn(x, q + 0.1 * (x->r[2] - 0.5), 0.12);
    t[2] += 0.09 + 0.05 * x->r[3];
    if (expert_phase_over(x, expert_move(x, t, -1, a) < 0.012 && fabs(x->yaw - q) < 0.1)) expert_next(x);
    break;
  case 1:   /* down around the fin */
    t[2] += KNOB_GRASP_HEIGHT + 0.006 * (x->r[4] - 0.5);
    if (expert_phase_over(x, expert_move(x, t, -1, a) < 0.005)) expert_next(x);
    break;
  case 2:   /* close on the fin */
    expert_move(x, x->hold, 1, a);
    if (expert_phase_over(x, x->phase_steps >= 10)) {
      expert_next(x);
      x->turn = x->def->goal - q + copysign(KNOB_OVERTURN, x->def->goal - q);
    }
    break;
  case 3: { /* turn, slower as the knob nears the goal */
    double left = (x->def->goal - q) * (x->turn > 0 ? 1 : -1);
    expert_turn(x, x->yaw_phase + x->turn, fmin(0.06 + 0.04 * x->r[5], 0.5 * fmax(left, 0) + 0.015));
    expert_move(x, x->hold, 1, a);
    if (expert_phase_over(x, left < (x->turn > 0 ? -0.15 : -0.001) || x->phase_steps > 80)) {
      if (x->turn < 0) x->phase = 5;   /* off: keep holding the knob at its stop, which is barely below 0 */
      expert_next(x);
    }
    break;
  }
  case 4:   /* let go */
    expert_move(x, x->hold, -1, a);
    if (expert_phase_over(x, x->phase_steps >= 8)) expert_next(x);
    break;
  case 5:   /* lift */
    expert_axpy(t, x->hold, 0.10, up);
    if (expert_phase_over(x, expert_move(x, t, -1, a) < 0.02)) expert_next(x);
    break;
  default:
    expert_move(x, x->hold, x->turn > 0 ? -1 : 1, a);
  }
  return 0;
}

/* ------------------------------------------------------------------ the table of experts */

static const expert_def experts[] = {
    {"KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet", "wooden_cabinet_1_top_region", NULL,
     "wooden_cabinet_1_top_level", 0, drawer_close_step, close_phases},
    {"KITCHEN_SCENE3_turn_on_the_stove", NULL, "flat_stove_1_button", "flat_stove_1_button", 0.5, knob_step,
     knob_phases},
    {"KITCHEN_SCENE8_turn_off_the_stove", NULL, "flat_stove_1_button", "flat_stove_1_button", -0.001, knob_step,
     knob_phases},
};
#define EXPERT_COUNT ((int)(sizeof experts / sizeof *experts))

int sim_expert_count(void) { return EXPERT_COUNT; }

int sim_expert_task(int i) { return i >= 0 && i < EXPERT_COUNT ? sim_task_find(experts[i].task) : -1; }

/* The expert of a task, or NULL. */
static const expert_def *expert_find(int task_index) {
  const char *name = sim_task_name(task_index);
  for (int i = 0; name && i < EXPERT_COUNT; i++)
    if (!strcmp(experts[i].task, name)) return &experts[i];
  return NULL;
}

int sim_expert_has(int task_index) { return expert_find(task_index) != NULL; }

sim_expert *sim_expert_new(sim_env *e, uint64_t seed) {
  const sim_info *in = sim_env_info(e);
  const expert_def *def = expert_find(in->task_index);
  if (!def) return rdt_fail("%s: no scripted expert for this task (rdt sim collect --list shows the tasks that have one)", in->name), NULL;
  double p[3], v;
  if ((def->site && sim_env_site_pose(e, def->site, p, NULL)) || (def->body && sim_env_body_pose(e, def->body, p, NULL)) ||
      sim_env_joint(e, def->joint, &v, NULL))
    return NULL;
  sim_expert *x = rdt_calloc(1, sizeof *x);
  x->env = e;
  x->def = def;
  rdt_rng_seed(&x->rng, seed, (uint64_t)in->task_index);
  x->gain = 1.5 + 1.5 * rdt_rng_uniform(&x->rng);
  x->vmax = 0.6 + 0.4 * rdt_rng_uniform(&x->rng);
  x->noise = 0.05 * rdt_rng_uniform(&x->rng);
  for (int k = 0; k < 6; k++) x->r[k] = rdt_rng_uniform(&x->rng);
  return x;
}

void sim_expert_free(sim_expert *x) { free(x); }

int sim_expert_act(sim_expert *x, double action[SIM_ACTION_DIM]) {
  if (!x->started) {
    const double *q = sim_env_obs(x->env)->eef_quat;
    x->hand0[0] = q[3], x->hand0[1] = q[0], x->hand0[2] = q[1], x->hand0[3] = q[2];
    memcpy(x->hold, sim_env_obs(x->env)->eef_pos, sizeof x->hold);
    x->started = 1;
  }
  if (x->def->step(x, action)) return -1;
  x->phase_steps++;
  return 0;
}

const char *sim_expert_phase(const sim_expert *x) {
  int n = 0;
  while (x->def->phases[n]) n++;
  return x->def->phases[x->phase < n ? x->phase : n - 1];
}
