/* Data-parallel training over MPI (issue 4, acceptance 4; issue 7, line 5):
 *   - `mpirun -np 2` with batch B/2 per rank gives, after 10 steps, weights
 *     within 1e-6 of one process with batch B;
 *   - the gradient all-reduce overlapped with the backward pass gives bitwise
 *     the same weights as one all-reduce after it;
 *   - ZeRO-1 (--zero_stage 1) gives bitwise the same weights, EMA and
 *     checkpointed moments, also after a sharded resume;
 *   - killing one rank makes the other exit non-zero within 60 s, with a
 *     message;
 *   - `rdt train --nproc 2` starts two workers (world size 2) and, when one
 *     worker dies, stops the other and exits non-zero with a message. */
#include <signal.h>
#include <sys/time.h>
#include "core/safetensors.h"
#include "train_fixture.h"

static char data[512], cmd[16384];

static double now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return tv.tv_sec + tv.tv_usec * 1e-6;
}

static const char *common(void) {
  static char buf[8192];
  snprintf(buf, sizeof buf, "--device cpu --config %s --data_dir %s --learning_rate 1e-3 --seed 5 --threads 1 --report_to none",
           fx_tiny(), data);
  return buf;
}

/* Largest |a - b| over the tensors of two weight files (INFINITY if they do not match). */
static double max_weight_diff(const char *a, const char *b) {
  rdt_st *x = rdt_st_open(a), *y = rdt_st_open(b);
  double m = x && y && rdt_st_count(x) == rdt_st_count(y) ? 0 : INFINITY;
  for (int i = 0; isfinite(m) && i < rdt_st_count(x); i++) {
    const rdt_tensor *t = rdt_st_get(x, i), *u = rdt_st_find(y, t->name);
    if (!u || rdt_numel(u) != rdt_numel(t) || t->dtype != RDT_F32 || u->dtype != RDT_F32) {
      m = INFINITY;
      break;
    }
    const float *p = t->data, *q = u->data;
    for (int64_t k = 0; k < rdt_numel(t); k++) m = fmax(m, fabs((double)p[k] - q[k]));
  }
  rdt_st_close(x);
  rdt_st_close(y);
  return m;
}

static void t_two_ranks_equal_one(void) {
  snprintf(cmd, sizeof cmd, "%s train %s --output_dir %s/one --train_batch_size 4 --max_train_steps 10 2>/dev/null",
           fx_rdt(), common(), data);
  CHECK(test_sh("%s", cmd) == 0);
  snprintf(cmd, sizeof cmd,
           "mpirun -np 2 --oversubscribe %s train %s --output_dir %s/two --train_batch_size 2 --max_train_steps 10 "
           "2> %s/two.txt",
           fx_rdt(), common(), data, data);
  CHECK(test_sh("%s", cmd) == 0);
  char a[4400], b[4400];
  snprintf(a, sizeof a, "%s/one/model.safetensors", data);
  snprintf(b, sizeof b, "%s/two/model.safetensors", data);
  double d = max_weight_diff(a, b);
  fprintf(stderr, "  max |w1 - w2| after 10 steps: %.3g\n", d);
  CHECK(d <= 1e-6);
  snprintf(a, sizeof a, "%s/two.txt", data);
  CHECK(fx_file_has(a, "2 per process x 2 processes x 1 accumulation step = 4 samples"));
  CHECK(fx_file_has(a, "overlapped with the backward pass"));
}

/* The all-reduce overlapped with the backward pass (one per block, started as
 * the block finishes) gives bitwise the same weights as one all-reduce after
 * it, also with gradient accumulation (only the last micro-batch overlaps). */
static void t_overlap_bitwise(void) {
  const char *how[2] = {"RDT_DIST_OVERLAP=0", "RDT_DIST_OVERLAP=1"};
  char out[2][4400];
  for (int k = 0; k < 2; k++) {
    snprintf(cmd, sizeof cmd,
             "%s mpirun -np 2 --oversubscribe -x RDT_DIST_OVERLAP %s train %s --output_dir %s/ov%d "
             "--train_batch_size 1 --gradient_accumulation_steps 2 --max_train_steps 4 2> %s/ov%d.txt",
             how[k], fx_rdt(), common(), data, k, data, k);
    CHECK(test_sh("%s", cmd) == 0);
    snprintf(out[k], sizeof out[k], "%s/ov%d.txt", data, k);
    CHECK(fx_file_has(out[k], "overlapped with the backward pass") == k);
    snprintf(out[k], sizeof out[k], "%s/ov%d/model.safetensors", data, k);
  }
  double d = max_weight_diff(out[0], out[1]);
  fprintf(stderr, "  overlapped vs after the pass: max |w1 - w2| %.3g\n", d);
  CHECK(d == 0);
}

/* ZeRO-1 (AdamW moments and EMA sharded, weights all-gathered): the same
 * weights, EMA and checkpointed moments, bitwise, as the unsharded run; and a
 * sharded resume from its step-2 checkpoint ends bitwise where it ended. */
