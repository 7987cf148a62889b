/* rdt sim collect: scripted experts and LIBERO demonstration files.
 *
 *   - every expert succeeds from init state 0 under the collection protocol
 *     (10 settle steps, success held 10 steps);
 *   - two demonstrations of task 0 (init states 3 and 4) written by
 *     sim_collect_task read back through the training reader
 *     (train/data_libero.h) and through HDF5 directly: LIBERO's attributes
 *     and shapes, rewards/dones, robot_states;
 *   - replaying each stored demonstration in a fresh env (reset to its
 *     init_index, the skipped settle no-ops, then the stored actions)
 *     reproduces states[t] before every action bit for bit, and the
 *     observation after actions[t] equals obs[t] as the training reader
 *     returns it (create_dataset.py's pairing), images included at the first
 *     and last step; the replay ends successful;
 *   - the command: --list, a task without an expert, a missing --out, --check.
 */
#include <hdf5.h>
#include <string.h>

#include "core/json.h"
#include "sim/collect.h"
#include "sim/expert.h"
#include "sim_helpers.h"
#include "train/data_libero.h"

#define TASK 0       /* KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet */
#define SIZE 32

/* ================================================================ HDF5 reads */

/* A whole float64 dataset (rows x cols) or NULL; *rows set. */
static double *h5_rows(hid_t f, const char *path, int cols, int *rows) {
  hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
  if (d < 0) return NULL;
  hid_t sp = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  double *v = NULL;
  if ((rank == 2 && (int)dims[1] == cols) || (rank == 1 && cols == 1)) {
    v = malloc(sizeof(double) * dims[0] * (size_t)cols);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) free(v), v = NULL;
    *rows = (int)dims[0];
  }
  H5Dclose(d);
  return v;
}

/* A string attribute (malloc'd) or NULL. */
static char *h5_str(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ty = H5Tcopy(H5T_C_S1);
  H5Tset_size(ty, H5T_VARIABLE);
  H5Tset_cset(ty, H5T_CSET_UTF8);
  char *s = NULL, *out = NULL;
  if (H5Aread(a, ty, &s) >= 0 && s) out = strdup(s);
  if (s) H5free_memory(s);
  H5Tclose(ty);
  H5Aclose(a);
  return out;
}

/* An integer attribute, or -1. */
static long long h5_int(hid_t obj, const char *name) {
  long long v = -1;
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = -1;
  H5Aclose(a);
  return v;
}

/* ================================================================ cases */

static sim_config cfg;

static void t_experts_init0(void) {
  sim_collect_opts o;
  sim_collect_opts_default(&o);
  CHECK(sim_expert_count() >= 2);
  for (int i = 0; i < sim_expert_count(); i++) {
    int task = sim_expert_task(i);
    CHECK(task >= 0 && sim_expert_has(task));
    sim_env *e = test_open(sim_task_name(task), 0);
    int r = sim_collect_episode(e, 0, sim_collect_seed(&o, 0), &o, NULL);
    CHECK_MSG(r == 1, "%s: expert from init state 0: %d (%s)", sim_task_name(task), r, rdt_error());
    /* the success lasted: the last hold + 1 steps were all successful */
    CHECK(sim_env_success(e));
    sim_env_close(e);
  }
  CHECK(!sim_expert_has(9));   /* put the black bowl on the plate: none */
  sim_env *e = test_open(sim_task_name(9), 0);
  CHECK(sim_expert_new(e, 0) == NULL && strstr(rdt_error(), "no scripted expert"));
  sim_env_close(e);
}

/* Replay demo i of the file (already read into arrays) in env e; compare. */
static void replay(sim_env *e, const rdt_libero_data *data, int ep, int init, const double *actions,
                   const double *states, int T, int skip) {
  int W = sim_env_info(e)->init_state_width;
  double *now = malloc(sizeof(double) * (size_t)W);
  uint8_t *buf = malloc((size_t)4 * SIZE * SIZE * 3);
  CHECK(sim_env_reset(e, init, 0) == 0);
  CHECK(test_noop(e, skip) == 0);
  for (int t = 0; t < T; t++) {
    sim_env_get_state(e, now, W);
    CHECK_MSG(!memcmp(now, states + (size_t)t * W, sizeof(double) * (size_t)W), "demo %d: states[%d] differs", ep, t);
    int images = t == 0 || t == T - 1;
    CHECK(sim_env_step(e, actions + 7 * t, images ? SIM_OBS_IMAGES : 0) == 0);
    const sim_obs *o = sim_env_obs(e);
    rdt_raw_obs r;
    CHECK(rdt_libero_raw_obs(data, ep, t, &r, buf) == 0);
    CHECK_MSG(!memcmp(r.joint_pos, o->joint_pos, sizeof r.joint_pos) &&
                  !memcmp(r.gripper_qpos, o->gripper_qpos, sizeof r.gripper_qpos) &&
                  !memcmp(r.eef_pos, o->eef_pos, sizeof r.eef_pos) && !memcmp(r.eef_ori, o->eef_axisangle, sizeof r.eef_ori),
              "demo %d: obs[%d] is not the observation after actions[%d]", ep, t, t);
    if (images) {
      CHECK(r.h == SIZE && r.w == SIZE);
      CHECK_MSG(!memcmp(r.image[RDT_CAM_AGENTVIEW][1], o->agentview, SIZE * SIZE * 3) &&
                    !memcmp(r.image[RDT_CAM_EYE_IN_HAND][1], o->eye_in_hand, SIZE * SIZE * 3),
                "demo %d: images of step %d differ", ep, t);
    }
  }
  CHECK_MSG(sim_env_success(e), "demo %d: the replay does not end successful", ep);
  free(now);
  free(buf);
}

