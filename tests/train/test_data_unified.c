/* Unified vector: rotation helpers against closed forms and scipy values,
 * round trips, the LIBERO formats and their inverse, and the model-input
 * layout of rdt_obs_to_model_input. */
#include <stdint.h>
#include "core/error.h"
#include "model/unified.h"
#include "test.h"

static void check_mat(const double *a, const double *b, double tol) {
  for (int i = 0; i < 9; i++) CHECK_NEAR(a[i], b[i], tol);
}

/* A random rotation from a random unit quaternion. */
static void random_rot(rdt_rng *r, double R[9], double q[4]) {
  double n = 0;
  for (int i = 0; i < 4; i++) q[i] = rdt_rng_normal(r), n += q[i] * q[i];
  for (int i = 0; i < 4; i++) q[i] /= sqrt(n);
  rdt_rot_from_quat(q, R);
}

/* Closed forms: 90 degrees about z; scipy's from_euler('xyz') and
 * from_quat/as_euler/as_rotvec values (scipy 1.17). */
static void t_known_rotations(void) {
  const double s = sqrt(0.5), qz[4] = {0, 0, s, s}, Rz[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1};
  double R[9], v[3], e[3], d[6], q[4];
  rdt_rot_from_quat(qz, R);
  check_mat(R, Rz, 1e-15);
  rdt_rot_to_axisangle(R, v);
  CHECK_NEAR(v[0], 0, 1e-15);
  CHECK_NEAR(v[2], M_PI / 2, 1e-15);
  rdt_rot_to_6d(R, d);   /* [R00, R10, R20, R01, R11, R21] */
  const double d_want[6] = {0, 1, 0, -1, 0, 0};
  for (int i = 0; i < 6; i++) CHECK_NEAR(d[i], d_want[i], 1e-15);

  const double e1[3] = {0.1, -0.2, 0.3};
  const double scipy_R[9] = {0.9362933635841991, -0.3129918257854679, -0.1593450793079779,
                             0.2896294776255155, 0.9447024859948941, -0.1537919979889642,
                             0.19866933079506124, 0.0978433950072557, 0.9751703272018157};
  rdt_rot_from_euler_xyz(e1, R);
  check_mat(R, scipy_R, 1e-15);

  const double q2[4] = {0.2, -0.4, 0.1, 0.8};
  const double scipy_R2[9] = {0.6, -0.3764705882352941, -0.7058823529411764, 0.0, 0.8823529411764706,
                              -0.47058823529411764, 0.8, 0.2823529411764706, 0.5294117647058824};
  const double scipy_e2[3] = {0.4899573262537283, -0.9272952180016122, 0.0};
  const double scipy_v2[3] = {0.45406419481852794, -0.9081283896370559, 0.22703209740926397};
  rdt_rot_from_quat(q2, R);
  check_mat(R, scipy_R2, 1e-15);
  rdt_rot_to_euler_xyz(R, e);
  for (int i = 0; i < 3; i++) CHECK_NEAR(e[i], scipy_e2[i], 1e-14);
  rdt_rot_to_axisangle(R, v);
  for (int i = 0; i < 3; i++) CHECK_NEAR(v[i], scipy_v2[i], 1e-14);
  rdt_quat_to_axisangle(q2, v);   /* |q2| = 0.9220: robosuite does not normalise */
  double ang = 2 * acos(0.8), den = sqrt(1 - 0.64);
  CHECK_NEAR(v[0], 0.2 * ang / den, 1e-15);
  CHECK_NEAR(v[1], -0.4 * ang / den, 1e-15);
  /* robosuite's angle exceeds pi for w < 0; the rotation is the same */
  const double qn[4] = {0, 0, sin(0.4), -cos(0.4)};
  rdt_quat_to_axisangle(qn, v);
  CHECK_NEAR(v[2], 2 * acos(-cos(0.4)), 1e-14);
  double R1[9], R2[9];
  rdt_rot_from_axisangle(v, R1);
  rdt_rot_from_quat(qn, R2);
  check_mat(R1, R2, 1e-14);
  const double q1[4] = {0, 0, 0, 1};
  rdt_quat_to_axisangle(q1, v);
  CHECK(v[0] == 0 && v[1] == 0 && v[2] == 0);
  rdt_rot_to_quat(Rz, q);
  CHECK_NEAR(q[2], s, 1e-15);
  CHECK_NEAR(q[3], s, 1e-15);
  /* gimbal lock: e1 = pi/2, e0 set to 0, the rotation kept */
  const double eg[3] = {0.3, M_PI / 2, 0.5};
  rdt_rot_from_euler_xyz(eg, R1);
  rdt_rot_to_euler_xyz(R1, e);
  CHECK_NEAR(e[0], 0, 0);
  CHECK_NEAR(e[1], M_PI / 2, 1e-7);
  rdt_rot_from_euler_xyz(e, R2);
  check_mat(R1, R2, 1e-7);
}

