/* Training and evaluation feed the policy identically.  The test runs task 0
 * in the simulator for a few steps and (1) writes what it observed as a LIBERO
 * demonstration file, exactly as LIBERO's dataset script stores it (joint
 * states, gripper states, ee_pos, ee_ori = axis-angle of the eef quaternion,
 * both camera images as rendered, bottom row first), which the training
 * reader turns into samples; (2) builds the evaluation requests from the
 * same simulator observations through the eval path (eval_raw_obs with the
 * frame history the episode loop keeps, eval_policy_prepare).  Every step's
 * state, state mask, six preprocessed images and image masks must be equal
 * bit for bit, and the instruction the evaluator encodes must be the one the
 * training samples carry. */
#include "eval/policy.h"
#include "train/data_libero.h"
#include "train/train_fixture.h"   /* fx_2d, fx_frames, fx_str_attr: HDF5 writing as h5py does */
#include "eval_fixture.h"

enum { T = 4, S = 48, TASK = 0 };

/* What the simulator showed at each step. */
typedef struct {
  double act[T * 7], jnt[T * 7], grp[T * 2], pos[T * 3], ori[T * 3];
  uint8_t agent[T * S * S * 3], wrist[T * S * S * 3];
  sim_obs obs[T];
} recording;

static void record(sim_env *e, recording *r) {
  static const double noop[7] = {0, 0, 0, 0, 0, 0, -1};
  CHECK(sim_env_reset(e, 3, 0) == 0);
  for (int i = 0; i < 5; i++) CHECK(sim_env_step(e, noop, i == 4 ? SIM_OBS_IMAGES : 0) == 0);
  for (int t = 0; t < T; t++) {
    const sim_obs *o = sim_env_obs(e);
    r->obs[t] = *o;
    memcpy(r->jnt + t * 7, o->joint_pos, sizeof o->joint_pos);
    memcpy(r->grp + t * 2, o->gripper_qpos, sizeof o->gripper_qpos);
    memcpy(r->pos + t * 3, o->eef_pos, sizeof o->eef_pos);
    rdt_quat_to_axisangle(o->eef_quat, r->ori + t * 3);   /* LIBERO's ee_ori */
    memcpy(r->agent + (size_t)t * S * S * 3, o->agentview, (size_t)S * S * 3);
    memcpy(r->wrist + (size_t)t * S * S * 3, o->eye_in_hand, (size_t)S * S * 3);
    double a[7] = {0.5, -0.3 * t, 0.2, 0.1, 0, -0.2, t % 2 ? 1 : -1};
    memcpy(r->act + t * 7, a, sizeof a);
    CHECK(sim_env_step(e, a, SIM_OBS_IMAGES) == 0);
  }
}

/* The demonstration file LIBERO's create_dataset.py would write. */
static void write_demo(const char *path, const recording *r) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t data = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  fx_str_attr(data, "problem_info", "{\"problem_name\": \"libero_kitchen_tabletop_manipulation\", "
           "\"language_instruction\": \"close the top drawer of the cabinet\"}");
  fx_str_attr(data, "bddl_file_content", "(define (problem x))");
  hid_t g = H5Gcreate2(data, "demo_0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t obs = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  fx_2d(g, "actions", r->act, T, 7);
  fx_2d(obs, "joint_states", r->jnt, T, 7);
  fx_2d(obs, "gripper_states", r->grp, T, 2);
  fx_2d(obs, "ee_pos", r->pos, T, 3);
  fx_2d(obs, "ee_ori", r->ori, T, 3);
  fx_frames(obs, "agentview_rgb", r->agent, T, S);
  fx_frames(obs, "eye_in_hand_rgb", r->wrist, T, S);
  fx_str_attr(g, "model_file", "<mujoco/>");
  H5Gclose(obs), H5Gclose(g), H5Gclose(data), H5Fclose(f);
}

