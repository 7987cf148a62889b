/* LIBERO reader: the test writes small LIBERO-layout HDF5 files with known
 * values (libhdf5) and checks samples element by element: unified slots, 6D
 * rotation, action scaling, padding at the episode end, image history and
 * masks, image orientation; the instruction; sampling; mixtures; statistics;
 * and clear errors for corrupt, truncated and malformed files. */
#include <hdf5.h>
#include <stdint.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "train/data_libero.h"
#include "test.h"
#include "train_fixture.h"   /* HDF5 writing as h5py does */

enum { H = 4, W = 4 };
#define TASK "KITCHEN_SCENE3_turn_on_the_stove"

/* ================================================================ the known values */

/* Action t: position (0.01 (t%10+1), -0.02, 0.5 (-1)^t), one rotation axis
 * (t % 3) of 0.05 (t%10+1), gripper +1 on odd t, -1 on even. */
static void action_at(int t, double a[7]) {
  double m = 0.05 * (t % 10 + 1);
  a[0] = 0.01 * (t % 10 + 1), a[1] = -0.02, a[2] = t % 2 ? -0.5 : 0.5;
  a[3] = a[4] = a[5] = 0;
  a[3 + t % 3] = m;
  a[6] = t % 2 ? 1 : -1;
}

/* Joints move from t = still (0.02 rad per step), constant before. */
static double joint_at(int t, int j, int still) { return 0.1 * j + 0.02 * (t > still ? t - still : 0); }

/* Pixel of frame t of camera c at (y, x, channel). */
static uint8_t pixel(int c, int t, int y, int x, int ch) { return (uint8_t)(c * 100 + t * 7 + y * 16 + x * 3 + ch); }

/* ================================================================ writing files */

/* Frames of camera c for T steps, from pixel(). */
static void write_images(hid_t g, const char *name, int c, int T) {
  uint8_t *buf = malloc((size_t)T * H * W * 3);
  for (int t = 0; t < T; t++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int ch = 0; ch < 3; ch++) buf[((t * H + y) * W + x) * 3 + ch] = pixel(c, t, y, x, ch);
  fx_frames(g, name, buf, T, H);
  free(buf);
}

/* Flaws to plant in an episode. */
enum { FLAW_NONE, FLAW_NO_EE_ORI, FLAW_EE_POS_4_COLS };

/* One demo_N group of length T whose joints stay still up to `still`. */
static void write_demo(hid_t data, int n, int T, int still, int flaw) {
  char name[32];
  snprintf(name, sizeof name, "demo_%d", n);
  hid_t g = H5Gcreate2(data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t obs = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  double *act = malloc(sizeof(double) * T * 7), *jnt = malloc(sizeof(double) * T * 7);
  double *grp = malloc(sizeof(double) * T * 2), *pos = malloc(sizeof(double) * T * 4);
  double *ori = malloc(sizeof(double) * T * 3);
  for (int t = 0; t < T; t++) {
    action_at(t, act + t * 7);
    for (int j = 0; j < 7; j++) jnt[t * 7 + j] = joint_at(t, j, still);
    grp[t * 2] = 0.03 - 0.0001 * t, grp[t * 2 + 1] = -0.03 + 0.0001 * t;
    pos[t * 4] = 0.1 * t, pos[t * 4 + 1] = 0.2, pos[t * 4 + 2] = 0.3, pos[t * 4 + 3] = 9;
    ori[t * 3] = 0, ori[t * 3 + 1] = 0, ori[t * 3 + 2] = 0.1 * t;   /* axis-angle about z */
  }
  if (flaw != FLAW_EE_POS_4_COLS)
    for (int t = 0; t < T; t++) memmove(pos + t * 3, pos + t * 4, sizeof(double) * 3);
  fx_2d(g, "actions", act, T, 7);
  fx_2d(obs, "joint_states", jnt, T, 7);
  fx_2d(obs, "gripper_states", grp, T, 2);
  fx_2d(obs, "ee_pos", pos, T, flaw == FLAW_EE_POS_4_COLS ? 4 : 3);
  if (flaw != FLAW_NO_EE_ORI) fx_2d(obs, "ee_ori", ori, T, 3);
  write_images(obs, "agentview_rgb", 0, T);
  write_images(obs, "eye_in_hand_rgb", 1, T);
  fx_str_attr(g, "model_file", "<mujoco/>");
  free(act), free(jnt), free(grp), free(pos), free(ori);
  H5Gclose(obs);
  H5Gclose(g);
}

/* A demo file with episodes of the given lengths and still prefixes. */
static void write_file(const char *path, int n, const int *T, const int *still, int flaw) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t data = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  fx_str_attr(data, "problem_info",
                 "{\"problem_name\": \"libero_kitchen_tabletop_manipulation\", "
                 "\"language_instruction\": \"turn on the stove (bddl)\"}");
  fx_str_attr(data, "bddl_file_content", "(define (problem x))");
  for (int i = 0; i < n; i++) write_demo(data, i, T[i], still[i], i == n - 1 ? flaw : FLAW_NONE);
  H5Gclose(data);
  H5Fclose(f);
}

