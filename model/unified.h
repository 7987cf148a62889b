/* model/unified.h: RDT's 128-dim unified state/action vector for LIBERO, the
 * rotation helpers it needs, and THE function that turns one raw robot
 * observation into model inputs.  Training (train/data_libero.c) and
 * evaluation (eval/) both call rdt_obs_to_model_input, so the policy is fed
 * identically in both.
 *
 * Slots (upstream configs/state_vec.py; a single arm uses the right-arm slots):
 *   0..6   right_arm_joint_{0..6}_pos          10  right_gripper_open
 *   30..32 right_eef_pos_{x,y,z}                33..38 right_eef_angle_{0..5} (6D rotation)
 * 6D rotation = the first two columns of R, flattened column by column:
 *   [R00, R10, R20, R01, R11, R21] (upstream data/utils.py).
 *
 * Named formats (config key dataset.unified_format, default "libero_delta"):
 *   libero_delta  the common LIBERO fine-tuning recipe.  State: joints -> 0..6,
 *                 gripper opening (q1 - q2) / 0.08 in [0,1] -> 10, eef position
 *                 -> 30..32, eef orientation (axis-angle, as LIBERO stores it)
 *                 -> 6D -> 33..38.  Action (one LIBERO delta action
 *                 [dx dy dz ax ay az g]): position x1.2 -> 30..32, rotation x0.5
 *                 read as Euler angles (scipy 'xyz': extrinsic, R = Rz Ry Rx)
 *                 -> 6D -> 33..38, gripper (g+1)/2 -> 10.
 *   libero_fork   exactly the zxy6677/RoboticsDiffusionTransformer training
 *                 data: as libero_delta, but state slot 10 = the raw first
 *                 finger position (0..0.04 m) and the stored eef orientation
 *                 read as Euler 'xyz' angles (it is axis-angle).
 *   libero_abs    absolute poses: the state as libero_delta; chunk element k =
 *                 the eef pose reached by that step (position -> 30..32, 6D ->
 *                 33..38) and the gripper command as an opening, (1-g)/2 -> 10.
 * The inverse for evaluation (rdt_uni_action_to_libero): delta: position
 * /1.2, 6D -> R -> Euler 'xyz' /0.5, gripper 2v-1; absolute: position and
 * rotation error to the current pose over the OSC scales 0.05 m / 0.5 rad,
 * gripper 1-2v; then every component clipped to [-1, 1].
 */
#ifndef RDT_UNIFIED_H
#define RDT_UNIFIED_H

#include <stdint.h>
#include "core/config.h"
#include "core/rng.h"
#include "model/image.h"

#define RDT_UNI_DIM 128
#define RDT_UNI_JOINT0 0
#define RDT_UNI_GRIPPER 10
#define RDT_UNI_EEF_POS 30
#define RDT_UNI_EEF_6D 33

/* Images reaching the model: upstream order [exterior, right wrist, left wrist]
 * x [t-1, t]; image i = history * RDT_NUM_CAMERAS + camera. */
#define RDT_NUM_CAMERAS 3
#define RDT_IMG_HISTORY 2
#define RDT_NUM_IMAGES (RDT_NUM_CAMERAS * RDT_IMG_HISTORY)
/* The two LIBERO cameras of a raw observation: agentview feeds the exterior
 * camera slot (0), eye_in_hand the right-wrist slot (1); the left-wrist slot
 * (2) is always the background with mask 0. */
#define RDT_CAM_AGENTVIEW 0
#define RDT_CAM_EYE_IN_HAND 1
#define RDT_RAW_CAMERAS 2
/* LIBERO control frequency (Hz), the ctrl_freq condition. */
#define RDT_LIBERO_CTRL_FREQ 20

/* ---------------------------------------------------------------- rotations */
/* All matrices are row-major 3x3 doubles; quaternions are (x, y, z, w). */
void rdt_rot_from_quat(const double q[4], double R[9]);        /* normalises q */
void rdt_rot_to_quat(const double R[9], double q[4]);          /* w >= 0 */
/* Rodrigues: v = angle * unit axis (any angle). */
void rdt_rot_from_axisangle(const double v[3], double R[9]);
/* Angle in [0, pi]. */
void rdt_rot_to_axisangle(const double R[9], double v[3]);
/* robosuite transform_utils.quat2axisangle, exactly: angle 2 acos(w) (may
 * exceed pi), zeros when sqrt(1 - w^2) is close to 0.  This is how LIBERO's
 * ee_ori was made from robot0_eef_quat; evaluation uses it on the simulator's
 * quaternion to fill rdt_raw_obs.eef_ori. */
void rdt_quat_to_axisangle(const double q[4], double v[3]);
/* scipy Rotation.from_euler('xyz', e): extrinsic x, then y, then z:
 * R = Rz(e2) Ry(e1) Rx(e0). */
