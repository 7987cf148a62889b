/* sim/env.c: LIBERO-90 tasks as envs (see env.h).
 *
 * The step is robosuite's MujocoEnv.step with LIBERO's additions, written
 * with one mj_step1/mj_step2 pair per substep: upstream calls mj_forward
 * (env), mj_forward again (controller update), sets ctrl, then mj_step, whose
 * own forward recomputes the same position/velocity stage; mj_step1 computes
 * that stage once, the two forwards' constraint solves are repeated (they set
 * the warm start), the controller reads, mj_step2 finishes the step.  The data
 * after each substep is bit-identical to upstream's order (tested).
 */
#include "sim/env.h"
#include "sim/env_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/torchzip.h"
#include "sim/osc.h"
#include "sim/predicates.h"
#include "sim/render.h"
#include "sim/scene.h"

#define SIM_SUBSTEPS 25          /* control_timestep 0.05 / model_timestep 0.002 */
#define SIM_MODEL_DT 0.002
#define SIM_OBS_PERIOD (1.0 / 20) /* observables sample at control_freq */

struct sim_env {
  sim_info info;
  sim_config cfg;
  sim_scene *scene;
  mjModel *m;
  mjData *d;
  pred_atom *goal;
  int ngoal;
  osc ctl, ctl0;                      /* controller, and the one robosuite builds at reset */
  int ctl_fresh;                      /* its first update() is skipped (new_update False) */
  double *init_states;                /* rows x width */
  float *site_alpha0;                 /* site alphas after compiling, restored at reset */
  sim_obs obs;
  uint8_t *images[2];
  double obs_time;                    /* robosuite Observable timer */
  int obs_sampled;
  int success, steps;
  sim_renderer *renderer;
  int renderer_size;
  int warned[mjNWARNING];
};

/* ------------------------------------------------------------------ config and paths */

void sim_config_default(sim_config *c) {
  memset(c, 0, sizeof *c);
  c->image_size = 128;
}

/* MuJoCo warnings go through rdt's log instead of stdout and MUJOCO_LOG.TXT. */
static void sim_mujoco_warning(const char *msg) { rdt_warn("MuJoCo: %s", msg); }
static pthread_once_t sim_hooks_once = PTHREAD_ONCE_INIT;
static void sim_install_hooks(void) { mju_user_warning = sim_mujoco_warning; }

/* Find the data folders: explicit, env var, or robosuite next to LIBERO. */
static int sim_find_data(const sim_config *c, char **libero, char **robosuite) {
  const char *lr = c->libero_root && *c->libero_root ? c->libero_root : getenv("RDT_LIBERO_ROOT");
  if (!lr || !*lr)
    return rdt_fail("LIBERO data not found: set RDT_LIBERO_ROOT (or --libero_root) to the LIBERO package "
                    "folder that holds assets/, bddl_files/ and init_files/");
  static const char *need[] = {"assets", "bddl_files/libero_90", "init_files/libero_90"};
  for (int i = 0; i < 3; i++) {
    char *p = rdt_path_join(lr, need[i]);
    int ok = rdt_is_dir(p);
    if (!ok) {
      rdt_fail("LIBERO data not found: %s is not a folder; set RDT_LIBERO_ROOT (or --libero_root) to the "
               "LIBERO package folder that holds assets/, bddl_files/ and init_files/", p);
      free(p);
      return -1;
    }
    free(p);
  }
  const char *rs = c->robosuite_assets && *c->robosuite_assets ? c->robosuite_assets : getenv("RDT_ROBOSUITE_ASSETS");
  char *guess = rdt_path_join(lr, "../robosuite/models/assets");
  char *probe = rdt_path_join(rs && *rs ? rs : guess, "robots/panda/robot.xml");
  int ok = rdt_is_file(probe);
  if (!ok) {
    if (rs && *rs)
      rdt_fail("robosuite assets not found: %s does not exist; set RDT_ROBOSUITE_ASSETS (or --robosuite_assets) "
               "to robosuite's models/assets folder", probe);
    else
      rdt_fail("robosuite assets not found: RDT_ROBOSUITE_ASSETS is unset and %s does not exist; set "
               "RDT_ROBOSUITE_ASSETS (or --robosuite_assets) to robosuite's models/assets folder", probe);
  }
  free(probe);
  if (!ok) {
    free(guess);
    return -1;
  }
  *libero = rdt_strdup(lr);
  *robosuite = rs && *rs ? rdt_strdup(rs) : guess;
  if (rs && *rs) free(guess);
  return 0;
}

