/* rdt eval --resume: an evaluation killed (SIGKILL) after its first episode
 * and run again with --resume ends with the same results.json as an
 * uninterrupted run (settings, per-task and overall summaries, every episode
 * record; wall times aside), having run only the missing episodes.  A resume
 * with other settings is refused and leaves the file alone; a resume of a
 * finished file runs nothing.  Tasks are named (--tasks NAME) here, and the
 * step limit comes from the config's eval: section (a dotted override). */
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include "eval_fixture.h"

static char dir[4096], ckpt[4200];

/* argv of an evaluation of 3 episodes writing to out, plus extra flags. */
static int make_argv(const char *out, const char **extra, int nextra, const char **argv) {
  static const char *base[] = {"eval", "--config", NULL, "--pretrained", NULL, "--tasks",
                               "KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet", "--num_trials", "3",
                               "--eval.max_steps=20", "--exec_horizon", "8", "--threads", "1", "--output", NULL};
  int n = 0;
  argv[n++] = test_rdt_bin();
  for (size_t i = 0; i < sizeof base / sizeof *base; i++) argv[n++] = base[i];
  argv[3] = fx_tiny_yaml(), argv[5] = ckpt, argv[n - 1] = out;
  for (int i = 0; i < nextra; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  return n;
}

/* Start rdt with argv, output to log; the child's pid. */
static pid_t spawn(const char **argv, const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1), dup2(fd, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Episodes in a results file (0 when absent or being replaced). */
static int episodes_in(const char *json) {
  rdt_json *j = rdt_is_file(json) ? rdt_json_load(json) : NULL;
  const rdt_json *e = j ? rdt_json_get(j, "episodes") : NULL;
  int n = e ? e->count : 0;
  rdt_json_free(j);
  return n;
}

/* Are two JSON values equal, ignoring members named "wall_s" and "run" (how
 * each invocation ran)?  Reports the first difference. */
static int same_json(const rdt_json *a, const rdt_json *b, const char *where) {
  if (a->type != b->type) return fprintf(stderr, "%s: types differ\n", where), 0;
  switch (a->type) {
    case RDT_JSON_NULL: return 1;
    case RDT_JSON_BOOL: return a->boolean == b->boolean || (fprintf(stderr, "%s differs\n", where), 0);
    case RDT_JSON_NUMBER: return a->number == b->number || (fprintf(stderr, "%s differs\n", where), 0);
    case RDT_JSON_STRING: return !strcmp(a->string, b->string) || (fprintf(stderr, "%s differs\n", where), 0);
    default: break;
  }
  if (a->count != b->count) return fprintf(stderr, "%s: %d vs %d members\n", where, a->count, b->count), 0;
  for (int i = 0; i < a->count; i++) {
    const rdt_json *x = &a->items[i], *y = &b->items[i];
    if (x->key && (!y->key || strcmp(x->key, y->key))) return fprintf(stderr, "%s: member order\n", where), 0;
    if (x->key && (!strcmp(x->key, "wall_s") || !strcmp(x->key, "run"))) continue;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/%s", where, x->key ? x->key : "[]");
    if (!same_json(x, y, sub)) return 0;
  }
  return 1;
}

/* Are two results files the same apart from run information and wall times? */
static void check_same_results(const char *a, const char *b) {
  rdt_json *ja = fx_json(a), *jb = fx_json(b);
  CHECK_MSG(same_json(ja, jb, ""), "%s and %s differ", a, b);
  const rdt_json *e = rdt_json_get(jb, "episodes");
  CHECK(e && e->count == 3);
  rdt_json_free(ja), rdt_json_free(jb);
}

static void t_kill_and_resume(void) {
  char a[4300], b[4300], ja[4400], jb[4400], log[4300];
  snprintf(a, sizeof a, "%s/whole", dir), snprintf(b, sizeof b, "%s/killed", dir);
  snprintf(ja, sizeof ja, "%s/results.json", a), snprintf(jb, sizeof jb, "%s/results.json", b);
  snprintf(log, sizeof log, "%s/run.log", dir);
  const char *argv[64];
  make_argv(a, NULL, 0, argv);
  CHECK_MSG(wait_exit(spawn(argv, log)) == 0, "uninterrupted run failed");

  make_argv(b, NULL, 0, argv);
  pid_t pid = spawn(argv, log);
  double t0 = (double)time(NULL);
  while (episodes_in(jb) < 1 && time(NULL) - t0 < 120) usleep(5000);
  kill(pid, SIGKILL);
  CHECK(wait_exit(pid) == -1);   /* killed, not exited */
  int done = episodes_in(jb);
  CHECK_MSG(done >= 1 && done < 3, "killed with %d of 3 episodes written", done);

  const char *resume[] = {"--resume"};
  make_argv(b, resume, 1, argv);
  CHECK_MSG(wait_exit(spawn(argv, log)) == 0, "resumed run failed");
  rdt_json *j = fx_json(jb);
  CHECK(fx_int(rdt_json_get(j, "settings"), "max_steps") == 20);
  const rdt_json *eps = rdt_json_get(j, "episodes");
  for (int i = 0; eps && i < eps->count; i++)
    CHECK(fx_int(&eps->items[i], "steps") == 20 || fx_bool(&eps->items[i], "success") == 1);
  CHECK(fx_int(rdt_json_get(j, "run"), "episodes_from_earlier_runs") == done);
  CHECK(fx_int(rdt_json_get(j, "run"), "model_rows") == (3 - done) * 3);   /* ceil(20 / 8) queries each */
  rdt_json_free(j);
  check_same_results(ja, jb);

  /* finished: a resume runs nothing and keeps the results */
  CHECK(wait_exit(spawn(argv, log)) == 0);
  j = fx_json(jb);
  CHECK(fx_int(rdt_json_get(j, "run"), "model_rows") == 0 && fx_int(rdt_json_get(j, "run"), "episodes_from_earlier_runs") == 3);
  rdt_json_free(j);
  check_same_results(ja, jb);

  /* other settings: refused, file untouched */
  char *before = rdt_read_file(jb, NULL);
  const char *other[] = {"--resume", "--seed", "5"};
  make_argv(b, other, 3, argv);
  CHECK(wait_exit(spawn(argv, log)) == 1);
  char *msg = rdt_read_file(log, NULL), *after = rdt_read_file(jb, NULL);
  CHECK_MSG(msg && strstr(msg, "seed differs"), "%s", msg ? msg : "");
  CHECK(before && after && !strcmp(before, after));
  free(before), free(after), free(msg);
}

int main(void) {
  fx_libero_env();
  snprintf(dir, sizeof dir, "%s", test_tmpdir("eval-resume"));
  snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
  fx_checkpoint(ckpt, 3, 0.05);
  RUN(t_kill_and_resume);
  if (!test_done()) test_sh("rm -rf '%s'", dir);
  return test_done();
}
