/* sim/demo_file.h: LIBERO demonstration files (*_demo.hdf5) written from
 * simulator rollouts, in the layout of LIBERO's scripts/create_dataset.py.
 *
 *   data                 attrs env_name, problem_info (JSON), bddl_file_name,
 *                        bddl_file_content, env_args (JSON), macros_image_convention
 *                        "opengl", num_demos, total; and rdt_collect (JSON: how
 *                        the file was made, an addition)
 *   data/demo_i          actions (T,7), states (T,1+nq+nv), robot_states (T,9:
 *                        gripper_qpos, eef_pos, eef_quat xyzw), rewards, dones
 *                        (T, uint8, last 1); attrs num_samples, init_state
 *                        (= states[0]), init_index (the LIBERO init state the
 *                        rollout started from, an addition)
 *   data/demo_i/obs      agentview_rgb, eye_in_hand_rgb (T,S,S,3 uint8, bottom
 *                        row first), gripper_states (T,2), joint_states (T,7),
 *                        ee_pos (T,3), ee_ori (T,3 axis-angle), ee_states (T,6)
 *
 * As create_dataset.py pairs them, states[t] is the state before actions[t]
 * and obs[t] the observation returned by the step that executed actions[t].
 * LIBERO's model_file attribute (the MJCF text) is not written.
 *
 * The file is written as PATH.tmp and renamed over PATH by commit, so PATH is
 * either complete or untouched.  Without libhdf5 in the build, create fails
 * with a message saying so.
 */
#ifndef RDT_SIM_DEMO_FILE_H
#define RDT_SIM_DEMO_FILE_H

#include <stdint.h>

#include "sim/env.h"

/* One demonstration held in memory, grown step by step. */
typedef struct {
  int state_width;        /* 1 + nq + nv */
  int image_size;
  int init_index;
  int length, capacity;
  double *actions;        /* length x 7 */
  double *states;         /* length x state_width */
  double *joint_states;   /* length x 7 */
  double *gripper_states; /* length x 2 */
  double *ee_pos;         /* length x 3 */
  double *ee_ori;         /* length x 3, axis-angle */
  double *ee_quat;        /* length x 4, x y z w */
  uint8_t *agentview;     /* length x S x S x 3 */
  uint8_t *eye_in_hand;
} sim_demo;

void sim_demo_init(sim_demo *d, int state_width, int image_size);
void sim_demo_free(sim_demo *d);
/* Forget the steps (keeps the buffers). */
void sim_demo_clear(sim_demo *d);
/* Append a step: the state before the action, the action, the observation
 * after it (its images must have been rendered at d->image_size). */
void sim_demo_push(sim_demo *d, const double *state, const double action[SIM_ACTION_DIM], const sim_obs *obs);

/* The file-level attributes (JSON members already encoded). */
typedef struct {
  const char *env_name;           /* LIBERO's problem class name, e.g. Libero_Kitchen_Tabletop_Manipulation */
  const char *problem_info;       /* {"problem_name", "domain_name", "language_instruction"} */
  const char *bddl_file_name;
  const char *bddl_file_content;
  const char *env_args;
  const char *collect_info;       /* written as the rdt_collect attribute */
} sim_demo_meta;

typedef struct sim_demo_file sim_demo_file;

/* Start PATH (written as PATH.tmp until commit).  NULL + rdt_error(). */
sim_demo_file *sim_demo_file_create(const char *path, const sim_demo_meta *meta);
/* Write d as the next data/demo_i.  0 or -1. */
int sim_demo_file_add(sim_demo_file *f, const sim_demo *d);
/* Write num_demos and total, close, rename onto PATH.  Frees f.  0 or -1
 * (then nothing is left behind). */
int sim_demo_file_commit(sim_demo_file *f);
/* Close and remove the temporary file.  Frees f. */
void sim_demo_file_abort(sim_demo_file *f);

#endif