/* Read a task's .pruned_init (before composing, so a bad file fails first). */
static int sim_read_init(sim_env *e, const char *root, rdt_tensor *t) {
  char rel[512];
  snprintf(rel, sizeof rel, "init_files/libero_90/%s.pruned_init", e->info.name);
  char *path = rdt_path_join(root, rel);
  int rc = rdt_torch_load_numpy(path, t);
  if (!rc && (t->ndim != 2 || t->dtype != RDT_F64 || t->shape[0] < 1)) {
    rc = rdt_fail("%s: expected a 2-d float64 array of init states, found %s with %d dims", path,
                  rdt_dtype_name(t->dtype), t->ndim);
    free(t->data);
  }
  free(path);
  return rc;
}

/* Keep the init states if their rows are [time, qpos, qvel] of this model. */
static int sim_take_init(sim_env *e, rdt_tensor *t) {
  int width = 1 + e->m->nq + e->m->nv;
  if (t->shape[1] != width) {
    rdt_fail("%s.pruned_init: rows have %lld values, the composed scene needs 1+nq+nv = %d", e->info.name,
             (long long)t->shape[1], width);
    free(t->data);
    return -1;
  }
  e->init_states = t->data;
  e->info.num_init_states = (int)t->shape[0];
  e->info.init_state_width = width;
  return 0;
}

/* ------------------------------------------------------------------ open / close */

/* The controller robosuite builds at reset (Robot.reset -> _load_controller):
 * the fresh model with the arm at init_qpos, mj_forward, update(); goal = that
 * grip-site pose, nullspace target init_qpos.  Its cached state (pose,
 * Jacobians, mass matrix, zero velocities) is what the first substep of the
 * first step uses, since update() then finds new_update False. */
static void sim_controller_at_reset(sim_env *e) {
  sim_scene *s = e->scene;
  mj_resetData(e->m, e->d);
  for (int j = 0; j < 7; j++) e->d->qpos[s->arm_qpos[j]] = s->init_qpos[j];
  mj_forward(e->m, e->d);
  osc_update(&e->ctl, e->m, e->d);
  osc_reset(&e->ctl, s->init_qpos);
  e->ctl0 = e->ctl;
}

sim_env *sim_env_open(const sim_config *cfg, int task_index) {
  pthread_once(&sim_hooks_once, sim_install_hooks);
  if (task_index < 0 || task_index >= SIM_NUM_TASKS)
    return rdt_fail("task index %d out of range (libero_90 has %d tasks, 0..%d)", task_index, SIM_NUM_TASKS,
                    SIM_NUM_TASKS - 1), NULL;
  sim_env *e = rdt_calloc(1, sizeof *e);
  e->cfg = *cfg;
  if (e->cfg.image_size <= 0) e->cfg.image_size = 128;
  char *root = NULL, *rs = NULL;
  if (sim_find_data(cfg, &root, &rs)) {
    free(e);
    return NULL;
  }
  e->cfg.libero_root = e->cfg.robosuite_assets = NULL;
  e->info.task_index = task_index;
  e->info.name = sim_task_name(task_index);
  e->info.instruction = sim_task_instruction(task_index);
  char rel[512];
  snprintf(rel, sizeof rel, "bddl_files/libero_90/%s.bddl", e->info.name);
  char *bddl = rdt_path_join(root, rel), *assets = rdt_path_join(root, "assets");
  rdt_tensor init;
  int rc = sim_read_init(e, root, &init);
  if (!rc) {
    e->scene = sim_scene_build(assets, rs, bddl, cfg->physics_only ? SIM_SCENE_NO_TEXTURES : 0, NULL);
    if (!e->scene) free(init.data);
  }
  free(bddl);
  free(assets);
  free(rs);
  free(root);
  if (rc || !e->scene || (e->m = e->scene->m, sim_take_init(e, &init)) || pred_compile(e->scene, &e->goal, &e->ngoal)) {
    sim_env_close(e);
    return NULL;
  }
  e->d = mj_makeData(e->m);
  sim_scene *s = e->scene;
  osc_links l;
  memcpy(l.qpos, s->arm_qpos, sizeof l.qpos);
  memcpy(l.dof, s->arm_dof, sizeof l.dof);
  memcpy(l.act, s->arm_act, sizeof l.act);
  memcpy(l.grip_act, s->grip_act, sizeof l.grip_act);
  l.site = s->grip_site;
  osc_init(&e->ctl, e->m, &l);
  sim_controller_at_reset(e);
  e->site_alpha0 = rdt_malloc(sizeof(float) * (size_t)(e->m->nsite + 1));
  for (int i = 0; i < e->m->nsite; i++) e->site_alpha0[i] = e->m->site_rgba[4 * i + 3];
  e->info.bddl_language = s->bddl->language;
  e->info.problem_class = s->bddl->problem;
  e->info.goal_text = s->bddl->goal_text;
  e->info.num_goal_atoms = e->ngoal;
  e->info.nq = e->m->nq, e->info.nv = e->m->nv, e->info.nu = e->m->nu;
  e->obs.image_size = e->cfg.image_size;
  return e;
}