static void t_identity(void) {
  char dir[4096], path[4300], ckpt[4300];
  snprintf(dir, sizeof dir, "%s", test_tmpdir("eval-identity"));
  snprintf(path, sizeof path, "%s/%s_demo.hdf5", dir, sim_task_name(TASK));
  snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
  fx_checkpoint(ckpt, 1, 0.01);
  sim_config sc;
  sim_config_default(&sc);
  sc.image_size = S;
  sim_env *e = sim_env_open(&sc, TASK);
  CHECK_MSG(e != NULL, "%s", rdt_error());
  if (!e) return;
  static recording r;
  record(e, &r);
  write_demo(path, &r);

  rdt_config *cfg = rdt_config_load(fx_tiny_yaml());
  eval_policy_opts po = {ckpt, NULL, NULL, NULL, "cpu", 1, "bf16", EVAL_BATCH_AUTO};
  eval_policy *p = cfg ? eval_policy_open(cfg, &po) : NULL;
  CHECK_MSG(p != NULL, "%s", rdt_error());
  const char *instr = sim_task_instruction(TASK);
  CHECK(p && eval_policy_instructions(p, &instr, 1) == 0);
  /* the training side, configured from the same config as the trainer does */
  const eval_obs_map *map = p ? eval_policy_obs_map(p) : NULL;
  rdt_libero_opts lo;
  rdt_libero_opts_init(&lo, map ? map->image.size : 32);
  lo.format = rdt_uni_format_from_config(cfg);
  lo.skip_still = 0;
  CHECK(rdt_image_cfg_from_config(&lo.image, cfg, lo.image.size) == 0);
  rdt_data_source src = {"libero_90", path, 0};
  rdt_libero_data *d = map ? rdt_libero_open(&src, 1, &lo) : NULL;
  CHECK_MSG(d != NULL, "%s", rdt_error());
  if (d && p) {
    rdt_sample *s = rdt_sample_new(d);
    eval_request *q = eval_request_new(p);
    size_t img = (size_t)RDT_NUM_IMAGES * 3 * map->image.size * map->image.size;
    for (int t = 0; t < T; t++) {
      CHECK(rdt_libero_get(d, 0, t, NULL, s) == 0);
      CHECK(!strcmp(s->instruction, instr));
      const uint8_t *cur[2] = {r.agent + (size_t)t * S * S * 3, r.wrist + (size_t)t * S * S * 3};
      const uint8_t *prev[2] = {r.agent + (size_t)(t - 1) * S * S * 3, r.wrist + (size_t)(t - 1) * S * S * 3};
      rdt_raw_obs o;
      eval_raw_obs(&r.obs[t], cur, t ? prev : NULL, S, &o);   /* no t-1 frame at the first plan */
      rdt_rng rng;
      rdt_rng_seed(&rng, 0, 0);
      CHECK(eval_policy_prepare(p, &o, 0, &rng, q) == 0);
      CHECK_MSG(!memcmp(q->in.state, s->in.state, sizeof q->in.state), "step %d: state differs", t);
      CHECK_MSG(!memcmp(q->in.state_mask, s->in.state_mask, sizeof q->in.state_mask), "step %d: mask differs", t);
      CHECK_MSG(!memcmp(q->in.image_valid, s->in.image_valid, sizeof q->in.image_valid), "step %d: image masks", t);
      CHECK_MSG(!memcmp(q->in.images, s->in.images, img * sizeof(float)), "step %d: images differ", t);
      CHECK(q->in.image_valid[0] == (t > 0) && q->in.image_valid[3] == 1 && q->in.image_valid[5] == 0);
    }
    eval_request_free(q);
    rdt_sample_free(s);
  }
  rdt_libero_close(d);
  eval_policy_free(p);
  rdt_config_free(cfg);
  sim_env_close(e);
  if (!test_done()) test_sh("rm -rf '%s'", dir);
}

int main(void) {
  fx_libero_env();
  RUN(t_identity);
  return test_done();
}