static void t_round_trips(void) {
  rdt_rng r;
  rdt_rng_seed(&r, 11, 0);
  for (int it = 0; it < 2000; it++) {
    double R[9], R2[9], q[4], q2[4], v[3], e[3], d[6];
    random_rot(&r, R, q);
    rdt_rot_to_quat(R, q2);   /* equal up to sign */
    double sgn = q[3] < 0 ? -1 : 1;
    for (int i = 0; i < 4; i++) CHECK_NEAR(q2[i], sgn * q[i], 1e-12);
    rdt_rot_to_axisangle(R, v);
    CHECK(sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) <= M_PI + 1e-12);
    rdt_rot_from_axisangle(v, R2);
    check_mat(R2, R, 1e-12);
    rdt_quat_to_axisangle(q, v);   /* robosuite's form, any sign of w */
    rdt_rot_from_axisangle(v, R2);
    check_mat(R2, R, 1e-12);
    rdt_rot_to_euler_xyz(R, e);
    rdt_rot_from_euler_xyz(e, R2);
    check_mat(R2, R, 1e-11);
    rdt_rot_to_6d(R, d);
    rdt_rot_from_6d(d, R2);
    check_mat(R2, R, 1e-14);
    /* Gram-Schmidt of a perturbed 6D: orthonormal, det 1, x along the first column */
    for (int i = 0; i < 6; i++) d[i] = 1.7 * d[i] + 0.1 * rdt_rng_normal(&r);
    rdt_rot_from_6d(d, R2);
    double n0 = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int i = 0; i < 3; i++) CHECK_NEAR(R2[i * 3], d[i] / n0, 1e-12);
    double det = R2[0] * (R2[4] * R2[8] - R2[5] * R2[7]) - R2[1] * (R2[3] * R2[8] - R2[5] * R2[6]) +
                 R2[2] * (R2[3] * R2[7] - R2[4] * R2[6]);
    CHECK_NEAR(det, 1, 1e-12);
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) {
        double dot = 0;
        for (int k = 0; k < 3; k++) dot += R2[k * 3 + a] * R2[k * 3 + b];
        CHECK_NEAR(dot, a == b, 1e-12);
      }
    /* Euler angles inside (-pi/2, pi/2) for the middle one come back exactly */
    double eo[3] = {(rdt_rng_uniform(&r) - 0.5) * 6, (rdt_rng_uniform(&r) - 0.5) * 3, (rdt_rng_uniform(&r) - 0.5) * 6};
    rdt_rot_from_euler_xyz(eo, R);
    rdt_rot_to_euler_xyz(R, e);
    for (int i = 0; i < 3; i++) CHECK_NEAR(e[i], eo[i], 1e-9);
  }
}

static const rdt_raw_obs *sample_obs(void) {
  static rdt_raw_obs o = {
    .joint_pos = {0.1, -0.2, 0.3, -2.4, 0.5, 2.2, 0.7},
    .gripper_qpos = {0.03, -0.025},
    .eef_pos = {0.4, -0.1, 1.2},
    .eef_ori = {0, 0, 0.3},   /* axis-angle: 0.3 rad about z */
  };
  return &o;
}