/* ================================================================ helpers */

static char dir[4096], file1[4200];
static const int lens[3] = {5, 70, 6}, stills[3] = {0, 0, 2};

static rdt_libero_data *open_one(const char *path, const rdt_libero_opts *o) {
  rdt_data_source src = {"libero_test", (char *)path, 0};
  return rdt_libero_open(&src, 1, o);
}

static rdt_libero_opts opts4(void) {
  rdt_libero_opts o;
  rdt_libero_opts_init(&o, W);   /* 4x4 images, encoder size 4: no resize */
  return o;
}

/* Normalised value of raw pixel (y, x, ch) of frame t of camera c. */
static double norm_px(int c, int t, int y, int x, int ch) { return pixel(c, t, y, x, ch) / 255.0 * 2 - 1; }

/* ================================================================ cases */

static void t_layout_and_instruction(void) {
  rdt_libero_opts o = opts4();
  rdt_libero_data *d = open_one(file1, &o);
  CHECK_MSG(d != NULL, "%s", rdt_error());
  if (!d) return;
  CHECK(rdt_libero_num_episodes(d) == 3);
  const rdt_episode_info *e2 = rdt_libero_episode(d, 2);
  CHECK(!strcmp(e2->key, "demo_2") && e2->length == 6);
  CHECK(e2->start == 2);   /* joints first move at t = 3: start = 3 - 1 */
  CHECK(!strcmp(e2->instruction, "turn on the stove"));   /* from the file name, as evaluators */
  CHECK(rdt_libero_num_steps(d) == 5 + 70 + 4);
  int e, t;
  rdt_libero_step_at(d, 0, &e, &t);
  CHECK(e == 0 && t == 0);
  rdt_libero_step_at(d, 5, &e, &t);
  CHECK(e == 1 && t == 0);
  rdt_libero_step_at(d, 78, &e, &t);
  CHECK(e == 2 && t == 5);
  rdt_libero_step_at(d, 75, &e, &t);
  CHECK(e == 2 && t == 2);
  rdt_libero_close(d);
  o.instruction = RDT_INSTR_PROBLEM_INFO;
  d = open_one(file1, &o);
  CHECK(d && !strcmp(rdt_libero_episode(d, 0)->instruction, "turn on the stove (bddl)"));
  rdt_libero_close(d);
}

