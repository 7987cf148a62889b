/* sim/osc.h: robosuite 1.4.0's OSC_POSE controller as LIBERO configures it
 * (controllers/config/osc_pose.json) and the Panda gripper command.
 *
 * Per physics substep, with mjData holding the substep's position/velocity
 * stage (mj_step1): osc_update reads the end-effector state, osc_set_goal runs
 * on the first substep of a control step only, osc_torques computes the arm
 * torques (clipped to the actuator ranges), osc_gripper integrates the
 * gripper command.  Plain data, no globals: one osc per env.
 */
#ifndef RDT_SIM_OSC_H
#define RDT_SIM_OSC_H

#include <mujoco/mujoco.h>

/* Model indices the controller needs. */
typedef struct {
  int qpos[7], dof[7], act[7];      /* arm joints and torque actuators */
  int grip_act[2];                  /* finger position actuators */
  int site;                         /* gripper0_grip_site */
} osc_links;

typedef struct {
  osc_links l;
  double kp[6], kd[6];
  double scale[6];                  /* output_max - output_min over input range */
  /* state read by update() */
  double ee_pos[3], ee_mat[9], ee_vel[3], ee_wvel[3];
  double q[7], qd[7];
  double Jp[21], Jr[21];            /* 3 x 7 each, row-major */
  double M[49];                     /* arm block of the mass matrix */
  /* goal and nullspace target */
  double goal_pos[3], goal_mat[9];
  double q0[7];
  double gripper[2];                /* PandaGripper.current_action */
  double torques[7];
  double *scratch;                  /* nv x nv and 3 x nv work space */
  int nv;
} osc;

/* Set up for a model (allocates work space). */
void osc_init(osc *c, const mjModel *m, const osc_links *l);
void osc_free(osc *c);
/* Read end-effector pose, velocities, Jacobians and the arm mass matrix. */
void osc_update(osc *c, const mjModel *m, const mjData *d);
/* A fresh controller as robosuite builds at reset: goal = current pose,
 * nullspace target q0, gripper command zero (call after osc_update). */
void osc_reset(osc *c, const double q0[7]);
/* New delta goal from a 6-dim action (clipped to [-1, 1], scaled). */
void osc_set_goal(osc *c, const double action[6]);
/* Arm torques for the current state, clipped to the actuator ranges. */
void osc_torques(osc *c, const mjModel *m, const mjData *d);
/* Integrate the gripper command (sign of g) and write both finger controls. */
void osc_gripper(osc *c, const mjModel *m, mjData *d, double g);

/* robosuite transform_utils helpers used for observations. */
void osc_quat2axisangle(const double xyzw[4], double out[3]);
void osc_quat2euler(const double xyzw[4], double out[3]);

#endif