/* libero_delta state: joints 0..6, opening (q1-q2)/0.08 at 10, position, 6D of Rz(0.3). */
static void t_state(void) {
  const rdt_uni_format *f = rdt_uni_format_default();
  const rdt_raw_obs *o = sample_obs();
  float s[128], m[128];
  CHECK(!strcmp(f->name, "libero_delta"));
  rdt_uni_state(f, o, s);
  rdt_uni_state_mask(f, m);
  for (int i = 0; i < 7; i++) CHECK_NEAR(s[i], o->joint_pos[i], 1e-7);
  CHECK_NEAR(s[10], 0.055 / 0.08, 1e-7);
  for (int i = 0; i < 3; i++) CHECK_NEAR(s[30 + i], o->eef_pos[i], 1e-7);
  const double d6[6] = {cos(0.3), sin(0.3), 0, -sin(0.3), cos(0.3), 0};
  for (int i = 0; i < 6; i++) CHECK_NEAR(s[33 + i], d6[i], 1e-7);
  int ones = 0;
  for (int i = 0; i < 128; i++) {
    int want = i < 7 || i == 10 || (i >= 30 && i <= 38);
    CHECK(m[i] == want);
    if (!want) CHECK(s[i] == 0);
    ones += m[i] == 1;
  }
  CHECK(ones == 17);
  /* the fork's format: raw first finger, ee_ori read as Euler xyz */
  const rdt_uni_format *fork = rdt_uni_format_find("libero_fork");
  rdt_raw_obs o2 = *o;
  o2.eef_ori[0] = 0.2;   /* Euler (0.2, 0, 0.3): Rz(0.3) Rx(0.2) */
  rdt_uni_state(fork, &o2, s);
  CHECK_NEAR(s[10], 0.03, 1e-7);
  const double df[6] = {cos(0.3), sin(0.3), 0, -sin(0.3) * cos(0.2), cos(0.3) * cos(0.2), sin(0.2)};
  for (int i = 0; i < 6; i++) CHECK_NEAR(s[33 + i], df[i], 1e-7);
  CHECK(rdt_uni_format_find("libero_abs") != NULL);
  CHECK(rdt_uni_format_find("nope") == NULL);
  CHECK(strstr(rdt_error(), "libero_delta") != NULL);
}

/* Delta actions: x1.2, Euler x0.5 -> 6D, (g+1)/2; the inverse returns the action. */
static void t_delta_action(void) {
  const rdt_uni_format *f = rdt_uni_format_default();
  const double a[7] = {0.5, -0.25, 1, 0, 0, 0.6, -1};
  double back[7];
  float v[128], m[128];
  rdt_uni_action(f, a, NULL, NULL, v);
  CHECK_NEAR(v[30], 0.6, 1e-7);
  CHECK_NEAR(v[31], -0.3, 1e-7);
  CHECK_NEAR(v[32], 1.2, 1e-7);
  const double d6[6] = {cos(0.3), sin(0.3), 0, -sin(0.3), cos(0.3), 0};   /* Rz(0.6 * 0.5) */
  for (int i = 0; i < 6; i++) CHECK_NEAR(v[33 + i], d6[i], 1e-7);
  CHECK(v[10] == 0);
  rdt_uni_action_mask(f, m);
  for (int i = 0; i < 128; i++) {
    CHECK(m[i] == (i == 10 || (i >= 30 && i <= 38)));
    if (!m[i]) CHECK(v[i] == 0);
  }
  rdt_uni_action_to_libero(f, v, NULL, back);
  for (int i = 0; i < 7; i++) CHECK_NEAR(back[i], a[i], 1e-6);
  /* every component, random actions in [-1, 1] */
  rdt_rng r;
  rdt_rng_seed(&r, 3, 0);
  for (int it = 0; it < 500; it++) {
    double x[7];
    for (int i = 0; i < 7; i++) x[i] = 2 * rdt_rng_uniform(&r) - 1;
    rdt_uni_action(f, x, NULL, NULL, v);
    CHECK_NEAR(v[10], (x[6] + 1) / 2, 1e-7);
    rdt_uni_action_to_libero(f, v, NULL, back);
    for (int i = 0; i < 7; i++) CHECK_NEAR(back[i], x[i], 2e-6);
  }
  /* clipping: a position of 2.4 reads back as 2, clipped to 1; a gripper of 1.5 as 2 -> 1 */
  v[30] = 2.4f, v[10] = 1.5f;
  rdt_uni_action_to_libero(f, v, NULL, back);
  CHECK(back[0] == 1 && back[6] == 1);
}

