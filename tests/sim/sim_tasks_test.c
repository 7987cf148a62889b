/* tests/sim/sim_tasks_test.c: every libero_90 task composes, loads its stored
 * init states unchanged, and settles.
 *
 * Per task (two worker processes share the 90, since MuJoCo compiles one
 * model at a time per process):
 *  - the .pruned_init file, read independently, has 50 rows of 1 + nq + nv;
 *  - the joint order is right: in init state 0 the arm is near robosuite's
 *    init_qpos, every movable object's free-joint quaternion has unit norm and
 *    its height lies between the floor and 1.5 m, every hinge/slide value lies
 *    in its joint range; objects penetrate nothing by more than 2 cm (the
 *    stored states are LIBERO's sampler placements, not yet settled);
 *  - reset to init state 0 and 10 no-op steps [0,0,0,0,0,0,-1] run without
 *    NaN or MuJoCo warning, the state stays finite, and the task is not yet
 *    successful; contacts then penetrate less than 5 mm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/torchzip.h"
#include "sim_helpers.h"

/* robosuite MountedPanda / OnTheGroundPanda init_qpos. */
static const double panda_init[7] = {0, -0.161037389, 0, -2.44459747, 0, 2.2267522, 0.78539816};

/* Deepest penetration among the current contacts (metres, >= 0). */
static double deepest(const mjData *d) {
  double w = 0;
  for (int i = 0; i < d->ncon; i++) w = fmax(w, -d->contact[i].dist);
  return w;
}

/* All checks for one task. */
static void check_task(int t) {
  const char *name = sim_task_name(t);
  sim_env *e = test_open(name, 0);
  const sim_info *in = sim_env_info(e);
  const sim_scene *s = sim_env_scene(e);
  const mjModel *m = s->m;
  char rel[300];
  snprintf(rel, sizeof rel, "init_files/libero_90/%s.pruned_init", name);
  char *path = rdt_path_join(test_libero_root(), rel);
  rdt_tensor init;
  CHECK_MSG(rdt_torch_load_numpy(path, &init) == 0, "%s", rdt_error());
  free(path);
  CHECK_MSG(init.ndim == 2 && init.shape[0] == 50 && init.shape[1] == 1 + m->nq + m->nv,
            "%s: init %lld x %lld, model 1+%d+%d", name, (long long)init.shape[0], (long long)init.shape[1], m->nq, m->nv);
  CHECK(in->init_state_width == 1 + in->nq + in->nv && in->num_init_states == 50);
  const double *row = init.data;
  for (int j = 0; j < 7; j++)
    CHECK_MSG(fabs(row[1 + s->arm_qpos[j]] - panda_init[j]) < 0.15, "%s: arm joint %d = %.3f", name, j, row[1 + s->arm_qpos[j]]);
  for (int o = 0; o < s->nobj; o++) {
    const sim_object *ob = &s->obj[o];
    for (int k = 0; k < ob->njoint; k++) {
      int a = ob->jnt_qpos[k], j = -1;
      for (int q = 0; q < m->njnt; q++)
        if (m->jnt_qposadr[q] == a) j = q;
      if (m->jnt_type[j] == mjJNT_FREE) {
        const double *q = row + 1 + a + 3;
        double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
        CHECK_MSG(fabs(n - 1) < 1e-6 && row[1 + a + 2] > 0.0 && row[1 + a + 2] < 1.5, "%s: %s free joint z %.3f |q| %.6f",
                  name, ob->name, row[1 + a + 2], n);
      } else if (m->jnt_limited[j]) {
        double v = row[1 + a];
        CHECK_MSG(v > m->jnt_range[2 * j] - 0.01 && v < m->jnt_range[2 * j + 1] + 0.01, "%s: %s joint %d = %.3f outside range",
                  name, ob->name, k, v);
      }
    }
  }
  CHECK(sim_env_reset(e, 0, 0) == 0);
  double pen0 = deepest(sim_env_data(e));
  CHECK_MSG(pen0 < 0.02, "%s: init state 0 penetrates %.4f m", name, pen0);
  CHECK_MSG(test_noop(e, 10) == 0, "%s: %s", name, rdt_error());
  mjData *d = sim_env_data(e);
  int finite = 1;
  for (int i = 0; i < m->nq; i++) finite &= isfinite(d->qpos[i]);
  for (int i = 0; i < m->nv; i++) finite &= isfinite(d->qvel[i]);
  CHECK_MSG(finite, "%s: non-finite state", name);
  for (int w = 0; w < mjNWARNING; w++) CHECK_MSG(d->warning[w].number == 0, "%s: MuJoCo warning %d", name, w);
  CHECK_MSG(!sim_env_success(e), "%s: successful after settling", name);
  double pen = deepest(d);
  CHECK_MSG(pen < 0.005, "%s: penetration %.4f m after settling", name, pen);
  fprintf(stderr, "%2d %-92s nq %3d nv %3d pen0 %.4f settled %.4f\n", t, name, m->nq, m->nv, pen0, pen);
  free(init.data);
  sim_env_close(e);
}

int main(void) {
  test_libero_root();
  const int workers = 2;
  pid_t pid[2];
  for (int w = 0; w < workers; w++) {
    pid[w] = fork();
    if (pid[w] == 0) {
      for (int t = w; t < SIM_NUM_TASKS; t += workers) check_task(t);
      _exit(test_failures_ ? 1 : 0);
    }
  }
  int bad = 0;
  for (int w = 0; w < workers; w++) {
    int st = 0;
    waitpid(pid[w], &st, 0);
    bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
  }
  CHECK(!bad);
  return test_done();
}
