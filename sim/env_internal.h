/* sim/env_internal.h: access to an env's compiled scene and MuJoCo data, for
 * tests and tools inside rdt (not part of the env API). */
#ifndef RDT_SIM_ENV_INTERNAL_H
#define RDT_SIM_ENV_INTERNAL_H

#include <mujoco/mujoco.h>

#include "sim/env.h"
#include "sim/predicates.h"
#include "sim/scene.h"

const sim_scene *sim_env_scene(const sim_env *e);
mjData *sim_env_data(sim_env *e);
/* The resolved goal atoms. */
const pred_atom *sim_env_goal(const sim_env *e, int *n);

#endif