/* The file's attributes, robot_states, rewards and dones; then the replay. */
static void check_demo(hid_t f, sim_env *e, const rdt_libero_data *data, int i, const sim_collect_opts *o,
                       int64_t *total) {
  char g[64], p[96];
  snprintf(g, sizeof g, "data/demo_%d", i);
  hid_t grp = H5Gopen2(f, g, H5P_DEFAULT);
  CHECK(grp >= 0);
  if (grp < 0) return;
  int W = sim_env_info(e)->init_state_width, T = 0, n = 0;
  snprintf(p, sizeof p, "%s/actions", g);
  double *act = h5_rows(f, p, 7, &T);
  snprintf(p, sizeof p, "%s/states", g);
  double *st = h5_rows(f, p, W, &n);
  CHECK(act && st && n == T && T > 20);
  CHECK(h5_int(grp, "num_samples") == T);
  CHECK(rdt_libero_episode(data, i)->length == T);
  *total += T;
  long long init = h5_int(grp, "init_index");
  CHECK_MSG(init == o->init_start + i, "demo %d: init_index %lld (the experts succeed from every init state)", i, init);
  /* init_state = states[0] */
  double *init_state = malloc(sizeof(double) * (size_t)W);
  hid_t a = H5Aopen(grp, "init_state", H5P_DEFAULT);
  CHECK(a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, init_state) >= 0);
  if (a >= 0) H5Aclose(a);
  CHECK(st && !memcmp(init_state, st, sizeof(double) * (size_t)W));
  /* rewards and dones: 0 ... 0 1; robot_states = gripper, eef pos, eef quat */
  int m = 0;
  snprintf(p, sizeof p, "%s/dones", g);
  double *dones = h5_rows(f, p, 1, &m);
  snprintf(p, sizeof p, "%s/rewards", g);
  double *rewards = h5_rows(f, p, 1, &m);
  CHECK(dones && rewards && m == T);
  for (int t = 0; dones && rewards && t < T; t++) CHECK(dones[t] == (t == T - 1) && rewards[t] == (t == T - 1));
  snprintf(p, sizeof p, "%s/robot_states", g);
  double *robot = h5_rows(f, p, 9, &m);
  snprintf(p, sizeof p, "%s/obs/ee_states", g);
  double *ee = h5_rows(f, p, 6, &m);
  uint8_t *buf = malloc((size_t)4 * SIZE * SIZE * 3);
  for (int t = 0; robot && ee && t < T; t += 7) {
    rdt_raw_obs r;
    CHECK(rdt_libero_raw_obs(data, i, t, &r, buf) == 0);
    CHECK(robot[9 * t] == r.gripper_qpos[0] && robot[9 * t + 1] == r.gripper_qpos[1] && robot[9 * t + 4] == r.eef_pos[2]);
    double qn = 0;
    for (int k = 5; k < 9; k++) qn += robot[9 * t + k] * robot[9 * t + k];
    CHECK_NEAR(qn, 1, 1e-9);
    CHECK(ee[6 * t] == r.eef_pos[0] && ee[6 * t + 5] == r.eef_ori[2]);
  }
  /* the first recorded actions are the settle no-ops after the skipped ones */
  CHECK(act && act[6] == -1 && act[0] == 0 && act[3] == 0);
  if (act && st && init >= 0) replay(e, data, i, (int)init, act, st, T, o->skip);
  free(act), free(st), free(init_state), free(dones), free(rewards), free(robot), free(ee), free(buf);
  H5Gclose(grp);
}