/* The sample at episode 1, t = 2: every unified slot, chunk, images, masks. */
static void t_sample(void) {
  rdt_libero_opts o = opts4();
  rdt_libero_data *d = open_one(file1, &o);
  if (!d) return;
  rdt_sample *s = rdt_sample_new(d);
  CHECK(rdt_libero_get(d, 1, 2, NULL, s) == 0);
  CHECK(!strcmp(s->dataset_name, "libero_test") && s->t == 2 && s->episode == 1);
  /* state */
  for (int j = 0; j < 7; j++) CHECK_NEAR(s->in.state[j], joint_at(2, j, 0), 1e-7);
  CHECK_NEAR(s->in.state[10], (0.03 - 0.0002 + 0.03 - 0.0002) / 0.08, 1e-6);
  CHECK_NEAR(s->in.state[30], 0.2, 1e-7);
  CHECK_NEAR(s->in.state[31], 0.2, 1e-7);
  CHECK_NEAR(s->in.state[32], 0.3, 1e-7);
  const double z6[6] = {cos(0.2), sin(0.2), 0, -sin(0.2), cos(0.2), 0};   /* Rz(0.2) */
  for (int i = 0; i < 6; i++) CHECK_NEAR(s->in.state[33 + i], z6[i], 1e-7);
  for (int i = 0; i < 128; i++) {
    int filled = i < 7 || i == 10 || (i >= 30 && i <= 38);
    CHECK(s->in.state_mask[i] == filled);
    if (!filled) CHECK(s->in.state[i] == 0);
    CHECK(s->action_mask[i] == (i == 10 || (i >= 30 && i <= 38)));
  }
  /* chunk: element k is action 2 + k */
  for (int k = 0; k < 64; k++) {
    const float *v = s->actions + k * 128;
    double a[7];
    action_at(2 + k, a);
    for (int i = 0; i < 3; i++) CHECK_NEAR(v[30 + i], 1.2 * a[i], 1e-7);
    CHECK_NEAR(v[10], (a[6] + 1) / 2, 0);
    double ang = 0.5 * a[3 + (2 + k) % 3], c = cos(ang), sn = sin(ang);
    /* one Euler axis: Rx = cols (1,0,0),(0,c,s); Ry = (c,0,-s),(0,1,0); Rz = (c,s,0),(-s,c,0) */
    const double d6[3][6] = {{1, 0, 0, 0, c, sn}, {c, 0, -sn, 0, 1, 0}, {c, sn, 0, -sn, c, 0}};
    for (int i = 0; i < 6; i++) CHECK_NEAR(v[33 + i], d6[(2 + k) % 3][i], 1e-7);
    for (int i = 0; i < 128; i++)
      if (!s->action_mask[i]) CHECK(v[i] == 0);
  }
  /* images: t-1 = frame 1, t = frame 2, turned 180 degrees: (y, x) <- (3-y, 3-x) */
  const uint8_t valid[6] = {1, 1, 0, 1, 1, 0};
  const int cam[6] = {0, 1, -1, 0, 1, -1}, frame[6] = {1, 1, -1, 2, 2, -1};
  for (int i = 0; i < 6; i++) {
    const float *img = s->in.images + i * 3 * H * W;
    CHECK(s->in.image_valid[i] == valid[i]);
    if (cam[i] < 0) {
      CHECK(rdt_image_is_background(&o.image, img));
      continue;
    }
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
          CHECK_NEAR(img[(ch * H + y) * W + x], norm_px(cam[i], frame[i], H - 1 - y, W - 1 - x, ch), 1e-6);
  }
  /* per-episode statistics: slot 30 = 0.1 t over T = 70 */
  CHECK_NEAR(s->state_mean[30], 0.1 * 69 / 2, 1e-5);
  CHECK_NEAR(s->state_std[30], 0.1 * sqrt((70.0 * 70 - 1) / 12), 1e-5);
  CHECK_NEAR(s->state_norm[31], 0.2, 1e-6);
  rdt_sample_free(s);
  rdt_libero_close(d);
}

/* Padding at the end, the first step's history, the still prefix, and
 * images kept in file orientation when the switch is off. */