void rdt_rot_from_euler_xyz(const double e[3], double R[9]);
/* The inverse, e1 in [-pi/2, pi/2]; at gimbal lock e0 = 0. */
void rdt_rot_to_euler_xyz(const double R[9], double e[3]);
void rdt_rot_to_6d(const double R[9], double d[6]);
/* Gram-Schmidt as upstream: x = a/|a|, z = (x cross b)/|.|, y = z cross x. */
void rdt_rot_from_6d(const double d[6], double R[9]);

/* ---------------------------------------------------------------- formats */
typedef enum { RDT_GRIP_OPENING, RDT_GRIP_FINGER0 } rdt_gripper_mode;
typedef enum { RDT_ORI_AXISANGLE, RDT_ORI_EULER_XYZ } rdt_ori_mode;
typedef enum { RDT_ACT_DELTA, RDT_ACT_ABS } rdt_action_mode;

typedef struct {
  const char *name;
  const char *summary;        /* one line for --help and logs */
  rdt_gripper_mode gripper;   /* state slot 10 from the two finger positions */
  rdt_ori_mode state_ori;     /* how the 3 stored orientation numbers are read */
  rdt_action_mode action;
  double pos_scale;           /* delta: position factor (1.2) */
  double rot_scale;           /* delta: rotation factor (0.5) */
} rdt_uni_format;

/* By name; NULL + rdt_error() listing the known names. */
const rdt_uni_format *rdt_uni_format_find(const char *name);
const rdt_uni_format *rdt_uni_format_default(void);          /* libero_delta */
/* dataset.unified_format (absent: the default); NULL + rdt_error(). */
const rdt_uni_format *rdt_uni_format_from_config(const rdt_config *c);
/* "libero_delta, libero_fork, libero_abs" */
const char *rdt_uni_format_names(void);

/* ---------------------------------------------------------------- raw observation */
/* What the simulator (evaluation) or a LIBERO file (training) gives for one
 * control step.  LIBERO names: joint_states / robot0_joint_pos, gripper_states
 * / robot0_gripper_qpos, ee_pos / robot0_eef_pos, ee_ori =
 * rdt_quat_to_axisangle(robot0_eef_quat); agentview_rgb / agentview_image,
 * eye_in_hand_rgb / robot0_eye_in_hand_image. */
typedef struct {
  double joint_pos[7];
  double gripper_qpos[2];     /* finger 1 in [0, 0.04], finger 2 in [-0.04, 0] (m) */
  double eef_pos[3];
  double eef_ori[3];          /* axis-angle */
  int h, w;                   /* image size, both cameras */
  /* [RDT_CAM_AGENTVIEW | RDT_CAM_EYE_IN_HAND][0 = t-1, 1 = t]: h x w x 3 uint8
   * exactly as stored / rendered (bottom row first); NULL = not available
   * (e.g. t-1 at the first step of an episode): background, mask 0. */
  const uint8_t *image[RDT_RAW_CAMERAS][RDT_IMG_HISTORY];
} rdt_raw_obs;

/* ---------------------------------------------------------------- state and actions */
/* State vector (zeros outside the filled slots). */
void rdt_uni_state(const rdt_uni_format *f, const rdt_raw_obs *o, float state[RDT_UNI_DIM]);
/* Upstream state_indicator: 1 at the state slots (0..6, 10, 30..38).  Upstream
 * passes it as state_elem_mask and as the action_mask of the model. */
void rdt_uni_state_mask(const rdt_uni_format *f, float mask[RDT_UNI_DIM]);
/* 1 at the slots an action fills (10, 30..38): where a predicted chunk is read. */
void rdt_uni_action_mask(const rdt_uni_format *f, float mask[RDT_UNI_DIM]);
/* One chunk element.  a: the LIBERO action of that step; pos, ori: the eef
 * pose reached by it (absolute format only; may be NULL for delta formats). */
void rdt_uni_action(const rdt_uni_format *f, const double a[7], const double pos[3],
                    const double ori[3], float out[RDT_UNI_DIM]);
/* Inverse for evaluation: one unified vector -> LIBERO action, each component
 * clipped to [-1, 1].  cur: the current observation (absolute format only). */
void rdt_uni_action_to_libero(const rdt_uni_format *f, const float v[RDT_UNI_DIM],
                              const rdt_raw_obs *cur, double a[7]);

/* ---------------------------------------------------------------- model inputs */
typedef struct {
  float state[RDT_UNI_DIM];        /* states[b, 0, :] */
  float state_mask[RDT_UNI_DIM];   /* state_elem_mask / action_mask */
  float *images;                   /* caller-owned: RDT_NUM_IMAGES x 3 x S x S */
  uint8_t image_valid[RDT_NUM_IMAGES];   /* 0 = background */
} rdt_model_input;

/* The one mapping from a raw observation to model inputs: state + mask per
 * format f; images per ic (rotation, padding, resize, normalisation; missing
 * ones and the left-wrist slot are the background).  aug: NULL (evaluation)
 * or the training rng for --image_aug (used only when ic->augment).  0 or -1
 * (bad image size). */
int rdt_obs_to_model_input(const rdt_uni_format *f, const rdt_image_cfg *ic,
                           const rdt_raw_obs *o, rdt_rng *aug, rdt_model_input *in);

#endif
