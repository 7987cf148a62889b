/* sim/demo_file.c: LIBERO demonstration files from simulator rollouts (see demo_file.h). */
#include "sim/demo_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "rdt_build.h"

/* ------------------------------------------------------------------ demonstrations in memory */

void sim_demo_init(sim_demo *d, int state_width, int image_size) {
  memset(d, 0, sizeof *d);
  d->state_width = state_width;
  d->image_size = image_size;
}

void sim_demo_free(sim_demo *d) {
  free(d->actions), free(d->states), free(d->joint_states), free(d->gripper_states);
  free(d->ee_pos), free(d->ee_ori), free(d->ee_quat), free(d->agentview), free(d->eye_in_hand);
  memset(d, 0, sizeof *d);
}

void sim_demo_clear(sim_demo *d) { d->length = 0; }

/* Room for one more step in every array. */
static void sim_demo_grow(sim_demo *d) {
  if (d->length < d->capacity) return;
  size_t n = d->capacity ? 2 * (size_t)d->capacity : 128, img = (size_t)d->image_size * d->image_size * 3;
  d->actions = rdt_realloc(d->actions, n * SIM_ACTION_DIM * sizeof(double));
  d->states = rdt_realloc(d->states, n * (size_t)d->state_width * sizeof(double));
  d->joint_states = rdt_realloc(d->joint_states, n * 7 * sizeof(double));
  d->gripper_states = rdt_realloc(d->gripper_states, n * 2 * sizeof(double));
  d->ee_pos = rdt_realloc(d->ee_pos, n * 3 * sizeof(double));
  d->ee_ori = rdt_realloc(d->ee_ori, n * 3 * sizeof(double));
  d->ee_quat = rdt_realloc(d->ee_quat, n * 4 * sizeof(double));
  d->agentview = rdt_realloc(d->agentview, n * img);
  d->eye_in_hand = rdt_realloc(d->eye_in_hand, n * img);
  d->capacity = (int)n;
}

void sim_demo_push(sim_demo *d, const double *state, const double action[SIM_ACTION_DIM], const sim_obs *obs) {
  RDT_ASSERT(obs->agentview && obs->eye_in_hand && obs->image_size == d->image_size);
  sim_demo_grow(d);
  size_t t = (size_t)d->length++, img = (size_t)d->image_size * d->image_size * 3;
  memcpy(d->actions + t * SIM_ACTION_DIM, action, SIM_ACTION_DIM * sizeof(double));
  memcpy(d->states + t * d->state_width, state, (size_t)d->state_width * sizeof(double));
  memcpy(d->joint_states + t * 7, obs->joint_pos, 7 * sizeof(double));
  memcpy(d->gripper_states + t * 2, obs->gripper_qpos, 2 * sizeof(double));
  memcpy(d->ee_pos + t * 3, obs->eef_pos, 3 * sizeof(double));
  memcpy(d->ee_ori + t * 3, obs->eef_axisangle, 3 * sizeof(double));
  memcpy(d->ee_quat + t * 4, obs->eef_quat, 4 * sizeof(double));
  memcpy(d->agentview + t * img, obs->agentview, img);
  memcpy(d->eye_in_hand + t * img, obs->eye_in_hand, img);
}

#if RDT_HAVE_HDF5
#include <hdf5.h>

/* ------------------------------------------------------------------ HDF5 helpers */

struct sim_demo_file {
  char *path, *tmp;
  hid_t fid, data;
  int num_demos;
  int64_t total;
  int failed;
};

/* A variable-length UTF-8 string attribute (as h5py writes str). */
static int h5w_str_attr(hid_t obj, const char *name, const char *value) {
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, H5T_VARIABLE);
  H5Tset_cset(ty, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, ty, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
  return rc < 0 ? -1 : 0;
}

/* An int64 scalar attribute. */
static int h5w_int_attr(hid_t obj, const char *name, int64_t value) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return rc < 0 ? -1 : 0;
}

