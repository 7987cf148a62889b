/* sim/expert.h: scripted experts for a few LIBERO-90 tasks.
 *
 * An expert is a closed-loop controller with privileged access to the
 * simulator (body, site and joint states by name, sim/env.h).  Each control
 * step it returns a LIBERO action [dx dy dz ax ay az g] in [-1, 1] (OSC_POSE
 * deltas, g = -1 open, +1 close), the action space of LIBERO's human
 * demonstrations.  Every episode draws its own approach offsets, speed and
 * small action noise from the seed, so demonstrations differ.
 *
 *   sim_env_reset(e, k, 0);
 *   sim_expert *x = sim_expert_new(e, seed);          // NULL + rdt_error(): no expert for the task
 *   while (...) { sim_expert_act(x, a); sim_env_step(e, a, 0); }
 *   sim_expert_free(x);
 *
 * The expert plans from the state it sees at its first call, so create it
 * after the reset (settle steps in between are fine).  It keeps acting after
 * the task is done (backing away, then holding still).
 */
#ifndef RDT_SIM_EXPERT_H
#define RDT_SIM_EXPERT_H

#include <stdint.h>

#include "sim/env.h"

/* Tasks with an expert: how many, and the libero_90 index of the i-th. */
int sim_expert_count(void);
int sim_expert_task(int i);
/* Whether a task (libero_90 index) has an expert. */
int sim_expert_has(int task_index);

typedef struct sim_expert sim_expert;

/* An expert for the env's task, randomised by seed.  NULL + rdt_error() when
 * the task has none or the scene lacks a part the expert reads. */
sim_expert *sim_expert_new(sim_env *e, uint64_t seed);
void sim_expert_free(sim_expert *x);

/* The action for the env's current state.  0, or -1 when a part cannot be read. */
int sim_expert_act(sim_expert *x, double action[SIM_ACTION_DIM]);

/* The expert's current phase name ("approach", "push", ..., "done"): for logs and tests. */
const char *sim_expert_phase(const sim_expert *x);

#endif