static void t_edges(void) {
  rdt_libero_opts o = opts4();
  o.image.rotate180 = 0;
  rdt_libero_data *d = open_one(file1, &o);
  if (!d) return;
  rdt_sample *s = rdt_sample_new(d);
  CHECK(rdt_libero_get(d, 0, 3, NULL, s) == 0);   /* T = 5: actions 3, 4, 4, 4, ... */
  double a4[7];
  action_at(4, a4);
  for (int k = 1; k < 64; k++) {
    CHECK(!memcmp(s->actions + k * 128, s->actions + 128, 128 * sizeof(float)));
  }
  CHECK_NEAR(s->actions[128 + 30], 1.2 * a4[0], 1e-7);
  CHECK_NEAR(s->actions[30], 1.2 * 0.04, 1e-7);   /* element 0 is action 3 */
  CHECK(rdt_libero_get(d, 0, 0, NULL, s) == 0);   /* first step: no t-1 image */
  const uint8_t v0[6] = {0, 0, 0, 1, 1, 0};
  for (int i = 0; i < 6; i++) CHECK(s->in.image_valid[i] == v0[i]);
  CHECK(rdt_image_is_background(&o.image, s->in.images));
  CHECK_NEAR(s->in.images[3 * 48 + 0], norm_px(0, 0, 0, 0, 0), 1e-6);   /* upright off: (0,0) = (0,0) */
  CHECK_NEAR(s->in.images[4 * 48 + 16 + 5], norm_px(1, 0, 1, 1, 1), 1e-6);
  CHECK(rdt_libero_get(d, 2, 2, NULL, s) == 0);   /* the start of a still-prefixed episode */
  CHECK(s->in.image_valid[0] == 0 && s->in.image_valid[3] == 1);
  CHECK(rdt_libero_get(d, 2, 3, NULL, s) == 0);
  CHECK(s->in.image_valid[0] == 1);
  CHECK_NEAR(s->in.images[0], norm_px(0, 2, 0, 0, 0), 1e-6);
  CHECK(rdt_libero_get(d, 0, 5, NULL, s) < 0);
  CHECK(strstr(rdt_error(), "step 5 out of range") != NULL);
  rdt_sample_free(s);
  rdt_libero_close(d);
  /* action_offset 1 pairs the state at t with actions t+1.. */
  o = opts4();
  o.action_offset = 1;
  d = open_one(file1, &o);
  s = rdt_sample_new(d);
  CHECK(rdt_libero_get(d, 1, 2, NULL, s) == 0);
  CHECK_NEAR(s->actions[30], 1.2 * 0.04, 1e-7);
  rdt_sample_free(s);
  rdt_libero_close(d);
}

/* The raw observation is what evaluation would build: the same model inputs. */
static void t_raw_obs_matches(void) {
  rdt_libero_opts o = opts4();
  rdt_libero_data *d = open_one(file1, &o);
  if (!d) return;
  rdt_sample *s = rdt_sample_new(d);
  uint8_t buf[4 * H * W * 3];
  rdt_raw_obs raw;
  float images[6 * 48];
  rdt_model_input in = {.images = images};
  CHECK(rdt_libero_raw_obs(d, 1, 9, &raw, buf) == 0);
  CHECK(raw.h == H && raw.w == W && raw.image[0][0] && raw.image[1][1]);
  CHECK(raw.image[0][1][0] == pixel(0, 9, 0, 0, 0) && raw.image[1][0][0] == pixel(1, 8, 0, 0, 0));
  CHECK_NEAR(raw.eef_ori[2], 0.9, 1e-12);
  CHECK(rdt_obs_to_model_input(o.format, &o.image, &raw, NULL, &in) == 0);
  CHECK(rdt_libero_get(d, 1, 9, NULL, s) == 0);
  CHECK(!memcmp(in.state, s->in.state, sizeof in.state));
  CHECK(!memcmp(images, s->in.images, sizeof images));
  rdt_sample_free(s);
  rdt_libero_close(d);
}

/* Random draws follow the usable-step weights; augmentation is reproducible. */
static void t_sampling(void) {
  rdt_libero_opts o = opts4();
  o.image.augment = 1;
  rdt_libero_data *d = open_one(file1, &o);
  if (!d) return;
  rdt_rng r, r2;
  int count[3] = {0, 0, 0}, e, t;
  rdt_rng_seed(&r, 5, 0);
  for (int i = 0; i < 40000; i++) {
    rdt_libero_draw(d, &r, &e, &t);
    count[e]++;
    const rdt_episode_info *in = rdt_libero_episode(d, e);
    CHECK(t >= in->start && t < in->length);
  }
  const double p[3] = {5 / 79.0, 70 / 79.0, 4 / 79.0};
  for (int i = 0; i < 3; i++) CHECK_NEAR(count[i] / 40000.0, p[i], 0.01);
  rdt_sample *a = rdt_sample_new(d), *b = rdt_sample_new(d);
  rdt_rng_seed(&r, 9, 1);
  rdt_rng_seed(&r2, 9, 1);
  int changed = 0;
  for (int i = 0; i < 10; i++) {
    CHECK(rdt_libero_get(d, 1, 10 + i, &r, a) == 0);
    CHECK(rdt_libero_get(d, 1, 10 + i, &r2, b) == 0);
    CHECK(!memcmp(a->in.images, b->in.images, sizeof(float) * 6 * 48));
    CHECK(rdt_libero_get(d, 1, 10 + i, NULL, b) == 0);
    changed += memcmp(a->in.images, b->in.images, sizeof(float) * 6 * 48) != 0;
  }
  CHECK(changed > 0);
  rdt_sample_free(a);
  rdt_sample_free(b);
  rdt_libero_close(d);
}

