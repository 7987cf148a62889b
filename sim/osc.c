/* sim/osc.c: robosuite 1.4.0 OSC_POSE and the Panda gripper (see osc.h).
 *
 * Mirrors controllers/osc.py, controllers/base_controller.py and
 * utils/control_utils.py: kp 150, kd 2*sqrt(kp)*1, delta inputs clipped to
 * [-1, 1] and scaled to 0.05 m / 0.5 rad, goal orientation changed only by a
 * non-zero rotation, uncoupled position/orientation with the operational-space
 * inertias from pseudo-inverses, gravity/Coriolis compensation from
 * qfrc_bias, nullspace torques toward the initial joints (kp 10, kv 2*sqrt(10)).
 */
#include "sim/osc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ------------------------------------------------------------------ small linear algebra */

/* C = A (n x k) * B (k x m). */
static void la_mul(double *C, const double *A, const double *B, int n, int k, int m) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double s = 0;
      for (int t = 0; t < k; t++) s += A[i * k + t] * B[t * m + j];
      C[i * m + j] = s;
    }
}

/* C = A (n x k) * B^T (B: m x k). */
static void la_mul_bt(double *C, const double *A, const double *B, int n, int k, int m) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double s = 0;
      for (int t = 0; t < k; t++) s += A[i * k + t] * B[j * k + t];
      C[i * m + j] = s;
    }
}

/* Inverse of an n x n matrix by Gauss-Jordan with partial pivoting (np.linalg.inv). */
static void la_inv(double *out, const double *A, int n) {
  double a[64 * 2];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2 * n; j++) a[i * 2 * n + j] = j < n ? A[i * n + j] : (j - n == i);
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(a[r * 2 * n + c]) > fabs(a[p * 2 * n + c])) p = r;
    if (p != c)
      for (int j = 0; j < 2 * n; j++) {
        double t = a[c * 2 * n + j];
        a[c * 2 * n + j] = a[p * 2 * n + j];
        a[p * 2 * n + j] = t;
      }
    double d = a[c * 2 * n + c];
    for (int j = 0; j < 2 * n; j++) a[c * 2 * n + j] /= d;
    for (int r = 0; r < n; r++) {
      if (r == c) continue;
      double f = a[r * 2 * n + c];
      if (f != 0)
        for (int j = 0; j < 2 * n; j++) a[r * 2 * n + j] -= f * a[c * 2 * n + j];
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) out[i * n + j] = a[i * 2 * n + n + j];
}

/* Pseudo-inverse of a symmetric n x n matrix (np.linalg.pinv, rcond 1e-15):
 * eigen-decomposition by cyclic Jacobi, singular values |lambda| below
 * rcond * max|lambda| dropped. */
static void la_pinv_sym(double *out, const double *A, int n) {
  double a[36], v[36];
  memcpy(a, A, sizeof(double) * n * n);
  for (int i = 0; i < n * n; i++) v[i] = (i / n == i % n);
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-36 * diag) break;  /* off-diagonal below 1e-18 of the diagonal: converged in double */
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (apq == 0) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) {
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  double big = 0;
  for (int i = 0; i < n; i++) big = fmax(big, fabs(a[i * n + i]));
  double cut = 1e-15 * big;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++)
        if (fabs(a[k * n + k]) > cut) s += v[i * n + k] * v[j * n + k] / a[k * n + k];
      out[i * n + j] = s;
    }
}

/* ------------------------------------------------------------------ transforms */

/* robosuite quat2mat(x y z w): computed in float32 as upstream (the quaternion
 * is cast with astype(np.float32); diagonal terms come out in float64). */
static void osc_quat2mat(const double xyzw[4], double R[9]) {
  float w = (float)xyzw[3], x = (float)xyzw[0], y = (float)xyzw[1], z = (float)xyzw[2];
  float n = w * w + x * x + y * y + z * z;
  if ((double)n < 4.0 * 2.220446049250313e-16) {
    for (int i = 0; i < 9; i++) R[i] = (i % 4 == 0);
    return;
  }
  float s = (float)sqrt(2.0 / (double)n);
  w *= s, x *= s, y *= s, z *= s;
  float xx = x * x, yy = y * y, zz = z * z, xy = x * y, xz = x * z, yz = y * z, wx = x * w, wy = y * w, wz = z * w;
  R[0] = 1.0 - (double)yy - (double)zz;
  R[1] = (double)(float)(xy - wz);
  R[2] = (double)(float)(xz + wy);
  R[3] = (double)(float)(xy + wz);
  R[4] = 1.0 - (double)xx - (double)zz;
  R[5] = (double)(float)(yz - wx);
  R[6] = (double)(float)(xz - wy);
  R[7] = (double)(float)(yz + wx);
  R[8] = 1.0 - (double)xx - (double)yy;
}

