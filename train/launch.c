/* train/launch.c: --nproc N through mpirun (see launch.h). */
#define _GNU_SOURCE
#include "train/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rdt_build.h"
#include "core/error.h"
#include "core/log.h"

static volatile pid_t launch_child;

/* Pass SIGINT/SIGTERM on to mpirun, which stops its workers. */
static void forward_signal(int sig) {
  if (launch_child > 0) kill(launch_child, sig);
}

/* Is flag argv[i] --nproc (returns how many argv entries it takes)? */
static int nproc_arg(char *const *argv, int i, int argc) {
  if (strncmp(argv[i], "--nproc=", 8) == 0) return 1;
  if (strcmp(argv[i], "--nproc") == 0) return i + 1 < argc ? 2 : 1;
  return 0;
}

/* The worker command line: mpirun options, this program, argv without --nproc. */
static char **worker_argv(int nproc, int argc, char **argv, const char *mpirun, const char *self) {
  char **v = rdt_calloc((size_t)argc + 16, sizeof *v);
  int k = 0;
  static char np[16];
  snprintf(np, sizeof np, "%d", nproc);
  v[k++] = (char *)mpirun;
  v[k++] = "-np";
  v[k++] = np;
  v[k++] = "--oversubscribe";
  v[k++] = "--bind-to";
  v[k++] = "none";
  v[k++] = (char *)self;
  v[k++] = argv[0];
  for (int i = 1; i < argc;) {
    int skip = nproc_arg(argv, i, argc);
    if (skip) {
      i += skip;
      continue;
    }
    v[k++] = argv[i++];
  }
  v[k] = NULL;
  return v;
}

/* Explain mpirun's exit status. */
static int report_exit(int status, int nproc) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFSIGNALED(status))
    fprintf(stderr, "rdt: error: train --nproc %d: mpirun was killed by signal %d; its workers are gone\n",
            nproc, WTERMSIG(status));
  else
    fprintf(stderr, "rdt: error: train --nproc %d: a worker failed (mpirun exit status %d; see its message "
            "above); the other workers were stopped\n", nproc, WEXITSTATUS(status));
  return WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
}

int rdt_launch_workers(int nproc, int argc, char **argv) {
  if (!RDT_HAVE_MPI)
    return rdt_fail("--nproc %d: this rdt was built without MPI, so it cannot run several workers "
                    "(install libopenmpi-dev and openmpi-bin, then rebuild); run without --nproc for one process",
                    nproc);
  const char *mpirun = getenv("RDT_MPIRUN");
  if (!mpirun || !*mpirun) mpirun = "mpirun";
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return rdt_fail("--nproc: cannot find this program (/proc/self/exe): %s", strerror(errno));
  self[n] = 0;
  if (geteuid() == 0) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  }
  char **v = worker_argv(nproc, argc, argv, mpirun, self);
  rdt_info("launching %d workers: %s -np %d --oversubscribe --bind-to none %s %s ...", nproc, mpirun, nproc,
           self, argv[0]);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return rdt_fail("--nproc: pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) return rdt_fail("--nproc: fork: %s", strerror(errno));
  if (pid == 0) {
    close(pipefd[0]);
    execvp(mpirun, v);
    int e = errno;   /* tell the parent why exec failed */
    ssize_t w = write(pipefd[1], &e, sizeof e);
    (void)w;
    _exit(127);
  }
  close(pipefd[1]);
  free(v);
  int exec_errno = 0;
  ssize_t got = read(pipefd[0], &exec_errno, sizeof exec_errno);
  close(pipefd[0]);
  launch_child = pid;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  launch_child = 0;
  if (got == (ssize_t)sizeof exec_errno)
    return rdt_fail("--nproc %d: cannot run %s: %s (install OpenMPI, e.g. apt-get install openmpi-bin, or set "
                    "RDT_MPIRUN; without it run one process, or start the workers with mpirun yourself)",
                    nproc, mpirun, strerror(exec_errno));
  return report_exit(status, nproc);
}
