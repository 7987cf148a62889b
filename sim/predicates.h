/* sim/predicates.h: LIBERO's goal predicates on a compiled scene.
 *
 * On, In, Open, Close, TurnOn, TurnOff and Up with the geometric and contact
 * rules of libero/envs/predicates/base_predicates.py,
 * object_states/base_object_states.py, objects/site_object.py and
 * objects/target_zones.py, and the joint thresholds of articulated_objects.py.
 * The goal is the conjunction of its atoms (_check_success).
 */
#ifndef RDT_SIM_PREDICATES_H
#define RDT_SIM_PREDICATES_H

#include <mujoco/mujoco.h>

#include "sim/scene.h"

typedef enum { PRED_ON, PRED_IN, PRED_OPEN, PRED_CLOSE, PRED_TURNON, PRED_TURNOFF, PRED_UP } pred_kind;

/* An argument: an object/fixture (obj >= 0) or a region site (region >= 0). */
typedef struct {
  int obj, region;
} pred_ref;

typedef struct {
  pred_kind kind;
  pred_ref a, b;   /* b only for On/In */
} pred_atom;

/* Resolve the scene's goal atoms; -1 + rdt_error() naming the BDDL line for
 * a name or predicate LIBERO could not evaluate. */
int pred_compile(const sim_scene *s, pred_atom **atoms, int *n);

/* Value of one atom in the current data (kinematics and contacts as left by
 * the last mj_forward/mj_step). */
int pred_eval(const sim_scene *s, const mjData *d, const pred_atom *a);

/* All atoms true. */
int pred_goal(const sim_scene *s, const mjData *d, const pred_atom *atoms, int n);

/* FlatStove burner visualisation (LIBERO _post_process + set_visualization):
 * the burner site's alpha follows turn_on after every step. */
void pred_update_visuals(const sim_scene *s, const mjData *d);

/* Name of a predicate kind ("On", ...). */
const char *pred_name(pred_kind k);

#endif