/* A float64 vector attribute. */
static int h5w_vec_attr(hid_t obj, const char *name, const double *v, int n) {
  hsize_t dim = (hsize_t)n;
  hid_t sp = H5Screate_simple(1, &dim, NULL);
  hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return rc < 0 ? -1 : 0;
}

/* A dataset of rank dims from memory of type mem, stored as file type ftype. */
static int h5w_dataset(hid_t g, const char *name, hid_t ftype, hid_t mem, int rank, const hsize_t *dims, const void *v) {
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = d < 0 ? -1 : H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  return rc < 0 ? -1 : 0;
}

/* A (T, cols) float64 dataset. */
static int h5w_rows(hid_t g, const char *name, const double *v, int T, int cols) {
  hsize_t dims[2] = {(hsize_t)T, (hsize_t)cols};
  return h5w_dataset(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, v);
}

/* A (T, S, S, 3) uint8 image dataset. */
static int h5w_images(hid_t g, const char *name, const uint8_t *v, int T, int S) {
  hsize_t dims[4] = {(hsize_t)T, (hsize_t)S, (hsize_t)S, 3};
  return h5w_dataset(g, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, v);
}

/* ------------------------------------------------------------------ the file */

/* Close the HDF5 handles (idempotent). */
static void demo_file_close(sim_demo_file *f) {
  if (f->data >= 0) H5Gclose(f->data);
  if (f->fid >= 0) H5Fclose(f->fid);
  f->data = f->fid = -1;
}

static void demo_file_free(sim_demo_file *f) {
  free(f->path);
  free(f->tmp);
  free(f);
}

