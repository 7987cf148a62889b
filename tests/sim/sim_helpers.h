/* tests/sim/sim_helpers.h: opening LIBERO envs in tests. */
#ifndef RDT_TEST_SIM_HELPERS_H
#define RDT_TEST_SIM_HELPERS_H

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sim/env.h"
#include "sim/env_internal.h"
#include "test.h"

/* Open a task by name with the test data (physics only unless render). */
static inline sim_env *test_open(const char *task, int render) {
  sim_config c;
  sim_config_default(&c);
  c.libero_root = test_libero_root();
  c.robosuite_assets = test_robosuite_assets();
  c.physics_only = !render;
  int t = sim_task_find(task);
  if (t < 0) {
    fprintf(stderr, "no task %s\n", task);
    exit(1);
  }
  sim_env *e = sim_env_open(&c, t);
  if (!e) {
    fprintf(stderr, "open %s: %s\n", task, rdt_error());
    exit(1);
  }
  return e;
}

/* Run n no-op steps [0,0,0,0,0,0,-1]; 0 or -1. */
static inline int test_noop(sim_env *e, int n) {
  const double a[SIM_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
  for (int i = 0; i < n; i++)
    if (sim_env_step(e, a, 0)) return -1;
  return 0;
}

/* Index of an object instance in the env's scene (exits if absent). */
static inline int test_object(sim_env *e, const char *name) {
  int o = sim_scene_object(sim_env_scene(e), name);
  if (o < 0) {
    fprintf(stderr, "no object %s\n", name);
    exit(1);
  }
  return o;
}

#endif
