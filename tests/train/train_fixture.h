/* tests/train/train_fixture.h: a small LIBERO-layout demonstration file with
 * known, smooth values for the trainer's tests, and helpers to run `rdt`.
 *
 * Episode e, step t (T steps, images S x S):
 *   joint_states[j]   0.1 j + 0.3 sin(0.05 t + 0.5 e)
 *   gripper_states    (0.04 g, -0.04 g), g = 1 for t < T/2, else 0.25
 *   ee_pos            (0.1 + 0.2 sin(0.05 t), 0.2 cos(0.05 t + e), 0.9 + 0.001 t)
 *   ee_ori            axis-angle (0, 0, 0.3 + 0.01 t): a rotation about z
 *   actions           (0.5 sin(0.05 t + e), 0.3 cos(0.05 t), -0.2, 0, 0,
 *                      0.2 sin(0.03 t), -1 for t < T/2 else +1)
 *   images            agentview (x + 2y + 5t) mod 256 per channel + 40 c,
 *                     eye_in_hand the same + 100
 * The file name gives the instruction "pick up the test block".
 */
#ifndef RDT_TRAIN_FIXTURE_H
#define RDT_TRAIN_FIXTURE_H

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "core/fsutil.h"
#include "core/json.h"
#include "test.h"

#define FX_FILE "KITCHEN_SCENE1_pick_up_the_test_block_demo.hdf5"

static inline double fx_joint(int e, int t, int j) { return 0.1 * j + 0.3 * sin(0.05 * t + 0.5 * e); }
static inline double fx_grip(int t, int T) { return t < T / 2 ? 1.0 : 0.25; }
static inline void fx_pos(int e, int t, double p[3]) {
  p[0] = 0.1 + 0.2 * sin(0.05 * t), p[1] = 0.2 * cos(0.05 * t + e), p[2] = 0.9 + 0.001 * t;
}
static inline double fx_yaw(int t) { return 0.3 + 0.01 * t; }
static inline void fx_action(int e, int t, int T, double a[7]) {
  a[0] = 0.5 * sin(0.05 * t + e), a[1] = 0.3 * cos(0.05 * t), a[2] = -0.2;
  a[3] = 0, a[4] = 0, a[5] = 0.2 * sin(0.03 * t);
  a[6] = t < T / 2 ? -1 : 1;
}

static inline void fx_2d(hid_t g, const char *name, const double *v, int T, int cols) {
  hsize_t dims[2] = {(hsize_t)T, (hsize_t)cols};
  hid_t sp = H5Screate_simple(2, dims, NULL);
  hid_t d = H5Dcreate2(g, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(d);
  H5Sclose(sp);
}

/* A (T, S, S, 3) uint8 dataset from frames already laid out. */
static inline void fx_frames(hid_t g, const char *name, const uint8_t *frames, int T, int S) {
  hsize_t dims[4] = {(hsize_t)T, (hsize_t)S, (hsize_t)S, 3};
  hid_t sp = H5Screate_simple(4, dims, NULL);
  hid_t d = H5Dcreate2(g, name, H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, frames);
  H5Dclose(d);
  H5Sclose(sp);
}

/* The fixture's camera frames: a pattern that differs per camera, step and pixel. */
static inline void fx_images(hid_t g, const char *name, int cam, int T, int S) {
  uint8_t *buf = malloc((size_t)T * S * S * 3);
  for (int t = 0; t < T; t++)
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++)
        for (int c = 0; c < 3; c++) buf[(((size_t)t * S + y) * S + x) * 3 + c] = (uint8_t)((x + 2 * y + 5 * t) % 256 + 40 * c + 100 * cam);
  fx_frames(g, name, buf, T, S);
  free(buf);
}

/* A variable-length UTF-8 string attribute, as h5py writes str attributes. */
static inline void fx_str_attr(hid_t obj, const char *name, const char *value) {
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, H5T_VARIABLE);
  H5Tset_cset(ty, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, ty, &value);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
}

/* Write DIR/FX_FILE with `episodes` demos of T steps and S x S images. */
static inline void fx_write(const char *dir, int episodes, int T, int S) {
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", dir, FX_FILE);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t data = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  fx_str_attr(data, "problem_info", "{\"language_instruction\": \"pick up the test block\"}");
  fx_str_attr(data, "bddl_file_content", "(define (problem test))");
  double *act = malloc(sizeof(double) * T * 7), *jnt = malloc(sizeof(double) * T * 7);
  double *grp = malloc(sizeof(double) * T * 2), *pos = malloc(sizeof(double) * T * 3);
  double *ori = malloc(sizeof(double) * T * 3);
  for (int e = 0; e < episodes; e++) {
    for (int t = 0; t < T; t++) {
      fx_action(e, t, T, act + t * 7);
      for (int j = 0; j < 7; j++) jnt[t * 7 + j] = fx_joint(e, t, j);
      grp[t * 2] = 0.04 * fx_grip(t, T), grp[t * 2 + 1] = -0.04 * fx_grip(t, T);
      fx_pos(e, t, pos + t * 3);
      ori[t * 3] = 0, ori[t * 3 + 1] = 0, ori[t * 3 + 2] = fx_yaw(t);
    }
    char name[32];
    snprintf(name, sizeof name, "demo_%d", e);
    hid_t g = H5Gcreate2(data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t obs = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    fx_2d(g, "actions", act, T, 7);
    fx_2d(obs, "joint_states", jnt, T, 7);
    fx_2d(obs, "gripper_states", grp, T, 2);
    fx_2d(obs, "ee_pos", pos, T, 3);
    fx_2d(obs, "ee_ori", ori, T, 3);
    fx_images(obs, "agentview_rgb", 0, T, S);
    fx_images(obs, "eye_in_hand_rgb", 1, T, S);
    fx_str_attr(g, "model_file", "<mujoco/>");
    H5Gclose(obs);
    H5Gclose(g);
  }
  free(act), free(jnt), free(grp), free(pos), free(ori);
  H5Gclose(data);
  H5Fclose(f);
}

/* ---------------------------------------------------------------- running rdt */
/* The rdt program ($RDT_BIN). */
static inline const char *fx_rdt(void) {
  const char *b = getenv("RDT_BIN");
  return b && *b ? b : "./rdt";
}

/* The tiny config ($RDT_SOURCE_DIR/configs/tiny.yaml). */
static inline const char *fx_tiny(void) {
  static char buf[4096];
  const char *src = getenv("RDT_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/configs/tiny.yaml", src ? src : ".");
  return buf;
}

/* OpenMPI's mpirun as root on a 2-core machine. */
static inline void fx_mpi_env(void) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
}

/* The "loss" of every metrics.jsonl row that has one, in order; count. */
static inline int fx_losses(const char *output_dir, double *loss, int max) {
  char path[8192];
  snprintf(path, sizeof path, "%s/metrics.jsonl", output_dir);
  char *text = rdt_read_file(path, NULL);
  int n = 0;
  for (char *line = text ? strtok(text, "\n") : NULL; line && n < max; line = strtok(NULL, "\n")) {
    rdt_json *j = rdt_json_parse(line, strlen(line));
    const rdt_json *l = j ? rdt_json_get(j, "loss") : NULL;
    if (l && l->type == RDT_JSON_NUMBER) loss[n++] = l->number;
    rdt_json_free(j);
  }
  free(text);
  return n;
}

/* Does the file contain the text? */
static inline int fx_file_has(const char *path, const char *text) {
  char *s = rdt_read_file(path, NULL);
  int found = s && strstr(s, text) != NULL;
  free(s);
  return found;
}

#endif