sim_demo_file *sim_demo_file_create(const char *path, const sim_demo_meta *m) {
  sim_demo_file *f = rdt_calloc(1, sizeof *f);
  f->path = rdt_strdup(path);
  f->tmp = rdt_malloc(strlen(path) + 8);
  sprintf(f->tmp, "%s.tmp", path);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  f->fid = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  f->data = f->fid < 0 ? -1 : H5Gcreate2(f->fid, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = f->data < 0 ? -1 : 0;
  const char *names[] = {"env_name", "problem_info", "bddl_file_name", "bddl_file_content", "env_args", "rdt_collect"};
  const char *values[] = {m->env_name, m->problem_info, m->bddl_file_name, m->bddl_file_content, m->env_args,
                          m->collect_info};
  for (int i = 0; i < 6 && !rc; i++) rc = h5w_str_attr(f->data, names[i], values[i]);
  if (!rc) rc = h5w_str_attr(f->data, "macros_image_convention", "opengl");
  if (rc) {
    rdt_fail("%s: cannot create the HDF5 file (folder missing or not writable?)", f->tmp);
    sim_demo_file_abort(f);
    return NULL;
  }
  return f;
}

/* Write one demo group. */
static int demo_file_write(sim_demo_file *f, const sim_demo *d) {
  char name[32];
  snprintf(name, sizeof name, "demo_%d", f->num_demos);
  int T = d->length, S = d->image_size;
  hid_t g = H5Gcreate2(f->data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t o = g < 0 ? -1 : H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = o < 0 ? -1 : 0;
  double *robot = rdt_malloc(sizeof(double) * 9 * (size_t)T), *ee = rdt_malloc(sizeof(double) * 6 * (size_t)T);
  uint8_t *flags = rdt_calloc((size_t)T, 1);
  for (int t = 0; t < T; t++) {
    memcpy(robot + 9 * t, d->gripper_states + 2 * t, 2 * sizeof(double));
    memcpy(robot + 9 * t + 2, d->ee_pos + 3 * t, 3 * sizeof(double));
    memcpy(robot + 9 * t + 5, d->ee_quat + 4 * t, 4 * sizeof(double));
    memcpy(ee + 6 * t, d->ee_pos + 3 * t, 3 * sizeof(double));
    memcpy(ee + 6 * t + 3, d->ee_ori + 3 * t, 3 * sizeof(double));
  }
  flags[T - 1] = 1;
  hsize_t len = (hsize_t)T;
  if (!rc) rc = h5w_rows(g, "actions", d->actions, T, SIM_ACTION_DIM);
  if (!rc) rc = h5w_rows(g, "states", d->states, T, d->state_width);
  if (!rc) rc = h5w_rows(g, "robot_states", robot, T, 9);
  if (!rc) rc = h5w_dataset(g, "rewards", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &len, flags);
  if (!rc) rc = h5w_dataset(g, "dones", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &len, flags);
  if (!rc) rc = h5w_rows(o, "gripper_states", d->gripper_states, T, 2);
  if (!rc) rc = h5w_rows(o, "joint_states", d->joint_states, T, 7);
  if (!rc) rc = h5w_rows(o, "ee_states", ee, T, 6);
  if (!rc) rc = h5w_rows(o, "ee_pos", d->ee_pos, T, 3);
  if (!rc) rc = h5w_rows(o, "ee_ori", d->ee_ori, T, 3);
  if (!rc) rc = h5w_images(o, "agentview_rgb", d->agentview, T, S);
  if (!rc) rc = h5w_images(o, "eye_in_hand_rgb", d->eye_in_hand, T, S);
  if (!rc) rc = h5w_int_attr(g, "num_samples", T);
  if (!rc) rc = h5w_vec_attr(g, "init_state", d->states, d->state_width);
  if (!rc) rc = h5w_int_attr(g, "init_index", d->init_index);
  free(robot), free(ee), free(flags);
  if (o >= 0) H5Gclose(o);
  if (g >= 0) H5Gclose(g);
  return rc;
}

int sim_demo_file_add(sim_demo_file *f, const sim_demo *d) {
  RDT_CHECK(d->length > 0, "%s: an empty demonstration", f->path);
  if (demo_file_write(f, d)) {
    f->failed = 1;
    return rdt_fail("%s: writing demo_%d failed (disk full?)", f->tmp, f->num_demos);
  }
  f->num_demos++;
  f->total += d->length;
  return 0;
}

int sim_demo_file_commit(sim_demo_file *f) {
  int rc = f->failed ? rdt_fail("%s: an earlier write failed", f->tmp) : 0;
  if (!rc && (h5w_int_attr(f->data, "num_demos", f->num_demos) || h5w_int_attr(f->data, "total", f->total)))
    rc = rdt_fail("%s: writing the data attributes failed", f->tmp);
  if (f->data >= 0 && H5Gclose(f->data) < 0 && !rc) rc = rdt_fail("%s: closing data failed", f->tmp);
  f->data = -1;
  if (f->fid >= 0 && H5Fclose(f->fid) < 0 && !rc) rc = rdt_fail("%s: closing the file failed (disk full?)", f->tmp);
  f->fid = -1;
  int fd = rc ? -1 : open(f->tmp, O_RDONLY);
  if (!rc && (fd < 0 || fsync(fd))) rc = rdt_fail("%s: cannot sync the file", f->tmp);
  if (fd >= 0) close(fd);
  if (!rc && rename(f->tmp, f->path)) rc = rdt_fail("%s: cannot rename to %s", f->tmp, f->path);
  if (rc) {
    sim_demo_file_abort(f);
    return -1;
  }
  char *dir = rdt_dirname(f->path);
  rdt_fsync_dir(dir);
  free(dir);
  demo_file_free(f);
  return 0;
}

void sim_demo_file_abort(sim_demo_file *f) {
  demo_file_close(f);
  unlink(f->tmp);
  demo_file_free(f);
}

#else /* no HDF5 */

struct sim_demo_file {
  int unused;
};

sim_demo_file *sim_demo_file_create(const char *path, const sim_demo_meta *m) {
  (void)m;
  return rdt_fail("%s: writing LIBERO demonstration files needs libhdf5; install it (Debian: libhdf5-dev) and "
                  "rebuild rdt", path), NULL;
}
int sim_demo_file_add(sim_demo_file *f, const sim_demo *d) { return (void)f, (void)d, -1; }
int sim_demo_file_commit(sim_demo_file *f) { return (void)f, -1; }
void sim_demo_file_abort(sim_demo_file *f) { (void)f; }

#endif