void sim_env_close(sim_env *e) {
  if (!e) return;
  sim_renderer_free(e->renderer);
  osc_free(&e->ctl);
  if (e->d) mj_deleteData(e->d);
  sim_scene_free(e->scene);
  free(e->goal);
  free(e->init_states);
  free(e->site_alpha0);
  free(e->images[0]);
  free(e->images[1]);
  free(e);
}

const sim_info *sim_env_info(const sim_env *e) { return &e->info; }
const sim_obs *sim_env_obs(const sim_env *e) { return &e->obs; }
int sim_env_success(const sim_env *e) { return e->success; }
int sim_env_steps(const sim_env *e) { return e->steps; }

/* ------------------------------------------------------------------ observations */

/* The env's renderer, (re)made in this thread for images up to size. */
static sim_renderer *sim_get_renderer(sim_env *e, int size) {
  if (e->cfg.physics_only) return rdt_fail("%s: opened physics-only (no textures): cannot render", e->info.name), NULL;
  if (e->renderer && e->renderer_size >= size) return e->renderer;
  sim_renderer_free(e->renderer);
  e->renderer = sim_renderer_new(e->m, size, e->cfg.fast_render);
  e->renderer_size = e->renderer ? size : 0;
  return e->renderer;
}

/* Render both cameras into the env's image buffers. */
static int sim_render_cameras(sim_env *e) {
  int n = e->cfg.image_size;
  if (!sim_get_renderer(e, n)) return -1;
  for (int i = 0; i < 2; i++) {
    if (!e->images[i]) e->images[i] = rdt_malloc((size_t)n * n * 3);
    int cam = i ? e->scene->cam_eye : e->scene->cam_agentview;
    if (sim_renderer_draw(e->renderer, e->m, e->d, cam, n, e->images[i])) return -1;
  }
  e->obs.agentview = e->images[0];
  e->obs.eye_in_hand = e->images[1];
  return 0;
}

/* Sample every observable from the data as it is now (robosuite sensors). */
static int sim_capture(sim_env *e, int flags) {
  const sim_scene *s = e->scene;
  const mjData *d = e->d;
  memcpy(e->obs.eef_pos, d->site_xpos + 3 * s->grip_site, sizeof e->obs.eef_pos);
  const mjtNum *q = d->xquat + 4 * s->hand_body;
  e->obs.eef_quat[0] = q[1], e->obs.eef_quat[1] = q[2], e->obs.eef_quat[2] = q[3], e->obs.eef_quat[3] = q[0];
  osc_quat2axisangle(e->obs.eef_quat, e->obs.eef_axisangle);
  osc_quat2euler(e->obs.eef_quat, e->obs.eef_euler);
  for (int i = 0; i < 2; i++) e->obs.gripper_qpos[i] = d->qpos[s->grip_qpos[i]];
  for (int j = 0; j < 7; j++) e->obs.joint_pos[j] = d->qpos[s->arm_qpos[j]];
  e->obs.agentview = e->obs.eye_in_hand = NULL;
  return flags & SIM_OBS_IMAGES ? sim_render_cameras(e) : 0;
}

