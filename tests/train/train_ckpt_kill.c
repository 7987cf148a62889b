/* SIGKILL during a checkpoint write (issue 4, acceptance 5).  The test
 * watches the output folder with inotify and kills the trainer the moment
 * the temporary folder of checkpoint-10 appears, i.e. while its files are
 * being written.  Then: checkpoint-5 is intact and loadable, there is no
 * checkpoint-10 that `latest` could pick, and a run with
 * --resume_from_checkpoint latest resumes from step 5, removes the leftover
 * and writes a complete checkpoint-10. */
#include <signal.h>
#include <sys/inotify.h>
#include "core/safetensors.h"
#include "core/error.h"
#include "train/checkpoint.h"
#include "train_fixture.h"

static char data[512], out[640], cmd[16384];

static pid_t spawn_train(const char *extra) {
  snprintf(cmd, sizeof cmd,
           "exec %s train --device cpu --config %s --data_dir %s --output_dir %s --train_batch_size 2 --learning_rate 1e-3 "
           "--threads 1 --checkpointing_period 5 --report_to none %s 2>> %s/log.txt",
           fx_rdt(), fx_tiny(), data, out, extra, data);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Wait for an inotify event on a name starting with prefix; 1 found, 0 timeout. */
static int wait_name(int fd, const char *prefix, uint32_t mask) {
  char buf[8192] __attribute__((aligned(8)));
  for (int polls = 0; polls < 120000; polls++) {
    ssize_t n = read(fd, buf, sizeof buf);
    for (ssize_t at = 0; n > 0 && at < n;) {
      struct inotify_event *e = (struct inotify_event *)(buf + at);
      if ((e->mask & mask) && e->len && strncmp(e->name, prefix, strlen(prefix)) == 0) return 1;
      at += (ssize_t)sizeof *e + e->len;
    }
    if (n <= 0) usleep(500);
  }
  return 0;
}

/* Every file of a checkpoint opens, and its state says step 5. */
static void check_loadable(const char *dir) {
  const char *files[] = {"model.safetensors", "ema/model.safetensors", "optimizer.safetensors"};
  char path[4400];
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    rdt_st *st = rdt_st_open(path);
    CHECK_MSG(st && rdt_st_count(st) > 0, "%s: %s", path, rdt_error());
    rdt_st_close(st);
  }
  rdt_train_state s;
  CHECK(rdt_ckpt_read_state(dir, &s) == 0 && s.global_step == 5);
}

static void t_kill_during_write(void) {
  snprintf(out, sizeof out, "%s/run", data);
  rdt_mkdirs(out);
  int fd = inotify_init1(IN_NONBLOCK);
  inotify_add_watch(fd, out, IN_CREATE | IN_MOVED_TO);
  pid_t pid = spawn_train("--max_train_steps 100000");
  CHECK(wait_name(fd, "checkpoint-5", IN_MOVED_TO));      /* the first save completes */
  int hit = wait_name(fd, ".checkpoint-10.", IN_CREATE);   /* the second one starts */
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(fd);
  CHECK(hit);
  char path[4400];
  snprintf(path, sizeof path, "%s/checkpoint-10", out);
  CHECK(!rdt_is_dir(path));   /* killed before the rename: no checkpoint-10 at all */
  char **names;
  int n = rdt_list_dir(out, "", &names), temps = 0;
  for (int i = 0; i < n; i++) temps += strncmp(names[i], ".checkpoint-10.tmp", 18) == 0, free(names[i]);
  if (n >= 0) free(names);
  CHECK_MSG(temps == 1, "the kill did not land during the write (%d temporary folders)", temps);
  char *latest = rdt_ckpt_latest(out);
  CHECK(latest && strcmp(rdt_basename(latest), "checkpoint-5") == 0);
  if (latest) check_loadable(latest);
  free(latest);
}

static void t_resume_after_kill(void) {
  pid_t pid = spawn_train("--max_train_steps 12 --resume_from_checkpoint latest");
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char log[4300];
  snprintf(log, sizeof log, "%s/log.txt", data);
  CHECK(fx_file_has(log, "checkpoint-5 (step 5)") && fx_file_has(log, "unfinished checkpoint folder"));
  char path[4400];
  snprintf(path, sizeof path, "%s/checkpoint-10/trainer_state.json", out);
  CHECK(rdt_is_file(path));
  char **names;
  int n = rdt_list_dir(out, "", &names), temps = 0;
  for (int i = 0; i < n; i++) temps += names[i][0] == '.', free(names[i]);
  if (n >= 0) free(names);
  CHECK(temps == 0);
}

int main(void) {
  snprintf(data, sizeof data, "%s", test_tmpdir("train-kill"));
  fx_write(data, 2, 50, 16);
  RUN(t_kill_during_write);
  RUN(t_resume_after_kill);
  return test_done();
}
