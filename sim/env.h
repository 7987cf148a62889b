/* sim/env.h: LIBERO-90 tasks in MuJoCo, as robosuite 1.4.0 + LIBERO run them.
 *
 * An env is one compiled task (scene composed from the BDDL file and the
 * LIBERO/robosuite asset XMLs, see docs/SIM.md).  Reset restores one of the
 * task's stored initial states; step applies one 20 Hz control step (OSC_POSE
 * delta action, 25 physics substeps of 2 ms, Panda gripper); success is the
 * conjunction of the BDDL goal predicates, checked after every step.
 *
 *   sim_config cfg; sim_config_default(&cfg);          // paths from the env vars
 *   sim_env *e = sim_env_open(&cfg, 6);               // task index (0..89) -> NULL + rdt_error()
 *   sim_env_reset(e, 0, 0);                           // init state 0, no images
 *   double noop[7] = {0, 0, 0, 0, 0, 0, -1};
 *   for (int t = 0; t < 10; t++) sim_env_step(e, noop, 0);
 *   sim_env_step(e, action, SIM_OBS_IMAGES);          // render this step's cameras
 *   const sim_obs *o = sim_env_obs(e);                // o->agentview: H*W*3, bottom row first
 *   if (sim_env_success(e)) ...
 *   sim_env_close(e);
 *
 * Threads: envs share nothing; many envs per process and per thread are fine.
 * One env must not be used by two threads at once.  Rendering creates the
 * env's GL context lazily in the calling thread (OSMesa on CPU, EGL when
 * RDT_GL=egl or when RDT_GL is unset and an EGL device exists); an env is then
 * rendered from that thread only.
 *
 * Observation timing follows robosuite: the observation returned by a step is
 * sampled after physics substep 24 of 25 (robosuite's 20 Hz observable timer),
 * success after substep 25.  See docs/SIM.md.
 */
#ifndef RDT_SIM_ENV_H
#define RDT_SIM_ENV_H

#include <stdint.h>

#define SIM_NUM_TASKS 90
#define SIM_ACTION_DIM 7

/* Where the data lives and how to render.  Strings are borrowed, not copied
 * beyond sim_env_open. */
typedef struct {
  const char *libero_root;       /* LIBERO package folder with assets/, bddl_files/, init_files/;
                                    NULL: $RDT_LIBERO_ROOT */
  const char *robosuite_assets;  /* robosuite's models/assets folder; NULL: $RDT_ROBOSUITE_ASSETS */
  int image_size;                /* camera images are image_size x image_size (default 128) */
  int fast_render;               /* 1: low-fidelity mode (no shadows, reflections, MSAA); default 0 */
  int physics_only;              /* 1: skip textures (faster open); rendering is then refused */
} sim_config;

void sim_config_default(sim_config *c);

/* ---- the suite (no data needed) ---- */

/* Task name at index i of LIBERO's libero_90 list (NULL when out of range). */
const char *sim_task_name(int index);
/* Index of a task by its name (with or without ".bddl"), or -1. */
int sim_task_find(const char *name);
/* The instruction evaluators use: LIBERO's grab_language_from_filename(). */
const char *sim_task_instruction(int index);

/* ---- envs ---- */

typedef struct sim_env sim_env;

/* Static facts about an open env. */
typedef struct {
  int task_index;
  const char *name;            /* KITCHEN_SCENE1_open_the_bottom_drawer_of_the_cabinet */
  const char *instruction;     /* from the file name, as LIBERO's benchmark */
  const char *bddl_language;   /* the BDDL :language text */
  const char *problem_class;   /* e.g. libero_kitchen_tabletop_manipulation */
  int nq, nv, nu;
  int num_init_states;         /* rows of the .pruned_init file */
  int init_state_width;        /* 1 + nq + nv */
  int num_goal_atoms;
  const char *goal_text;       /* "(And (Open wooden_cabinet_1_bottom_region))" */
} sim_info;

/* Observation after the last reset or step.  Arrays are valid until the next
 * call on the env.  Images are NULL unless requested with SIM_OBS_IMAGES. */
typedef struct {
  double eef_pos[3];           /* site gripper0_grip_site, world frame (robot0_eef_pos) */
  double eef_quat[4];          /* body robot0_right_hand, x y z w (robot0_eef_quat) */
  double eef_axisangle[3];     /* robosuite quat2axisangle(eef_quat) */
  double eef_euler[3];         /* robosuite mat2euler(quat2mat(eef_quat)), "sxyz" */
  double gripper_qpos[2];      /* robot0_gripper_qpos */
  double joint_pos[7];         /* robot0_joint_pos */
  int image_size;
  const uint8_t *agentview;    /* image_size^2 * 3 RGB, MuJoCo read-out order: bottom row first */
  const uint8_t *eye_in_hand;  /* robot0_eye_in_hand, same layout */
} sim_obs;

enum { SIM_OBS_IMAGES = 1 };

/* Compose and compile a task (index into the suite).  NULL + rdt_error(). */
sim_env *sim_env_open(const sim_config *cfg, int task_index);
void sim_env_close(sim_env *e);
const sim_info *sim_env_info(const sim_env *e);

/* New episode from stored init state k (0 <= k < num_init_states), as
 * LIBERO's reset() + set_init_state(): fresh controller and gripper command,
 * state loaded, mj_forward.  flags: SIM_OBS_IMAGES to render.  0 or -1. */
int sim_env_reset(sim_env *e, int init_index, int flags);

/* One control step with action [dx dy dz ax ay az g] (clipped to [-1, 1]).
 * flags: SIM_OBS_IMAGES to render this step's observation.  Returns 0, or -1
 * when the physics diverged (NaN/Inf, MuJoCo warning) with rdt_error() set. */
int sim_env_step(sim_env *e, const double action[SIM_ACTION_DIM], int flags);

const sim_obs *sim_env_obs(const sim_env *e);
/* All goal predicates true (after the last reset or step). */
int sim_env_success(const sim_env *e);
/* Control steps since the last reset. */
int sim_env_steps(const sim_env *e);

/* Render one named camera now at size x size into rgb (size*size*3, bottom
 * row first).  0 or -1. */
int sim_env_render(sim_env *e, const char *camera, int size, uint8_t *rgb);

/* Flattened state [time, qpos, qvel] (length 1+nq+nv) get/set; set runs
 * mj_forward and re-evaluates success but keeps the controller.  0 or -1. */
int sim_env_get_state(const sim_env *e, double *flat, int n);
int sim_env_set_state(sim_env *e, const double *flat, int n);

/* Named parts of the compiled scene (MJCF names, e.g. "wooden_cabinet_1_cabinet_top",
 * "flat_stove_1_button"), as the data holds them after the last reset or step:
 * world position and optionally the rotation matrix (row-major; NULL to skip).
 * Scripted experts read these.  0, or -1 when no such name exists. */
int sim_env_body_pose(const sim_env *e, const char *name, double pos[3], double mat[9]);
int sim_env_site_pose(const sim_env *e, const char *name, double pos[3], double mat[9]);
/* A hinge or slide joint's value and its axis in the world frame (axis may be NULL). */
int sim_env_joint(const sim_env *e, const char *name, double *value, double axis[3]);

/* Flip an H x W x 3 image vertically in place (bottom-row-first <-> top-row-first). */
void sim_image_flip_rows(uint8_t *rgb, int height, int width);

#endif