/* Observable.update for one model timestep (all observables share the 20 Hz
 * rate and zero delay): sample when due, reset the timer each period. */
static int sim_observe_tick(sim_env *e, int flags, int force) {
  int rc = 0;
  e->obs_time += SIM_MODEL_DT;
  if ((!e->obs_sampled && SIM_OBS_PERIOD - 0.0 >= e->obs_time) || force) {
    rc = sim_capture(e, flags);
    e->obs_sampled = 1;
  }
  if (e->obs_time >= SIM_OBS_PERIOD) {
    if (!e->obs_sampled) rc = sim_capture(e, flags);
    e->obs_time = fmod(e->obs_time, SIM_OBS_PERIOD);
    e->obs_sampled = 0;
  }
  return rc;
}

/* ------------------------------------------------------------------ physics */

/* Fail on a new NaN/divergence warning; log other new warnings once. */
static int sim_check_warnings(sim_env *e) {
  for (int i = 0; i < mjNWARNING; i++) {
    int n = e->d->warning[i].number;
    if (n <= e->warned[i]) continue;
    e->warned[i] = n;
    if (i >= mjWARN_BADQPOS && i <= mjWARN_BADCTRL)
      return rdt_fail("%s: physics diverged at step %d (MuJoCo warning %d: bad qpos/qvel/qacc/ctrl)",
                      e->info.name, e->steps, i);
    rdt_warn("%s: MuJoCo warning %d at step %d (contact/constraint buffer full or singular inertia)",
             e->info.name, i, e->steps);
  }
  return 0;
}

/* After a state change: success and LIBERO's _post_process. */
static void sim_post(sim_env *e) {
  e->success = pred_goal(e->scene, e->d, e->goal, e->ngoal);
  pred_update_visuals(e->scene, e->d);
}

int sim_env_reset(sim_env *e, int k, int flags) {
  RDT_CHECK(k >= 0 && k < e->info.num_init_states, "%s: init state %d out of range (0..%d)", e->info.name, k,
            e->info.num_init_states - 1);
  mj_resetData(e->m, e->d);
  memset(e->warned, 0, sizeof e->warned);
  for (int i = 0; i < e->m->nsite; i++) e->m->site_rgba[4 * i + 3] = e->site_alpha0[i];
  double *scratch = e->ctl.scratch;
  e->ctl = e->ctl0;
  e->ctl.scratch = scratch;
  e->ctl_fresh = 1;
  e->steps = 0;
  /* reset(): observables reset and force-updated; set_init_state(): state,
   * forward, success, _post_process, forced update */
  e->obs_time = 0;
  e->obs_sampled = 0;
  if (sim_observe_tick(e, 0, 1)) return -1;
  return sim_env_set_state(e, e->init_states + (size_t)k * e->info.init_state_width, e->info.init_state_width) ||
         sim_observe_tick(e, flags, 1);
}

int sim_env_set_state(sim_env *e, const double *flat, int n) {
  RDT_CHECK(n == e->info.init_state_width, "%s: state has %d values, expected 1+nq+nv = %d", e->info.name, n,
            e->info.init_state_width);
  e->d->time = flat[0];
  memcpy(e->d->qpos, flat + 1, sizeof(double) * (size_t)e->m->nq);
  memcpy(e->d->qvel, flat + 1 + e->m->nq, sizeof(double) * (size_t)e->m->nv);
  mj_forward(e->m, e->d);
  sim_post(e);
  return sim_capture(e, 0);
}

int sim_env_get_state(const sim_env *e, double *flat, int n) {
  RDT_CHECK(n == e->info.init_state_width, "%s: state buffer has %d values, expected %d", e->info.name, n,
            e->info.init_state_width);
  flat[0] = e->d->time;
  memcpy(flat + 1, e->d->qpos, sizeof(double) * (size_t)e->m->nq);
  memcpy(flat + 1 + e->m->nq, e->d->qvel, sizeof(double) * (size_t)e->m->nv);
  return 0;
}

