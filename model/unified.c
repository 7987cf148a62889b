/* model/unified.c: the unified 128-dim vector, LIBERO formats, rotations, and
 * the raw observation -> model input mapping shared by training and evaluation. */
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "model/unified.h"

/* ================================================================ rotations */

/* Rotation matrix of a quaternion (x, y, z, w), normalised first. */
void rdt_rot_from_quat(const double q[4], double R[9]) {
  double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  double x = q[0] / n, y = q[1] / n, z = q[2] / n, w = q[3] / n;
  R[0] = 1 - 2 * (y * y + z * z); R[1] = 2 * (x * y - z * w);     R[2] = 2 * (x * z + y * w);
  R[3] = 2 * (x * y + z * w);     R[4] = 1 - 2 * (x * x + z * z); R[5] = 2 * (y * z - x * w);
  R[6] = 2 * (x * z - y * w);     R[7] = 2 * (y * z + x * w);     R[8] = 1 - 2 * (x * x + y * y);
}

/* Quaternion (x, y, z, w) of a rotation matrix with w >= 0 (Shepperd's method:
 * branch on the largest of w, x, y, z for accuracy). */
void rdt_rot_to_quat(const double R[9], double q[4]) {
  double tr = R[0] + R[4] + R[8], s;
  if (tr >= R[0] && tr >= R[4] && tr >= R[8]) {
    s = 2 * sqrt(1 + tr);
    q[3] = s / 4, q[0] = (R[7] - R[5]) / s, q[1] = (R[2] - R[6]) / s, q[2] = (R[3] - R[1]) / s;
  } else if (R[0] >= R[4] && R[0] >= R[8]) {
    s = 2 * sqrt(1 + R[0] - R[4] - R[8]);
    q[0] = s / 4, q[1] = (R[1] + R[3]) / s, q[2] = (R[2] + R[6]) / s, q[3] = (R[7] - R[5]) / s;
  } else if (R[4] >= R[8]) {
    s = 2 * sqrt(1 + R[4] - R[0] - R[8]);
    q[1] = s / 4, q[0] = (R[1] + R[3]) / s, q[2] = (R[5] + R[7]) / s, q[3] = (R[2] - R[6]) / s;
  } else {
    s = 2 * sqrt(1 + R[8] - R[0] - R[4]);
    q[2] = s / 4, q[0] = (R[2] + R[6]) / s, q[1] = (R[5] + R[7]) / s, q[3] = (R[3] - R[1]) / s;
  }
  if (q[3] < 0) for (int i = 0; i < 4; i++) q[i] = -q[i];
}

/* Rodrigues' formula R = I + sin(a) K + (1 - cos(a)) K^2 for v = a * axis. */
void rdt_rot_from_axisangle(const double v[3], double R[9]) {
  double a = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (a < 1e-300) {
    static const double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(R, I, sizeof I);
    return;
  }
  double x = v[0] / a, y = v[1] / a, z = v[2] / a, s = sin(a), c = 1 - cos(a);
  R[0] = 1 - c * (y * y + z * z); R[1] = -s * z + c * x * y;     R[2] = s * y + c * x * z;
  R[3] = s * z + c * x * y;       R[4] = 1 - c * (x * x + z * z); R[5] = -s * x + c * y * z;
  R[6] = -s * y + c * x * z;      R[7] = s * x + c * y * z;       R[8] = 1 - c * (x * x + y * y);
}

/* Axis-angle with the angle in [0, pi], through the quaternion (stable near 0 and pi). */
void rdt_rot_to_axisangle(const double R[9], double v[3]) {
  double q[4];
  rdt_rot_to_quat(R, q);
  double s = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
  double a = 2 * atan2(s, q[3]);
  double k = s > 1e-300 ? a / s : 2.0;   /* a / sin(a/2) -> 2 as a -> 0 */
  for (int i = 0; i < 3; i++) v[i] = q[i] * k;
}

/* robosuite quat2axisangle: clip w to [-1, 1]; den = sqrt(1 - w^2); zeros if
 * den is close to 0 (math.isclose(den, 0.0): abs_tol 0, so only den == 0);
 * else xyz * 2 acos(w) / den. */