/* robosuite axisangle2quat -> x y z w. */
static void osc_axisangle2quat(const double v[3], double q[4]) {
  double angle = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (angle == 0) {  /* math.isclose(angle, 0.0) with default tolerances */
    q[0] = q[1] = q[2] = 0, q[3] = 1;
    return;
  }
  double s = sin(angle / 2.0);
  for (int i = 0; i < 3; i++) q[i] = v[i] / angle * s;
  q[3] = cos(angle / 2.0);
}

/* robosuite quat2axisangle (x y z w). */
void osc_quat2axisangle(const double xyzw[4], double out[3]) {
  double w = xyzw[3] > 1.0 ? 1.0 : xyzw[3] < -1.0 ? -1.0 : xyzw[3];
  double den = sqrt(1.0 - w * w);
  if (den == 0) {
    out[0] = out[1] = out[2] = 0;
    return;
  }
  for (int i = 0; i < 3; i++) out[i] = (xyzw[i] * 2.0 * acos(w)) / den;
}

/* robosuite mat2euler(quat2mat(q), "sxyz") with its float32 matrix. */
void osc_quat2euler(const double xyzw[4], double out[3]) {
  double R[9];
  osc_quat2mat(xyzw, R);
  float M[9];
  for (int i = 0; i < 9; i++) M[i] = (float)R[i];
  double cy = sqrt((double)(M[0] * M[0] + M[3] * M[3]));
  if (cy > 4.0 * 2.220446049250313e-16) {
    out[0] = atan2(M[7], M[8]);
    out[1] = atan2(-M[6], cy);
    out[2] = atan2(M[3], M[0]);
  } else {
    out[0] = atan2(-M[5], M[4]);
    out[1] = atan2(-M[6], cy);
    out[2] = 0.0;
  }
}

/* ------------------------------------------------------------------ controller */

/* Set up gains (osc_pose.json) and work space. */
void osc_init(osc *c, const mjModel *m, const osc_links *l) {
  memset(c, 0, sizeof *c);
  c->l = *l;
  c->nv = m->nv;
  for (int i = 0; i < 6; i++) {
    c->kp[i] = 150;
    c->kd[i] = 2 * sqrt(c->kp[i]) * 1.0;
    double out = i < 3 ? 0.05 : 0.5;
    c->scale[i] = fabs(out - -out) / fabs(1.0 - -1.0);
  }
  c->scratch = rdt_malloc(sizeof(double) * (size_t)(m->nv * m->nv + 6 * m->nv));
}

void osc_free(osc *c) {
  free(c->scratch);
  c->scratch = NULL;
}

/* Controller.update(): site pose and velocity, Jacobians, arm mass matrix. */
void osc_update(osc *c, const mjModel *m, const mjData *d) {
  int nv = m->nv, s = c->l.site;
  double *full = c->scratch, *jacp = full + nv * nv, *jacr = jacp + 3 * nv;
  memcpy(c->ee_pos, d->site_xpos + 3 * s, sizeof c->ee_pos);
  memcpy(c->ee_mat, d->site_xmat + 9 * s, sizeof c->ee_mat);
  mj_jacSite(m, d, jacp, jacr, s);
  for (int r = 0; r < 3; r++) {
    double vp = 0, vr = 0;
    for (int k = 0; k < nv; k++) vp += jacp[r * nv + k] * d->qvel[k], vr += jacr[r * nv + k] * d->qvel[k];
    c->ee_vel[r] = vp, c->ee_wvel[r] = vr;
    for (int j = 0; j < 7; j++) {
      c->Jp[r * 7 + j] = jacp[r * nv + c->l.dof[j]];
      c->Jr[r * 7 + j] = jacr[r * nv + c->l.dof[j]];
    }
  }
  for (int j = 0; j < 7; j++) c->q[j] = d->qpos[c->l.qpos[j]], c->qd[j] = d->qvel[c->l.dof[j]];
  mj_fullM(m, full, d->qM);
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 7; j++) c->M[i * 7 + j] = full[c->l.dof[i] * nv + c->l.dof[j]];
}

/* Fresh controller: goal at the current pose, nullspace target q0. */
void osc_reset(osc *c, const double q0[7]) {
  memcpy(c->goal_pos, c->ee_pos, sizeof c->goal_pos);
  memcpy(c->goal_mat, c->ee_mat, sizeof c->goal_mat);
  memcpy(c->q0, q0, sizeof c->q0);
  c->gripper[0] = c->gripper[1] = 0;
}

/* OperationalSpaceController.set_goal with control_delta. */
void osc_set_goal(osc *c, const double action[6]) {
  double delta[6];
  for (int i = 0; i < 6; i++) {
    double a = action[i] < -1 ? -1 : action[i] > 1 ? 1 : action[i];
    delta[i] = (a - 0.0) * c->scale[i] + 0.0;
  }
  if (delta[3] != 0 || delta[4] != 0 || delta[5] != 0) {
    double q[4], Rerr[9], goal[9];
    osc_axisangle2quat(delta + 3, q);
    osc_quat2mat(q, Rerr);
    la_mul(goal, Rerr, c->ee_mat, 3, 3, 3);
    memcpy(c->goal_mat, goal, sizeof goal);
  }
  for (int i = 0; i < 3; i++) c->goal_pos[i] = c->ee_pos[i] + delta[i];
}