int sim_env_step(sim_env *e, const double action[SIM_ACTION_DIM], int flags) {
  mjModel *m = e->m;
  mjData *d = e->d;
  osc *c = &e->ctl;
  for (int k = 0; k < SIM_SUBSTEPS; k++) {
    /* upstream: mj_forward (env), mj_forward (controller update, skipped right
     * after reset), controller, mj_step.  The position/velocity stages are the
     * same each time, so they run once; the constraint solve is repeated,
     * because every forward saves its result as the next solve's warm start. */
    mj_step1(m, d);
    for (int r = 0; r < (e->ctl_fresh ? 1 : 2); r++) mj_forwardSkip(m, d, mjSTAGE_VEL, 1);
    if (!e->ctl_fresh) osc_update(c, m, d);
    e->ctl_fresh = 0;
    if (k == 0) osc_set_goal(c, action);
    osc_torques(c, m, d);
    osc_gripper(c, m, d, action[6]);
    for (int j = 0; j < 7; j++) d->ctrl[c->l.act[j]] = c->torques[j];
    mj_step2(m, d);
    if (sim_observe_tick(e, flags, 0)) return -1;
  }
  e->steps++;
  sim_post(e);
  return sim_check_warnings(e);
}

int sim_env_render(sim_env *e, const char *camera, int size, uint8_t *rgb) {
  int cam = mj_name2id(e->m, mjOBJ_CAMERA, camera);
  RDT_CHECK(cam >= 0, "%s: no camera named %s (try agentview, robot0_eye_in_hand, frontview)", e->info.name, camera);
  if (!sim_get_renderer(e, size)) return -1;
  return sim_renderer_draw(e->renderer, e->m, e->d, cam, size, rgb);
}

/* ------------------------------------------------------------------ named parts */

/* Position and rotation of a body or site by name. */
static int sim_named_pose(const sim_env *e, int type, const char *what, const char *name, double pos[3],
                          double mat[9]) {
  int id = mj_name2id(e->m, type, name);
  RDT_CHECK(id >= 0, "%s: no %s named %s", e->info.name, what, name);
  const mjtNum *p = type == mjOBJ_BODY ? e->d->xpos : e->d->site_xpos;
  const mjtNum *r = type == mjOBJ_BODY ? e->d->xmat : e->d->site_xmat;
  memcpy(pos, p + 3 * id, 3 * sizeof(double));
  if (mat) memcpy(mat, r + 9 * id, 9 * sizeof(double));
  return 0;
}

int sim_env_body_pose(const sim_env *e, const char *name, double pos[3], double mat[9]) {
  return sim_named_pose(e, mjOBJ_BODY, "body", name, pos, mat);
}

int sim_env_site_pose(const sim_env *e, const char *name, double pos[3], double mat[9]) {
  return sim_named_pose(e, mjOBJ_SITE, "site", name, pos, mat);
}

int sim_env_joint(const sim_env *e, const char *name, double *value, double axis[3]) {
  int id = mj_name2id(e->m, mjOBJ_JOINT, name);
  RDT_CHECK(id >= 0, "%s: no joint named %s", e->info.name, name);
  int type = e->m->jnt_type[id];
  RDT_CHECK(type == mjJNT_HINGE || type == mjJNT_SLIDE, "%s: joint %s is not a hinge or slide", e->info.name, name);
  *value = e->d->qpos[e->m->jnt_qposadr[id]];
  if (axis) memcpy(axis, e->d->xaxis + 3 * id, 3 * sizeof(double));
  return 0;
}

/* Flip rows in place. */
void sim_image_flip_rows(uint8_t *rgb, int height, int width) {
  size_t row = (size_t)width * 3;
  uint8_t *tmp = rdt_malloc(row);
  for (int y = 0; y < height / 2; y++) {
    uint8_t *a = rgb + (size_t)y * row, *b = rgb + (size_t)(height - 1 - y) * row;
    memcpy(tmp, a, row);
    memcpy(a, b, row);
    memcpy(b, tmp, row);
  }
  free(tmp);
}

/* ------------------------------------------------------------------ internal access */

const sim_scene *sim_env_scene(const sim_env *e) { return e->scene; }
mjData *sim_env_data(sim_env *e) { return e->d; }
const pred_atom *sim_env_goal(const sim_env *e, int *n) {
  *n = e->ngoal;
  return e->goal;
}