void rdt_quat_to_axisangle(const double q[4], double v[3]) {
  double w = q[3] > 1 ? 1 : q[3] < -1 ? -1 : q[3];
  double den = sqrt(1 - w * w);
  if (den == 0) {
    v[0] = v[1] = v[2] = 0;
    return;
  }
  double k = 2 * acos(w) / den;
  for (int i = 0; i < 3; i++) v[i] = q[i] * k;
}

/* R = Rz(e2) Ry(e1) Rx(e0), expanded. */
void rdt_rot_from_euler_xyz(const double e[3], double R[9]) {
  double ca = cos(e[0]), sa = sin(e[0]), cb = cos(e[1]), sb = sin(e[1]);
  double cc = cos(e[2]), sc = sin(e[2]);
  R[0] = cc * cb; R[1] = cc * sb * sa - sc * ca; R[2] = cc * sb * ca + sc * sa;
  R[3] = sc * cb; R[4] = sc * sb * sa + cc * ca; R[5] = sc * sb * ca - cc * sa;
  R[6] = -sb;     R[7] = cb * sa;                R[8] = cb * ca;
}

/* Inverse of the above: R20 = -sin e1, (R21, R22) ~ (sin e0, cos e0),
 * (R10, R00) ~ (sin e2, cos e2).  At gimbal lock e0 = 0 and e2 comes from
 * (R01, R11) = (-sin e2, cos e2). */
void rdt_rot_to_euler_xyz(const double R[9], double e[3]) {
  double cb = sqrt(R[0] * R[0] + R[3] * R[3]);
  e[1] = atan2(-R[6], cb);
  if (cb > 1e-12) {
    e[0] = atan2(R[7], R[8]);
    e[2] = atan2(R[3], R[0]);
  } else {
    e[0] = 0;
    e[2] = atan2(-R[1], R[4]);
  }
}

/* First two columns, column by column. */
void rdt_rot_to_6d(const double R[9], double d[6]) {
  d[0] = R[0], d[1] = R[3], d[2] = R[6];
  d[3] = R[1], d[4] = R[4], d[5] = R[7];
}

/* v / max(|v|, 1e-8), as upstream normalize_vector. */
static void unit3(double v[3]) {
  double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n < 1e-8) n = 1e-8;
  for (int i = 0; i < 3; i++) v[i] /= n;
}

static void cross3(const double a[3], const double b[3], double out[3]) {
  out[0] = a[1] * b[2] - a[2] * b[1];
  out[1] = a[2] * b[0] - a[0] * b[2];
  out[2] = a[0] * b[1] - a[1] * b[0];
}

/* Gram-Schmidt back from 6D: columns x, y, z. */
void rdt_rot_from_6d(const double d[6], double R[9]) {
  double x[3] = {d[0], d[1], d[2]}, z[3], y[3];
  unit3(x);
  cross3(x, d + 3, z);
  unit3(z);
  cross3(z, x, y);
  for (int i = 0; i < 3; i++) R[i * 3 + 0] = x[i], R[i * 3 + 1] = y[i], R[i * 3 + 2] = z[i];
}

/* ================================================================ formats */

static const rdt_uni_format formats[] = {
  {"libero_delta",
   "LIBERO recipe: joints, gripper opening, eef pose (6D); delta actions x1.2 / x0.5 Euler->6D / (g+1)/2",
   RDT_GRIP_OPENING, RDT_ORI_AXISANGLE, RDT_ACT_DELTA, 1.2, 0.5},
  {"libero_fork",
   "zxy6677 fork data: as libero_delta, but gripper = finger 1 position, ee_ori read as Euler xyz",
   RDT_GRIP_FINGER0, RDT_ORI_EULER_XYZ, RDT_ACT_DELTA, 1.2, 0.5},
  {"libero_abs",
   "absolute: state as libero_delta; actions = eef pose reached (6D) and gripper opening command (1-g)/2",
   RDT_GRIP_OPENING, RDT_ORI_AXISANGLE, RDT_ACT_ABS, 1.0, 1.0},
};
#define NFORMATS ((int)(sizeof formats / sizeof formats[0]))