static void t_collect_roundtrip(void) {
  const char *dir = test_tmpdir("collect");
  sim_collect_opts o;
  sim_collect_opts_default(&o);
  o.demos = 2;
  o.hold = 2;   /* shorter files */
  o.seed = 7;
  o.init_start = 3;
  sim_collect_result r;
  CHECK_MSG(sim_collect_task(&cfg, TASK, dir, &o, &r) == 0, "%s", rdt_error());
  CHECK(r.successes == 2 && r.attempts >= 2 && r.steps > 40);
  char *name = sim_collect_file_name(TASK);
  CHECK(!strcmp(name, "KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet_demo.hdf5"));
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  CHECK(r.path && !strcmp(r.path, path));
  CHECK(test_sh("test -f '%s' && ! ls '%s'/*.tmp* >/dev/null 2>&1", path, dir) == 0);
  /* the training reader */
  rdt_libero_opts lo;
  rdt_libero_opts_init(&lo, 32);
  lo.skip_still = 0;   /* every step has its images */
  rdt_data_source src = {"demo", (char *)dir, 0};
  rdt_libero_data *data = rdt_libero_open(&src, 1, &lo);
  CHECK_MSG(data != NULL, "%s", rdt_error());
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CHECK(f >= 0);
  if (data && f >= 0) {
    CHECK(rdt_libero_num_episodes(data) == 2);
    CHECK(!strcmp(rdt_libero_episode(data, 0)->instruction, "close the top drawer of the cabinet"));
    hid_t g = H5Gopen2(f, "data", H5P_DEFAULT);
    char *conv = h5_str(g, "macros_image_convention"), *env_name = h5_str(g, "env_name");
    char *info = h5_str(g, "problem_info"), *bddl = h5_str(g, "bddl_file_content"), *args = h5_str(g, "env_args");
    CHECK(conv && !strcmp(conv, "opengl"));
    CHECK(env_name && !strcmp(env_name, "Libero_Kitchen_Tabletop_Manipulation"));
    rdt_json *j = info ? rdt_json_parse(info, strlen(info)) : NULL;
    const rdt_json *lang = j ? rdt_json_get(j, "language_instruction") : NULL;
    const rdt_json *problem = j ? rdt_json_get(j, "problem_name") : NULL;
    CHECK(lang && lang->string && !strcmp(lang->string, "close the top drawer of the cabinet"));
    CHECK(problem && problem->string && !strcmp(problem->string, "libero_kitchen_tabletop_manipulation"));
    CHECK(bddl && strstr(bddl, "(:language close the top drawer of the cabinet)"));
    rdt_json *ja = args ? rdt_json_parse(args, strlen(args)) : NULL;
    CHECK(ja && rdt_json_get(ja, "env_kwargs"));
    CHECK(h5_int(g, "num_demos") == 2);
    sim_env *e = sim_env_open(&cfg, TASK);   /* renders at SIZE, as collected */
    CHECK_MSG(e != NULL, "%s", rdt_error());
    int64_t total = 0;
    for (int i = 0; e && i < 2; i++) check_demo(f, e, data, i, &o, &total);
    CHECK(h5_int(g, "total") == total && total == r.steps);
    sim_env_close(e);
    rdt_json_free(j), rdt_json_free(ja);
    free(conv), free(env_name), free(info), free(bddl), free(args);
    H5Gclose(g);
  }
  if (f >= 0) H5Fclose(f);
  rdt_libero_close(data);
  free(name);
  free(r.path);
  if (!test_failures_) test_sh("rm -rf '%s'", dir);
}

static void t_cli(void) {
  char cmd[8192], out[16384];
  snprintf(cmd, sizeof cmd, "%s sim collect --list", test_rdt_bin());
  CHECK(test_capture(cmd, out, sizeof out) == 0);
  for (int i = 0; i < sim_expert_count(); i++) CHECK_MSG(strstr(out, sim_task_name(sim_expert_task(i))), "%s", out);
  snprintf(cmd, sizeof cmd, "%s sim collect --tasks 9 --out /nonexistent", test_rdt_bin());
  CHECK(test_capture(cmd, out, sizeof out) == 1 && strstr(out, "task 9") && strstr(out, "no scripted expert"));
  snprintf(cmd, sizeof cmd, "%s sim collect --tasks 0", test_rdt_bin());
  CHECK(test_capture(cmd, out, sizeof out) == 1 && strstr(out, "--out is required"));
  /* --check: physics only, JSON on stdout */
  setenv("RDT_LIBERO_ROOT", cfg.libero_root, 1);
  setenv("RDT_ROBOSUITE_ASSETS", cfg.robosuite_assets, 1);
  snprintf(cmd, sizeof cmd, "(%s sim collect --tasks KITCHEN_SCENE3_turn_on_the_stove --demos 1 --check 2>/dev/null)",
           test_rdt_bin());
  CHECK(test_capture(cmd, out, sizeof out) == 0);
  rdt_json *j = rdt_json_parse(out, strlen(out));
  const rdt_json *t = j ? rdt_json_at(rdt_json_get(j, "tasks"), 0) : NULL;
  const rdt_json *ok = t ? rdt_json_get(t, "successes") : NULL, *id = t ? rdt_json_get(t, "task") : NULL;
  CHECK_MSG(ok && ok->number == 1 && id && id->number == 20, "%s", out);
  rdt_json_free(j);
}

int main(void) {
  sim_config_default(&cfg);
  cfg.libero_root = test_libero_root();
  cfg.robosuite_assets = test_robosuite_assets();
  cfg.image_size = SIZE;
  RUN(t_experts_init0);
  RUN(t_collect_roundtrip);
  RUN(t_cli);
  return test_done();
}