/* run_controller(): operational-space torques, clipped to the ctrlrange. */
void osc_torques(osc *c, const mjModel *m, const mjData *d) {
  double force[3], torque[3], ori_err[3] = {0, 0, 0};
  const double *R = c->ee_mat, *G = c->goal_mat;
  for (int col = 0; col < 3; col++) {  /* 0.5 * sum_c current[:,c] x desired[:,c] */
    double rc[3] = {R[col], R[3 + col], R[6 + col]}, rd[3] = {G[col], G[3 + col], G[6 + col]};
    ori_err[0] += rc[1] * rd[2] - rc[2] * rd[1];
    ori_err[1] += rc[2] * rd[0] - rc[0] * rd[2];
    ori_err[2] += rc[0] * rd[1] - rc[1] * rd[0];
  }
  for (int i = 0; i < 3; i++) {
    force[i] = (c->goal_pos[i] - c->ee_pos[i]) * c->kp[i] + (-c->ee_vel[i]) * c->kd[i];
    torque[i] = (0.5 * ori_err[i]) * c->kp[3 + i] + (-c->ee_wvel[i]) * c->kd[3 + i];
  }
  double Minv[49], J[42], JM[42], Lfi[36], Lpi[9], Loi[9], Lf[36], Lp[9], Lo[9];
  la_inv(Minv, c->M, 7);
  memcpy(J, c->Jp, sizeof c->Jp);
  memcpy(J + 21, c->Jr, sizeof c->Jr);
  la_mul(JM, J, Minv, 6, 7, 7);
  la_mul_bt(Lfi, JM, J, 6, 7, 6);
  la_mul_bt(Lpi, JM, c->Jp, 3, 7, 3);
  la_mul_bt(Loi, JM + 21, c->Jr, 3, 7, 3);
  la_pinv_sym(Lf, Lfi, 6);
  la_pinv_sym(Lp, Lpi, 3);
  la_pinv_sym(Lo, Loi, 3);
  double wrench[6], tau[7];
  la_mul(wrench, Lp, force, 3, 3, 1);
  la_mul(wrench + 3, Lo, torque, 3, 3, 1);
  for (int j = 0; j < 7; j++) {
    double s = 0;
    for (int r = 0; r < 6; r++) s += J[r * 7 + j] * wrench[r];
    tau[j] = s + d->qfrc_bias[c->l.dof[j]];
  }
  /* nullspace: N = I - Minv J^T Lf J; tau += N^T M (kp (q0 - q) - kv qd) */
  double MJt[42], Jbar[42], N[49], pose[7], target[7];
  la_mul_bt(MJt, Minv, J, 7, 7, 6);
  la_mul(Jbar, MJt, Lf, 7, 6, 6);
  la_mul(N, Jbar, J, 7, 6, 7);
  for (int i = 0; i < 49; i++) N[i] = (i / 7 == i % 7) - N[i];
  double kv = sqrt(10.0) * 2;
  for (int j = 0; j < 7; j++) target[j] = 10.0 * (c->q0[j] - c->q[j]) - kv * c->qd[j];
  la_mul(pose, c->M, target, 7, 7, 1);
  for (int j = 0; j < 7; j++) {
    double s = 0;
    for (int k = 0; k < 7; k++) s += N[k * 7 + j] * pose[k];
    tau[j] += s;
  }
  for (int j = 0; j < 7; j++) {
    const mjtNum *r = m->actuator_ctrlrange + 2 * c->l.act[j];
    c->torques[j] = tau[j] < r[0] ? r[0] : tau[j] > r[1] ? r[1] : tau[j];
  }
}

/* PandaGripper.format_action + Manipulator.grip_action. */
void osc_gripper(osc *c, const mjModel *m, mjData *d, double g) {
  double sgn = g > 0 ? 1.0 : g < 0 ? -1.0 : 0.0;
  const double dir[2] = {-1.0, 1.0};
  for (int i = 0; i < 2; i++) {
    double v = c->gripper[i] + dir[i] * 0.01 * sgn;
    c->gripper[i] = v < -1.0 ? -1.0 : v > 1.0 ? 1.0 : v;
    const mjtNum *r = m->actuator_ctrlrange + 2 * c->l.grip_act[i];
    double bias = 0.5 * (r[1] + r[0]), weight = 0.5 * (r[1] - r[0]);
    d->ctrl[c->l.grip_act[i]] = bias + weight * c->gripper[i];
  }
}
