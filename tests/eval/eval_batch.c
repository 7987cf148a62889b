/* scripts/eval_batch.sh over two checkpoint folders (a glob) x two tasks on
 * two CPU worker processes: every (checkpoint, task) unit gets its results
 * file, and the merged table (summary.csv and summary.md) has one column per
 * checkpoint and one row per task, each cell the rate of that unit's results
 * file.  Run again, the script resumes: nothing is re-evaluated (no model
 * rows) and the table is unchanged. */
#include "sim/env.h"
#include "eval_fixture.h"

static char dir[4096];

static int batch(const char *log) {
  const char *src = getenv("RDT_SOURCE_DIR");
  return test_sh("cd '%s' && bash '%s/scripts/eval_batch.sh' --rdt '%s' --checkpoints '%s/ck-*' "
               "--tasks 0,KITCHEN_SCENE3_turn_on_the_stove --cpu_workers 2 --output '%s/out' -- --config '%s' "
               "--num_trials 1 --max_steps 6 --exec_horizon 4 --threads 1 > '%s' 2>&1",
               dir, src ? src : ".", test_rdt_bin(), dir, dir, fx_tiny_yaml(), log);
}

/* The rate of one unit's results file, as the merge must print it. */
static double unit_rate(const char *label, const char *task) {
  char path[8192];
  snprintf(path, sizeof path, "%s/out/runs/%s/%s/results.json", dir, label, task);
  rdt_json *j = fx_json(path);
  const rdt_json *o = rdt_json_get(j, "overall");
  double r = o ? rdt_json_get(o, "rate")->number : -1;
  CHECK(o && fx_int(o, "trials") == 1);
  rdt_json_free(j);
  return r;
}

static void t_batch(void) {
  char log[4300], csv[4300], md[4300];
  snprintf(log, sizeof log, "%s/batch.log", dir);
  snprintf(csv, sizeof csv, "%s/out/summary.csv", dir), snprintf(md, sizeof md, "%s/out/summary.md", dir);
  int rc = batch(log);
  char *text = rdt_read_file(log, NULL);
  CHECK_MSG(rc == 0, "eval_batch.sh exit %d:\n%s", rc, text ? text : "");
  free(text);
  if (rc != 0) return;
  char label[2][4200], want[2][8192];
  for (int c = 0; c < 2; c++) {
    snprintf(label[c], sizeof label[c], "%s/ck-%c", dir, 'a' + c);
    for (char *p = label[c]; *p; p++)
      if (*p == '/') *p = '_';
  }
  const char *task5 = "KITCHEN_SCENE3_turn_on_the_stove";
  char *table = rdt_read_file(csv, NULL), *mdt = rdt_read_file(md, NULL);
  CHECK(table && mdt);
  if (!table || !mdt) return;
  char header[16384];   /* a column's label: the weights path without /ema/model.safetensors */
  snprintf(header, sizeof header, "task,name,\"%s/ck-a\",\"%s/ck-b\"\n", dir, dir);
  CHECK_MSG(!strncmp(table, header, strlen(header)), "header:\n%s", table);
  int t5 = sim_task_find(task5);
  snprintf(want[0], sizeof want[0], "0,%s,%.4f,%.4f\n", sim_task_name(0), unit_rate(label[0], "0"),
           unit_rate(label[1], "0"));
  snprintf(want[1], sizeof want[1], "%d,%s,%.4f,%.4f\n", t5, task5, unit_rate(label[0], task5),
           unit_rate(label[1], task5));
  CHECK_MSG(strstr(table, want[0]) && strstr(table, want[1]), "table:\n%s", table);
  CHECK(strstr(table, "mean,mean of task rates,") != NULL);
  CHECK(strstr(mdt, "| task | name |") && strstr(mdt, task5));
  /* again: resumed, nothing run, same table */
  CHECK(batch(log) == 0);
  char *again = rdt_read_file(csv, NULL);
  CHECK(again && !strcmp(again, table));
  char path[16384];
  snprintf(path, sizeof path, "%s/out/runs/%s/0/results.json", dir, label[1]);
  rdt_json *j = fx_json(path);
  CHECK(fx_int(rdt_json_get(j, "run"), "model_rows") == 0);
  rdt_json_free(j);
  free(table), free(mdt), free(again);
}

int main(void) {
  fx_libero_env();
  unsetenv("CUDA_VISIBLE_DEVICES");
  snprintf(dir, sizeof dir, "%s", test_tmpdir("eval-batch"));
  char ck[4300];
  snprintf(ck, sizeof ck, "%s/ck-a", dir);
  fx_checkpoint(ck, 21, 0.05);
  snprintf(ck, sizeof ck, "%s/ck-b", dir);
  fx_checkpoint(ck, 22, 0.05);
  RUN(t_batch);
  if (!test_done()) test_sh("rm -rf '%s'", dir);
  return test_done();
}