/* Absolute actions: the reached pose; the inverse is the error to the current
 * pose over 0.05 m / 0.5 rad. */
static void t_abs_action(void) {
  const rdt_uni_format *f = rdt_uni_format_find("libero_abs");
  const rdt_raw_obs *o = sample_obs();
  const double pos[3] = {o->eef_pos[0] + 0.01, o->eef_pos[1], o->eef_pos[2] - 0.02};
  const double ori[3] = {0, 0, 0.3 + 0.1};   /* a further 0.1 rad about world z */
  const double a[7] = {0, 0, 0, 0, 0, 0, 1};
  double back[7];
  float v[128];
  rdt_uni_action(f, a, pos, ori, v);
  CHECK_NEAR(v[30], pos[0], 1e-7);
  CHECK_NEAR(v[33], cos(0.4), 1e-7);
  CHECK(v[10] == 0);   /* close command = opening 0 */
  rdt_uni_action_to_libero(f, v, o, back);
  const double want[7] = {0.2, 0, -0.4, 0, 0, 0.2, 1};
  for (int i = 0; i < 7; i++) CHECK_NEAR(back[i], want[i], 3e-6);
}

/* Model inputs: state, mask, image order (t-1 then t; exterior, right wrist,
 * left wrist), missing images = background with valid 0. */
static void t_model_input(void) {
  rdt_image_cfg ic;
  rdt_image_cfg_init(&ic, 2);
  uint8_t img[4][2 * 2 * 3];
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 12; i++) img[k][i] = (uint8_t)(20 * k + i);
  rdt_raw_obs o = *sample_obs();
  o.h = o.w = 2;
  o.image[RDT_CAM_AGENTVIEW][1] = img[0];
  o.image[RDT_CAM_EYE_IN_HAND][0] = img[1];
  o.image[RDT_CAM_EYE_IN_HAND][1] = img[2];
  float images[6 * 12], s[128];
  rdt_model_input in = {.images = images};
  CHECK(rdt_obs_to_model_input(rdt_uni_format_default(), &ic, &o, NULL, &in) == 0);
  rdt_uni_state(rdt_uni_format_default(), &o, s);
  CHECK(!memcmp(s, in.state, sizeof s));
  const uint8_t valid[6] = {0, 1, 0, 1, 1, 0};
  const int src[6] = {-1, 1, -1, 0, 2, -1};
  for (int i = 0; i < 6; i++) {
    CHECK(in.image_valid[i] == valid[i]);
    if (src[i] < 0) {
      CHECK(rdt_image_is_background(&ic, images + i * 12));
      continue;
    }
    /* rotated 180 degrees: output pixel (y, x) = input (1-y, 1-x) */
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < 4; p++)
        CHECK_NEAR(images[i * 12 + ch * 4 + p], img[src[i]][(3 - p) * 3 + ch] / 255.0 * 2 - 1, 1e-6);
  }
}

int main(void) {
  RUN(t_known_rotations);
  RUN(t_round_trips);
  RUN(t_state);
  RUN(t_delta_action);
  RUN(t_abs_action);
  RUN(t_model_input);
  return test_done();
}