static void t_zero1_bitwise(void) {
  const char *runs[3] = {"--zero_stage 0", "--zero_stage 1", "--zero_stage 1 --resume_from_checkpoint %s/z1/checkpoint-2"};
  for (int k = 0; k < 3; k++) {
    char extra[4400];
    snprintf(extra, sizeof extra, runs[k], data);
    snprintf(cmd, sizeof cmd,
             "mpirun -np 2 --oversubscribe %s train %s --output_dir %s/z%d --train_batch_size 1 "
             "--gradient_accumulation_steps 2 --max_train_steps 4 --checkpointing_period 2 %s 2> %s/z%d.txt",
             fx_rdt(), common(), data, k, extra, data, k);
    CHECK(test_sh("%s", cmd) == 0);
  }
  char log[4400];
  snprintf(log, sizeof log, "%s/z1.txt", data);
  CHECK(fx_file_has(log, "AdamW moments and EMA sharded"));
  CHECK(fx_file_has(log, "(ZeRO-1 shard)"));
  const char *files[] = {"model.safetensors", "ema/model.safetensors", "checkpoint-4/optimizer.safetensors",
                         "checkpoint-4/ema/model.safetensors"};
  for (int f = 0; f < 4; f++)
    for (int k = 1; k < 3; k++) {
      char a[4400], b[4400];
      snprintf(a, sizeof a, "%s/z0/%s", data, files[f]);
      snprintf(b, sizeof b, "%s/z%d/%s", data, k, files[f]);
      double d = max_weight_diff(a, b);
      CHECK_MSG(d == 0, "%s: ZeRO-1 run %d differs from the unsharded run by %.3g", files[f], k, d);
    }
}

/* ---------------------------------------------------------------- dead workers */
/* Start `sh -c command` in its own process group, output into log. */
static pid_t spawn(const char *command, const char *log) {
  snprintf(cmd, sizeof cmd, "exec %s > %s 2>&1", command, log);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* The pid a worker printed ("rank R/2 pid P"), waiting up to 60 s while the
 * job runs; 0 if none. */
static pid_t worker_pid(pid_t job, const char *log, int rank) {
  char key[32];
  snprintf(key, sizeof key, "rank %d/2 pid ", rank);
  for (int tries = 0; tries < 600; tries++) {
    char *text = rdt_read_file(log, NULL);
    const char *at = text ? strstr(text, key) : NULL;
    pid_t pid = at ? (pid_t)atoi(at + strlen(key)) : 0;
    free(text);
    if (pid > 0) return pid;
    if (kill(job, 0) != 0 || waitpid(job, NULL, WNOHANG) == job) return 0;
    usleep(100000);
  }
  return 0;
}

/* Wait for pid up to limit seconds; its exit status, or -1 on timeout. */
static int wait_limit(pid_t pid, double limit, double *took) {
  double t0 = now();
  int status;
  while (now() - t0 < limit) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      *took = now() - t0;
      return status;
    }
    usleep(50000);
  }
  return -1;
}

/* Is pid a live process (not gone, not a zombie)?  Waits up to 5 s for it to end. */
static int alive(pid_t pid) {
  for (int tries = 0; tries < 50; tries++) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    if (!paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X') return 0;
    usleep(100000);
  }
  return 1;
}

/* Start a long run, kill one worker, expect every process to end quickly. */
static void kill_one(const char *launcher, const char *extra, const char *name, int victim, const char *expect) {
  char log[1024], command[12000];
  snprintf(log, sizeof log, "%s/%s.txt", data, name);
  snprintf(command, sizeof command, "%s %s train %s --output_dir %s/%s --train_batch_size 2 --max_train_steps 1000000 %s",
           launcher, fx_rdt(), common(), data, name, extra);
  pid_t job = spawn(command, log);
  pid_t p0 = worker_pid(job, log, 0), p1 = worker_pid(job, log, 1);
  CHECK(p0 > 0 && p1 > 0);
  if (p0 > 0 && p1 > 0) {
    sleep(1);
    kill(victim ? p1 : p0, SIGKILL);
    double took = 0;
    int status = wait_limit(job, 60, &took);
    fprintf(stderr, "  %s: the job ended %.1f s after the kill\n", name, took);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0);
    CHECK(!alive(victim ? p0 : p1));   /* the survivor is gone */
    CHECK_MSG(fx_file_has(log, expect), "%s has no '%s'", log, expect);
  }
  kill(-job, SIGKILL);
  waitpid(job, NULL, WNOHANG);
}

static void t_dead_rank_under_mpirun(void) {
  kill_one("mpirun -np 2 --oversubscribe", "", "mpikill", 1, "rank 0: stopped by SIGTERM");
}

static void t_nproc_launcher(void) {
  snprintf(cmd, sizeof cmd, "%s train %s --output_dir %s/nproc --train_batch_size 2 --max_train_steps 3 --nproc 2 "
           "2> %s/nproc.txt", fx_rdt(), common(), data, data);
  CHECK(test_sh("%s", cmd) == 0);
  char log[4400];
  snprintf(log, sizeof log, "%s/nproc.txt", data);
  CHECK(fx_file_has(log, "world size          2 processes"));
  snprintf(log, sizeof log, "%s/nproc/model.safetensors", data);
  CHECK(rdt_is_file(log));
  kill_one("", "--nproc 2", "nprockill", 0, "a worker failed");
}

int main(void) {
  fx_mpi_env();
  snprintf(data, sizeof data, "%s", test_tmpdir("train-mpi"));
  fx_write(data, 3, 60, 16);
  RUN(t_two_ranks_equal_one);
  RUN(t_overlap_bitwise);
  RUN(t_zero1_bitwise);
  RUN(t_dead_rank_under_mpirun);
  RUN(t_nproc_launcher);
  return test_done();
}
