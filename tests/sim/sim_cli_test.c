/* tests/sim/sim_cli_test.c: `rdt sim` end to end (RDT_BIN).
 *
 * list/info output, rendered PNGs decoded with zlib (robot and table visible:
 * the image is not constant, the two cameras differ), and one-line errors
 * with exit status 1 for a malformed BDDL file, a missing asset folder, a
 * truncated .pruned_init and a missing collision mesh, each built in a
 * scratch copy of the data made of symlinks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/torchzip.h"
#include "sim/env.h"
#include "sim/env_internal.h"
#include "sim/render.h"
#include "test.h"

/* Run a shell command; capture stdout and stderr; return the exit status. */
static int run(const char *cmd, char **out, char **err) {
  const char *dir = test_tmpdir("simcli");
  char o[4200], e[4200], full[12000];
  snprintf(o, sizeof o, "%s/out.txt", dir);
  snprintf(e, sizeof e, "%s/err.txt", dir);
  snprintf(full, sizeof full, "%s >'%s' 2>'%s'", cmd, o, e);
  int st = system(full);
  size_t n;
  if (out) *out = rdt_read_file(o, &n);
  if (err) *err = rdt_read_file(e, &n);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Lines of text that are not warnings ("rdt: warning: ..."). */
static int error_lines(const char *text) {
  int n = 0;
  for (const char *p = text; p && *p;) {
    const char *nl = strchr(p, '\n');
    if (strncmp(p, "rdt: warning", 12)) n++;
    p = nl ? nl + 1 : NULL;
  }
  return n;
}

/* The rdt binary with the test data in its environment. */
static const char *rdt_env(void) {
  static char buf[16384];
  snprintf(buf, sizeof buf, "RDT_LIBERO_ROOT='%s' RDT_ROBOSUITE_ASSETS='%s' RDT_GL=osmesa '%s'", test_libero_root(),
           test_robosuite_assets(), getenv("RDT_BIN") ? getenv("RDT_BIN") : "./rdt");
  return buf;
}

static void t_list(void) {
  char *out = NULL, cmd[17000];
  snprintf(cmd, sizeof cmd, "%s sim list", rdt_env());
  CHECK(run(cmd, &out, NULL) == 0);
  int lines = 0;
  for (char *p = out; p && *p; p++) lines += *p == '\n';
  CHECK(lines == SIM_NUM_TASKS);
  CHECK(out && strstr(out, " 9  KITCHEN_SCENE1_put_the_black_bowl_on_the_plate"));
  free(out);
}

/* info for one task of each problem class agrees with the init file's width. */
static void t_info(void) {
  const char *tasks[] = {"KITCHEN_SCENE1_put_the_black_bowl_on_the_plate",
                         "LIVING_ROOM_SCENE2_pick_up_the_butter_and_put_it_in_the_basket",
                         "STUDY_SCENE1_pick_up_the_yellow_and_white_mug_and_place_it_to_the_right_of_the_caddy"};
  for (int i = 0; i < 3; i++) {
    char *out = NULL, cmd[17000];
    snprintf(cmd, sizeof cmd, "%s sim info --task %s", rdt_env(), tasks[i]);
    CHECK(run(cmd, &out, NULL) == 0);
    rdt_json *j = out ? rdt_json_parse(out, strlen(out)) : NULL;
    CHECK_MSG(j, "%s", out ? out : "");
    if (j) {
      char rel[300];
      snprintf(rel, sizeof rel, "init_files/libero_90/%s.pruned_init", tasks[i]);
      char *path = rdt_path_join(test_libero_root(), rel);
      rdt_tensor t;
      CHECK(rdt_torch_load_numpy(path, &t) == 0);
      int nq = (int)rdt_json_get(j, "nq")->number, nv = (int)rdt_json_get(j, "nv")->number;
      CHECK(t.shape[1] == 1 + nq + nv && rdt_json_get(j, "init_state_width")->number == 1 + nq + nv);
      CHECK(rdt_json_get(j, "num_init_states")->number == 50 && rdt_json_get(j, "nu")->number == 9);
      CHECK(strstr(rdt_json_get(j, "goal")->string, "(and (") == rdt_json_get(j, "goal")->string);
      free(t.data), free(path);
    }
    rdt_json_free(j);
    free(out);
  }
}

static void expect_error(const char *env, const char *args, const char *want);

/* rollout from an action file: JSON result; the same run twice is identical;
 * a malformed action line is a one-line error. */
static void t_rollout(void) {
  const char *dir = test_tmpdir("simroll");
  char *acts = rdt_path_join(dir, "acts.txt"), *bad = rdt_path_join(dir, "bad.txt");
  FILE *f = fopen(acts, "w");
  for (int t = 0; t < 6; t++) fprintf(f, "0.5, 0, -0.5, 0, 0, 0, %d  # step %d\n", t < 3 ? -1 : 1, t);
  fclose(f);
  f = fopen(bad, "w");
  fprintf(f, "0 0 0 0 0 0 -1\n0 0 0\n");
  fclose(f);
  char cmd[17000], *out[2] = {NULL, NULL};
  for (int r = 0; r < 2; r++) {
    snprintf(cmd, sizeof cmd, "%s sim rollout --task 9 --init 1 --actions '%s'", rdt_env(), acts);
    CHECK(run(cmd, &out[r], NULL) == 0);
  }
  rdt_json *j = out[0] ? rdt_json_parse(out[0], strlen(out[0])) : NULL;
  CHECK(j && rdt_json_get(j, "steps")->number == 6 && !rdt_json_get(j, "success")->boolean);
  CHECK(j && rdt_json_get(j, "eef_pos")->count == 3 && rdt_json_get(j, "eef_quat")->count == 4);
  CHECK(out[0] && out[1] && !strcmp(out[0], out[1]));
  rdt_json_free(j);
  free(out[0]), free(out[1]);
  char env[4500];
  snprintf(env, sizeof env, "RDT_LIBERO_ROOT='%s' RDT_ROBOSUITE_ASSETS='%s'", test_libero_root(), test_robosuite_assets());
  snprintf(cmd, sizeof cmd, "sim rollout --task 9 --actions '%s'", bad);
  expect_error(env, cmd, "bad.txt:2: expected 7 numbers");
  free(acts), free(bad);
}

/* Decode an 8-bit RGB PNG (any filter-0 image from our writer) with zlib. */
static uint8_t *read_png(const char *path, int *w, int *h) {
  size_t len;
  uint8_t *f = (uint8_t *)rdt_read_file(path, &len);
  if (!f || len < 33) return free(f), NULL;
  *w = f[16] << 24 | f[17] << 16 | f[18] << 8 | f[19];
  *h = f[20] << 24 | f[21] << 16 | f[22] << 8 | f[23];
  size_t at = 8;
  uint8_t *z = NULL;
  size_t zn = 0;
  while (at + 12 <= len) {
    uint32_t n = (uint32_t)f[at] << 24 | f[at + 1] << 16 | f[at + 2] << 8 | f[at + 3];
    if (!memcmp(f + at + 4, "IDAT", 4)) {
      z = realloc(z, zn + n);
      memcpy(z + zn, f + at + 8, n);
      zn += n;
    }
    at += 12 + n;
  }
  uLongf rn = (uLongf)(*w * 3 + 1) * *h;
  uint8_t *raw = malloc(rn), *rgb = malloc((size_t)*w * *h * 3);
  int ok = z && uncompress(raw, &rn, z, zn) == Z_OK;
  for (int y = 0; ok && y < *h; y++) memcpy(rgb + (size_t)y * *w * 3, raw + (size_t)y * (*w * 3 + 1) + 1, (size_t)*w * 3);
  free(raw), free(z), free(f);
  if (!ok) return free(rgb), NULL;
  return rgb;
}

/* Fraction of pixels that differ between two images, and spread of one. */
static double differ(const uint8_t *a, const uint8_t *b, int n) {
  int d = 0;
  for (int i = 0; i < n; i++) d += abs(a[3 * i] - b[3 * i]) + abs(a[3 * i + 1] - b[3 * i + 1]) + abs(a[3 * i + 2] - b[3 * i + 2]) > 30;
  return (double)d / n;
}

static int distinct_values(const uint8_t *a, int n) {
  int seen[256] = {0}, k = 0;
  for (int i = 0; i < n; i++) k += !seen[a[3 * i + 1]]++;
  return k;
}

/* rdt sim render: both cameras, not constant, different from each other. */
static void t_render(void) {
  const char *dir = test_tmpdir("simrender");
  const char *cams[2] = {"agentview", "robot0_eye_in_hand"};
  uint8_t *img[2] = {NULL, NULL};
  int w = 0, h = 0;
  for (int c = 0; c < 2; c++) {
    char cmd[21000], path[4200];
    snprintf(path, sizeof path, "%s/%s.png", dir, cams[c]);
    snprintf(cmd, sizeof cmd, "%s sim render --task 9 --init 0 --camera %s --size 96 --out '%s'", rdt_env(), cams[c], path);
    char *err = NULL;
    CHECK_MSG(run(cmd, NULL, &err) == 0, "%s", err ? err : "");
    free(err);
    img[c] = read_png(path, &w, &h);
    CHECK(img[c] && w == 96 && h == 96);
  }
  if (img[0] && img[1]) {
    CHECK_MSG(distinct_values(img[0], 96 * 96) > 20, "agentview nearly constant");
    CHECK_MSG(distinct_values(img[1], 96 * 96) > 10, "eye-in-hand nearly constant");
    CHECK_MSG(differ(img[0], img[1], 96 * 96) > 0.2, "the two cameras look alike");
  }
  free(img[0]), free(img[1]);
}

/* Env observations carry both camera images when asked; frustum culling in
 * the renderer leaves every pixel unchanged (software GL, same thread). */
static void t_env_images_and_culling(void) {
  setenv("RDT_GL", "osmesa", 1);
  sim_config c;
  sim_config_default(&c);
  c.libero_root = test_libero_root();
  c.robosuite_assets = test_robosuite_assets();
  c.image_size = 64;
  sim_env *e = sim_env_open(&c, sim_task_find("LIVING_ROOM_SCENE1_pick_up_the_ketchup_and_put_it_in_the_basket"));
  CHECK_MSG(e, "%s", rdt_error());
  if (!e) return;
  CHECK(sim_env_reset(e, 0, SIM_OBS_IMAGES) == 0);
  const sim_obs *o = sim_env_obs(e);
  CHECK(o->agentview && o->eye_in_hand && o->image_size == 64);
  if (o->agentview && o->eye_in_hand) {
    CHECK(distinct_values(o->agentview, 64 * 64) > 20 && distinct_values(o->eye_in_hand, 64 * 64) > 5);
    CHECK(differ(o->agentview, o->eye_in_hand, 64 * 64) > 0.2);
  }
  const double noop[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
  CHECK(sim_env_step(e, noop, 0) == 0 && !sim_env_obs(e)->agentview);  /* rendered only when asked */
  const sim_scene *s = sim_env_scene(e);
  sim_renderer *r = sim_renderer_new(s->m, 64, 0);
  CHECK(r != NULL);
  uint8_t a[64 * 64 * 3], b[64 * 64 * 3];
  int cams[3] = {s->cam_agentview, s->cam_eye, mj_name2id(s->m, mjOBJ_CAMERA, "frontview")};
  for (int i = 0; r && i < 3; i++) {
    sim_renderer_set_culling(r, 0);
    CHECK(sim_renderer_draw(r, s->m, sim_env_data(e), cams[i], 64, a) == 0);
    sim_renderer_set_culling(r, 1);
    CHECK(sim_renderer_draw(r, s->m, sim_env_data(e), cams[i], 64, b) == 0);
    CHECK_MSG(!memcmp(a, b, sizeof a), "camera %d differs with culling", cams[i]);
  }
  sim_renderer_free(r);
  sim_env_close(e);
}

/* ------------------------------------------------------------------ errors */

/* A scratch LIBERO root: symlinks to the real data except the replaced files. */
static char *scratch_root(const char *tag) {
  const char *dir = test_tmpdir(tag);
  char *root = rdt_path_join(dir, "libero");
  char cmd[9000];
  const char *src = test_libero_root();
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%s/bddl_files/libero_90' '%s/init_files/libero_90' && ln -s '%s/assets' '%s/assets' && "
           "ln -s '%s'/bddl_files/libero_90/* '%s/bddl_files/libero_90/' && "
           "ln -s '%s'/init_files/libero_90/* '%s/init_files/libero_90/'",
           root, root, src, root, src, root, src, root);
  if (system(cmd) != 0) exit(2);
  return root;
}

/* Expect exit 1 with one error line containing want. */
static void expect_error(const char *env, const char *args, const char *want) {
  char cmd[9000], *err = NULL;
  snprintf(cmd, sizeof cmd, "%s '%s' %s", env, getenv("RDT_BIN") ? getenv("RDT_BIN") : "./rdt", args);
  int rc = run(cmd, NULL, &err);
  CHECK_MSG(rc == 1, "exit %d for %s", rc, args);
  CHECK_MSG(err && strstr(err, want) && error_lines(err) == 1, "stderr: %s (want '%s')", err ? err : "", want);
  free(err);
}

static void t_error_bddl(void) {
  char *root = scratch_root("simbad");
  const char *name = sim_task_name(0);
  char cmd[9000];
  snprintf(cmd, sizeof cmd,
           "rm '%s/bddl_files/libero_90/%s.bddl' && printf '(define (problem LIBERO_Kitchen_Tabletop_Manipulation)\\n"
           "  (:regions (r (:target kitchen_table) (:ranges ((0 0 1))))))\\n' > '%s/bddl_files/libero_90/%s.bddl'",
           root, name, root, name);
  CHECK(system(cmd) == 0);
  char env[4500];
  snprintf(env, sizeof env, "RDT_LIBERO_ROOT='%s' RDT_ROBOSUITE_ASSETS='%s'", root, test_robosuite_assets());
  char want[300];
  snprintf(want, sizeof want, "%s.bddl:2: expected", name);
  expect_error(env, "sim info --task 0", want);
  free(root);
}

static void t_error_missing_data(void) {
  char env[4500];
  snprintf(env, sizeof env, "RDT_LIBERO_ROOT=/nonexistent/libero RDT_ROBOSUITE_ASSETS='%s'", test_robosuite_assets());
  expect_error(env, "sim info --task 0", "LIBERO data not found: /nonexistent/libero/assets");
  snprintf(env, sizeof env, "RDT_LIBERO_ROOT='%s' RDT_ROBOSUITE_ASSETS=/nonexistent/assets", test_libero_root());
  expect_error(env, "sim info --task 0", "robosuite assets not found: /nonexistent/assets/robots/panda/robot.xml");
  expect_error("env -u RDT_LIBERO_ROOT", "sim info --task 0", "set RDT_LIBERO_ROOT");
}

static void t_error_truncated_init(void) {
  char *root = scratch_root("simtrunc");
  const char *name = sim_task_name(3);
  char cmd[9000];
  snprintf(cmd, sizeof cmd,
           "cd '%s/init_files/libero_90' && rm '%s.pruned_init' && head -c 700 '%s/init_files/libero_90/%s.pruned_init' "
           "> '%s.pruned_init'",
           root, name, test_libero_root(), name, name);
  CHECK(system(cmd) == 0);
  char env[4500];
  snprintf(env, sizeof env, "RDT_LIBERO_ROOT='%s' RDT_ROBOSUITE_ASSETS='%s'", root, test_robosuite_assets());
  expect_error(env, "sim info --task 3", ".pruned_init: not a zip archive");
  free(root);
}

/* A collision mesh that is missing is an error (a visual one only a warning). */
static void t_error_collision_mesh(void) {
  const char *dir = test_tmpdir("simmesh");
  char *rs = rdt_path_join(dir, "assets"), cmd[9000];
  const char *src = test_robosuite_assets();
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%s/robots/panda' && for d in '%s'/*; do [ \"$(basename \"$d\")\" = robots ] || ln -s \"$d\" '%s/'; done && "
           "ln -s '%s'/robots/panda/* '%s/robots/panda/' && rm '%s/robots/panda/meshes' && mkdir '%s/robots/panda/meshes' && "
           "ln -s '%s'/robots/panda/meshes/* '%s/robots/panda/meshes/' && rm '%s/robots/panda/meshes/link3.stl'",
           rs, src, rs, src, rs, rs, rs, src, rs, rs);
  CHECK(system(cmd) == 0);
  char env[4500];
  snprintf(env, sizeof env, "RDT_LIBERO_ROOT='%s' RDT_ROBOSUITE_ASSETS='%s'", test_libero_root(), rs);
  expect_error(env, "sim info --task 9", "link3.stl: collision mesh file missing");
  free(rs);
}

int main(void) {
  test_libero_root();
  RUN(t_list);
  RUN(t_info);
  RUN(t_rollout);
  RUN(t_error_bddl);
  RUN(t_error_missing_data);
  RUN(t_error_truncated_init);
  RUN(t_error_collision_mesh);
  RUN(t_render);
  RUN(t_env_images_and_culling);
  return test_done();
}
