/* `rdt stats` (issue 4, acceptance 6) against statistics the test computes
 * itself from the fixture's closed-form values: the unified state (joints
 * 0-6, gripper opening (q1 - q2) / 0.08 at 10, eef position 30-32, the 6D
 * rotation [c, s, 0, -s, c, 0] of a yaw about z at 33-38) and the delta
 * actions (position x1.2, rotation x0.5 as Euler xyz -> 6D, gripper
 * (g + 1) / 2), each rounded to float as the unified vector holds it; state_std is upstream compute_dataset_stat_hdf5.py's std over
 * the non-zero entries.  Also: entries of other datasets are kept, and
 * --skip_exist leaves an entry alone. */
#include "train_fixture.h"

enum { E = 3, T = 40, D = 128 };

typedef struct {
  double n, sum[D], sumsq[D], nz[D], zsum[D], zsumsq[D], min[D], max[D];
} acc;

/* Add one vector, rounded to float as the unified vector is. */
static void acc_add(acc *a, const double *vd) {
  double v[D];
  for (int i = 0; i < D; i++) v[i] = (float)vd[i];
  if (a->n == 0)
    for (int i = 0; i < D; i++) a->min[i] = a->max[i] = v[i];
  a->n++;
  for (int i = 0; i < D; i++) {
    double x = v[i], z = fabs(x) > 1e-8 ? x : 0;
    a->sum[i] += x, a->sumsq[i] += x * x;
    a->nz[i] += fabs(x) > 1e-8, a->zsum[i] += z, a->zsumsq[i] += z * z;
    a->min[i] = fmin(a->min[i], x), a->max[i] = fmax(a->max[i], x);
  }
}

/* The fixture's unified state and action at (e, t). */
static void expected_vectors(int e, int t, double *s, double *a) {
  memset(s, 0, D * sizeof(double));
  memset(a, 0, D * sizeof(double));
  for (int j = 0; j < 7; j++) s[j] = fx_joint(e, t, j);
  s[10] = (0.04 * fx_grip(t, T) + 0.04 * fx_grip(t, T)) / 0.08;
  fx_pos(e, t, s + 30);
  double c = cos(fx_yaw(t)), n = sin(fx_yaw(t));
  s[33] = c, s[34] = n, s[35] = 0, s[36] = -n, s[37] = c, s[38] = 0;
  double act[7];
  fx_action(e, t, T, act);
  for (int j = 0; j < 3; j++) a[30 + j] = 1.2 * act[j];
  double yaw = 0.5 * act[5];
  a[33] = cos(yaw), a[34] = sin(yaw), a[36] = -sin(yaw), a[37] = cos(yaw);
  a[10] = (act[6] + 1) / 2;
}

/* Compare a JSON array of 128 numbers with want (1e-6 relative: single-precision inputs). */
static void check_vec(const rdt_json *entry, const char *key, const double *want) {
  const rdt_json *v = rdt_json_get(entry, key);
  CHECK_MSG(v && v->type == RDT_JSON_ARRAY && v->count == D, "%s missing", key);
  if (!v || v->count != D) return;
  int bad = 0;
  for (int i = 0; i < D; i++)
    if (fabs(v->items[i].number - want[i]) > 1e-6 * fabs(want[i]) + 1e-7) {
      if (!bad++) fprintf(stderr, "  %s[%d] = %.12g, expected %.12g\n", key, i, v->items[i].number, want[i]);
    }
  CHECK_MSG(bad == 0, "%s: %d entries differ", key, bad);
}

static char data[512], out[640], cmd[16384];

static void t_stats_match(void) {
  snprintf(out, sizeof out, "%s/stat.json", data);
  const char *other = "{\"other\": {\"state_mean\": [1, 2]}}";
  rdt_write_file_atomic(out, other, strlen(other));
  snprintf(cmd, sizeof cmd, "%s stats --data_dir %s --dataset test_ds --output %s 2>/dev/null", fx_rdt(), data, out);
  CHECK(test_sh("%s", cmd) == 0);
  acc s = {0}, a = {0};
  double sv[D], av[D];
  for (int e = 0; e < E; e++)
    for (int t = 0; t < T; t++) expected_vectors(e, t, sv, av), acc_add(&s, sv), acc_add(&a, av);
  double mean[D], std[D], amean[D], astd[D], var = 0;
  for (int i = 0; i < D; i++) {
    double nz = fmax(s.nz[i], 1), zm = s.zsum[i] / s.n;
    mean[i] = s.sum[i] / s.n;
    std[i] = sqrt(fmax(s.zsumsq[i] / nz - zm * zm * (s.n / nz), 0));
    amean[i] = a.sum[i] / a.n;
    astd[i] = sqrt(fmax(a.sumsq[i] / a.n - amean[i] * amean[i], 0));
    if (i == 10 || (i >= 30 && i <= 38)) var += astd[i] * astd[i];
  }
  rdt_json *j = rdt_json_load(out);
  const rdt_json *entry = j ? rdt_json_get(j, "test_ds") : NULL;
  CHECK(entry != NULL);
  CHECK(j && rdt_json_get(j, "other") != NULL);
  if (!entry) {
    rdt_json_free(j);
    return;
  }
  const rdt_json *name = rdt_json_get(entry, "dataset_name");
  CHECK(name && name->type == RDT_JSON_STRING && strcmp(name->string, "test_ds") == 0);
  check_vec(entry, "state_mean", mean);
  check_vec(entry, "state_std", std);
  check_vec(entry, "state_min", s.min);
  check_vec(entry, "state_max", s.max);
  check_vec(entry, "action_mean", amean);
  check_vec(entry, "action_std", astd);
  check_vec(entry, "action_min", a.min);
  check_vec(entry, "action_max", a.max);
  const rdt_json *g = rdt_json_get(entry, "action_std_global");
  CHECK(g && fabs(g->number - sqrt(var / 10)) < 1e-6);
  int64_t steps = 0;
  CHECK(rdt_json_int64(rdt_json_get(entry, "num_steps"), &steps) == 0 && steps == E * T);
  rdt_json_free(j);
}

static void t_skip_exist(void) {
  const char *mine = "{\"test_ds\": {\"state_mean\": [7]}}";
  rdt_write_file_atomic(out, mine, strlen(mine));
  snprintf(cmd, sizeof cmd, "%s stats --data_dir %s --dataset test_ds --output %s --skip_exist 2>/dev/null",
           fx_rdt(), data, out);
  CHECK(test_sh("%s", cmd) == 0);
  CHECK(fx_file_has(out, "[7]"));
}

int main(void) {
  snprintf(data, sizeof data, "%s", test_tmpdir("train-stats"));
  fx_write(data, E, T, 8);
  RUN(t_stats_match);
  RUN(t_skip_exist);
  return test_done();
}