/* A dataset-list JSON with sample weights: names, folders, weighted draws. */
static void t_mixture(void) {
  char path[4400], list[4400];
  static const int one[1] = {10}, zero[1] = {0};
  snprintf(path, sizeof path, "%s/dsA", dir);
  rdt_mkdirs(path);
  snprintf(path, sizeof path, "%s/dsA/LIVING_ROOM_SCENE2_pick_up_the_book_demo.hdf5", dir);
  write_file(path, 1, one, zero, FLAW_NONE);
  snprintf(path, sizeof path, "%s/dsB", dir);
  rdt_mkdirs(path);
  snprintf(path, sizeof path, "%s/dsB/STUDY_SCENE10_close_the_drawer_demo.hdf5", dir);
  write_file(path, 1, one, zero, FLAW_NONE);
  snprintf(list, sizeof list, "%s/finetune_datasets.json", dir);
  const char *names = "[\"dsA\", \"dsB\"]", *w13 = "{\"dsA\": 1, \"dsB\": 3}", *w1 = "{\"dsA\": 1}";
  rdt_write_file_atomic(list, names, strlen(names));
  snprintf(path, sizeof path, "%s/finetune_sample_weights.json", dir);
  rdt_write_file_atomic(path, w13, strlen(w13));
  const char *values[1] = {list};
  rdt_data_source *src;
  int n;
  CHECK(rdt_data_sources_parse(values, 1, "ignored", &src, &n) == 0);
  CHECK(n == 2 && !strcmp(src[0].name, "dsA") && src[1].weight == 3);
  rdt_libero_opts o = opts4();
  rdt_libero_data *d = rdt_libero_open(src, n, &o);
  CHECK_MSG(d != NULL, "%s", rdt_error());
  rdt_data_sources_free(src, n);
  if (!d) return;
  CHECK(rdt_libero_num_datasets(d) == 2 && !strcmp(rdt_libero_dataset_name(d, 1), "dsB"));
  CHECK(!strcmp(rdt_libero_episode(d, 0)->instruction, "pick up the book"));
  CHECK(!strcmp(rdt_libero_episode(d, 1)->instruction, "close the drawer"));
  rdt_rng r;
  int nb = 0, e, t;
  rdt_rng_seed(&r, 1, 0);
  for (int i = 0; i < 20000; i++) {
    rdt_libero_draw(d, &r, &e, &t);
    nb += rdt_libero_episode(d, e)->dataset == 1;
  }
  CHECK_NEAR(nb / 20000.0, 0.75, 0.015);
  rdt_libero_close(d);
  rdt_write_file_atomic(path, w1, strlen(w1));
  CHECK(rdt_data_sources_parse(values, 1, NULL, &src, &n) < 0);
  CHECK(strstr(rdt_error(), "no weight for dataset 'dsB'") != NULL);
}