/* The gripper opening normaliser: the two Panda fingers travel 0.04 m each. */
#define PANDA_GRIPPER_SPAN 0.08
/* robosuite OSC_POSE scales of a unit action: 0.05 m, 0.5 rad. */
#define OSC_POS_SCALE 0.05
#define OSC_ROT_SCALE 0.5

const char *rdt_uni_format_names(void) { return "libero_delta, libero_fork, libero_abs"; }

const rdt_uni_format *rdt_uni_format_default(void) { return &formats[0]; }

/* By name; NULL + error. */
const rdt_uni_format *rdt_uni_format_find(const char *name) {
  for (int i = 0; i < NFORMATS; i++)
    if (name && !strcmp(name, formats[i].name)) return &formats[i];
  rdt_fail("unknown unified format '%s' (known: %s)", name ? name : "", rdt_uni_format_names());
  return NULL;
}

/* dataset.unified_format, default libero_delta. */
const rdt_uni_format *rdt_uni_format_from_config(const rdt_config *c) {
  const char *name = NULL;
  int r = c ? rdt_config_get_str(c, "dataset.unified_format", &name) : 1;
  if (r < 0) {
    rdt_fail("dataset.unified_format: expected a string");
    return NULL;
  }
  return r == 1 ? rdt_uni_format_default() : rdt_uni_format_find(name);
}

/* ================================================================ state and actions */

/* Rotation of the stored orientation triple, read as the format says. */
static void state_rotation(const rdt_uni_format *f, const double ori[3], double R[9]) {
  if (f->state_ori == RDT_ORI_EULER_XYZ) rdt_rot_from_euler_xyz(ori, R);
  else rdt_rot_from_axisangle(ori, R);
}

/* Write a pose (position, rotation) into slots 30..38. */
static void put_pose(float *v, const double pos[3], const double R[9]) {
  double d[6];
  rdt_rot_to_6d(R, d);
  for (int i = 0; i < 3; i++) v[RDT_UNI_EEF_POS + i] = (float)pos[i];
  for (int i = 0; i < 6; i++) v[RDT_UNI_EEF_6D + i] = (float)d[i];
}

/* The state vector. */
void rdt_uni_state(const rdt_uni_format *f, const rdt_raw_obs *o, float state[RDT_UNI_DIM]) {
  double R[9];
  memset(state, 0, RDT_UNI_DIM * sizeof *state);
  for (int i = 0; i < 7; i++) state[RDT_UNI_JOINT0 + i] = (float)o->joint_pos[i];
  state[RDT_UNI_GRIPPER] = (float)(f->gripper == RDT_GRIP_FINGER0
                                       ? o->gripper_qpos[0]
                                       : (o->gripper_qpos[0] - o->gripper_qpos[1]) / PANDA_GRIPPER_SPAN);
  state_rotation(f, o->eef_ori, R);
  put_pose(state, o->eef_pos, R);
}

/* Set mask[lo..hi] to 1. */
static void mask_range(float *mask, int lo, int hi) {
  for (int i = lo; i <= hi; i++) mask[i] = 1;
}

/* 1 at 0..6, 10, 30..38 (every format fills the same state slots). */
void rdt_uni_state_mask(const rdt_uni_format *f, float mask[RDT_UNI_DIM]) {
  (void)f;
  memset(mask, 0, RDT_UNI_DIM * sizeof *mask);
  mask_range(mask, RDT_UNI_JOINT0, RDT_UNI_JOINT0 + 6);
  mask_range(mask, RDT_UNI_GRIPPER, RDT_UNI_GRIPPER);
  mask_range(mask, RDT_UNI_EEF_POS, RDT_UNI_EEF_6D + 5);
}

/* 1 at 10, 30..38. */
void rdt_uni_action_mask(const rdt_uni_format *f, float mask[RDT_UNI_DIM]) {
  (void)f;
  memset(mask, 0, RDT_UNI_DIM * sizeof *mask);
  mask_range(mask, RDT_UNI_GRIPPER, RDT_UNI_GRIPPER);
  mask_range(mask, RDT_UNI_EEF_POS, RDT_UNI_EEF_6D + 5);
}