/* rdt_libero_stats against sums the test forms from the known values. */
static void t_stats(void) {
  rdt_libero_opts o = opts4();
  rdt_libero_data *d = open_one(file1, &o);
  if (!d) return;
  rdt_stat_acc sa, aa;
  rdt_stat_result sr, ar;
  rdt_stat_acc_init(&sa);
  rdt_stat_acc_init(&aa);
  CHECK(rdt_libero_stats(d, 0, &sa, &aa) == 0);
  rdt_stat_acc_result(&sa, &sr);
  rdt_stat_acc_result(&aa, &ar);
  int n = 0, ones = 0;
  double s30 = 0, q30 = 0, mx0 = -1e9, mn0 = 1e9, sa30 = 0;
  for (int e = 0; e < 3; e++)
    for (int t = 0; t < lens[e]; t++) {
      double a[7];
      action_at(t, a);
      n++;
      s30 += 0.1 * t, q30 += 0.01 * t * t;
      ones += a[6] > 0;
      sa30 += 1.2 * a[0];
      double j0 = joint_at(t, 1, stills[e]);
      if (j0 > mx0) mx0 = j0;
      if (j0 < mn0) mn0 = j0;
    }
  CHECK(sa.n == n && aa.n == n);
  CHECK_NEAR(sr.mean[30], s30 / n, 1e-6);
  CHECK_NEAR(sr.std[30], sqrt(q30 / n - (s30 / n) * (s30 / n)), 1e-6);
  CHECK_NEAR(sr.max[1], mx0, 1e-6);
  CHECK_NEAR(sr.min[1], mn0, 1e-6);
  CHECK_NEAR(ar.mean[30], sa30 / n, 1e-6);
  CHECK_NEAR(ar.mean[10], (double)ones / n, 1e-9);
  /* gripper action in {0, 1}: upstream's non-zero std is sqrt(1 - nz/n) */
  CHECK_NEAR(ar.std_nz[10], sqrt(1 - (double)ones / n), 1e-9);
  CHECK(sr.mean[50] == 0 && sr.std_nz[50] == 0 && sr.min[50] == 0);
  rdt_libero_close(d);
}

/* Broken inputs: messages name the file and the HDF5 path. */
static void t_errors(void) {
  char path[4400];
  rdt_libero_opts o = opts4();
  static const int T1[1] = {5}, S1[1] = {0};
  /* truncated: the first half of a valid file */
  size_t len;
  char *bytes = rdt_read_file(file1, &len);
  snprintf(path, sizeof path, "%s/trunc/KITCHEN_SCENE1_x_demo.hdf5", dir);
  char *folder = rdt_dirname(path);
  rdt_mkdirs(folder);
  rdt_write_file_atomic(path, bytes, len / 2);
  CHECK(open_one(path, &o) == NULL);
  CHECK_MSG(strstr(rdt_error(), path) && strstr(rdt_error(), "truncated"), "%s", rdt_error());
  /* not HDF5 at all */
  rdt_write_file_atomic(path, "garbage garbage garbage", strlen("garbage garbage garbage"));
  CHECK(open_one(path, &o) == NULL);
  CHECK(strstr(rdt_error(), path) != NULL);
  /* a folder whose only file is corrupt */
  CHECK(open_one(folder, &o) == NULL);
  CHECK(strstr(rdt_error(), "KITCHEN_SCENE1_x_demo.hdf5") != NULL);
  free(bytes);
  free(folder);
  /* a missing dataset and a wrong shape */
  snprintf(path, sizeof path, "%s/KITCHEN_SCENE1_missing_demo.hdf5", dir);
  write_file(path, 1, T1, S1, FLAW_NO_EE_ORI);
  CHECK(open_one(path, &o) == NULL);
  CHECK_MSG(strstr(rdt_error(), path) && strstr(rdt_error(), "data/demo_0/obs/ee_ori: missing"), "%s", rdt_error());
  write_file(path, 1, T1, S1, FLAW_EE_POS_4_COLS);
  CHECK(open_one(path, &o) == NULL);
  CHECK_MSG(strstr(rdt_error(), "data/demo_0/obs/ee_pos: expected shape (T,3), found (5,4)"), "%s", rdt_error());
  /* absent paths and empty folders */
  snprintf(path, sizeof path, "%s/nowhere", dir);
  CHECK(open_one(path, &o) == NULL);
  CHECK(strstr(rdt_error(), "nowhere: no such file or folder") != NULL);
  snprintf(path, sizeof path, "%s/empty", dir);
  rdt_mkdirs(path);
  CHECK(open_one(path, &o) == NULL);
  CHECK(strstr(rdt_error(), "no *.hdf5 files") != NULL);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s", test_tmpdir("data-libero"));
  snprintf(file1, sizeof file1, "%s/" TASK "_demo.hdf5", dir);
  write_file(file1, 3, lens, stills, FLAW_NONE);
  RUN(t_layout_and_instruction);
  RUN(t_sample);
  RUN(t_edges);
  RUN(t_raw_obs_matches);
  RUN(t_sampling);
  RUN(t_mixture);
  RUN(t_stats);
  RUN(t_errors);
  rdt_rmtree(dir);
  return test_done();
}