/* One chunk element. */
void rdt_uni_action(const rdt_uni_format *f, const double a[7], const double pos[3],
                    const double ori[3], float out[RDT_UNI_DIM]) {
  double R[9], p[3];
  memset(out, 0, RDT_UNI_DIM * sizeof *out);
  if (f->action == RDT_ACT_ABS) {
    state_rotation(f, ori, R);
    put_pose(out, pos, R);
    out[RDT_UNI_GRIPPER] = (float)((1 - a[6]) / 2);
    return;
  }
  double e[3] = {a[3] * f->rot_scale, a[4] * f->rot_scale, a[5] * f->rot_scale};
  for (int i = 0; i < 3; i++) p[i] = a[i] * f->pos_scale;
  rdt_rot_from_euler_xyz(e, R);
  put_pose(out, p, R);
  out[RDT_UNI_GRIPPER] = (float)((a[6] + 1) / 2);
}

static double clip1(double x) { return x > 1 ? 1 : x < -1 ? -1 : x; }

/* Inverse for evaluation. */
void rdt_uni_action_to_libero(const rdt_uni_format *f, const float v[RDT_UNI_DIM],
                              const rdt_raw_obs *cur, double a[7]) {
  double d[6], R[9];
  for (int i = 0; i < 6; i++) d[i] = v[RDT_UNI_EEF_6D + i];
  rdt_rot_from_6d(d, R);
  if (f->action == RDT_ACT_ABS) {
    double Rc[9], Rd[9], w[3];
    state_rotation(f, cur->eef_ori, Rc);
    for (int i = 0; i < 3; i++)        /* Rd = R Rc^T: the world-frame rotation still to make */
      for (int j = 0; j < 3; j++)
        Rd[i * 3 + j] = R[i * 3] * Rc[j * 3] + R[i * 3 + 1] * Rc[j * 3 + 1] + R[i * 3 + 2] * Rc[j * 3 + 2];
    rdt_rot_to_axisangle(Rd, w);
    for (int i = 0; i < 3; i++) {
      a[i] = (v[RDT_UNI_EEF_POS + i] - cur->eef_pos[i]) / OSC_POS_SCALE;
      a[3 + i] = w[i] / OSC_ROT_SCALE;
    }
    a[6] = 1 - 2 * (double)v[RDT_UNI_GRIPPER];
  } else {
    double e[3];
    rdt_rot_to_euler_xyz(R, e);
    for (int i = 0; i < 3; i++) {
      a[i] = v[RDT_UNI_EEF_POS + i] / f->pos_scale;
      a[3 + i] = e[i] / f->rot_scale;
    }
    a[6] = 2 * (double)v[RDT_UNI_GRIPPER] - 1;
  }
  for (int i = 0; i < 7; i++) a[i] = clip1(a[i]);
}

/* ================================================================ model inputs */

/* The one mapping used by training and evaluation. */
int rdt_obs_to_model_input(const rdt_uni_format *f, const rdt_image_cfg *ic,
                           const rdt_raw_obs *o, rdt_rng *aug, rdt_model_input *in) {
  size_t per = (size_t)3 * ic->size * ic->size;
  rdt_uni_state(f, o, in->state);
  rdt_uni_state_mask(f, in->state_mask);
  for (int hist = 0; hist < RDT_IMG_HISTORY; hist++) {
    for (int cam = 0; cam < RDT_NUM_CAMERAS; cam++) {
      int i = hist * RDT_NUM_CAMERAS + cam;
      /* raw camera c feeds model camera c (agentview -> exterior, eye_in_hand -> right wrist) */
      const uint8_t *src = cam < RDT_RAW_CAMERAS ? o->image[cam][hist] : NULL;
      float *dst = in->images + (size_t)i * per;
      in->image_valid[i] = src != NULL;
      if (!src) {
        rdt_image_background(ic, dst);
        continue;
      }
      if (rdt_image_preprocess(ic, src, o->h, o->w, aug, dst) < 0)
        return rdt_fail_ctx("camera %d at t%s", cam, hist ? "" : "-1");
    }
  }
  return 0;
}
