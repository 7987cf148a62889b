/* tests/cli/cli_test.c: the rdt program's command table, help and errors. */
#include "rdt_build.h"
#include "test.h"

static char buf[1 << 16];
static char cmd[2048];

static void t_help_lists_every_command(void) {
  static const char *names[] = {"train", "eval", "sim", "bench", "stats", "convert", "encode-lang", "init", "inspect"};
  snprintf(cmd, sizeof cmd, "%s --help", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 0);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char needle[64];
    snprintf(needle, sizeof needle, "\n  %s ", names[i]);
    CHECK_MSG(strstr(buf, needle) != NULL, "command %s missing from --help", names[i]);
  }
}

static void t_version(void) {
  snprintf(cmd, sizeof cmd, "%s --version", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 0);
  CHECK(strncmp(buf, "rdt ", 4) == 0);
}

static void t_unknown_command_suggests(void) {
  snprintf(cmd, sizeof cmd, "%s trian", getenv("RDT_BIN"));
  int rc = test_capture(cmd, buf, sizeof buf);
  CHECK(rc == 1);
  CHECK(strstr(buf, "unknown command 'trian'") != NULL);
  CHECK(strstr(buf, "did you mean 'train'") != NULL);
}

static void t_no_arguments_is_usage_error(void) {
  snprintf(cmd, sizeof cmd, "%s", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 2);
  CHECK(strstr(buf, "usage: rdt COMMAND") != NULL);
}

static void t_bench_lists_targets(void) {
  snprintf(cmd, sizeof cmd, "%s bench --help", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 0);
  CHECK(strstr(buf, "policy") && strstr(buf, "train") && strstr(buf, "sim") && strstr(buf, "encoders"));
  snprintf(cmd, sizeof cmd, "%s bench polcy", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 1);
  CHECK(strstr(buf, "did you mean 'policy'") != NULL);
}

/* Every command's --help exits 0 and lists flags with their defaults. */
static void t_every_command_has_help(void) {
  static const char *names[] = {"train", "eval", "sim", "stats", "convert", "encode-lang", "init", "inspect", "predict"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!RDT_HAVE_MUJOCO && (strcmp(names[i], "eval") == 0 || strcmp(names[i], "sim") == 0)) {
      snprintf(cmd, sizeof cmd, "%s %s --help", getenv("RDT_BIN"), names[i]);
      CHECK(test_capture(cmd, buf, sizeof buf) == 1 && strstr(buf, "not in this build"));
      continue;
    }
    snprintf(cmd, sizeof cmd, "%s %s --help", getenv("RDT_BIN"), names[i]);
    int rc = test_capture(cmd, buf, sizeof buf);
    CHECK_MSG(rc == 0, "rdt %s --help exited %d", names[i], rc);
    CHECK_MSG(strstr(buf, "usage: rdt") != NULL, "rdt %s --help: no usage line", names[i]);
    if (strcmp(names[i], "sim") != 0)   /* rdt sim lists its subcommands instead */
      CHECK_MSG(strstr(buf, "(default: ") != NULL, "rdt %s --help shows no defaults", names[i]);
  }
}

/* Every bench target's --help names itself ("usage: rdt bench T") and shows defaults. */
static void t_bench_targets_have_help(void) {
  static const char *names[] = {"kernels", "policy", "eval-policy", "train", "sim", "encoders"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(cmd, sizeof cmd, "%s bench %s --help", getenv("RDT_BIN"), names[i]);
    int rc = test_capture(cmd, buf, sizeof buf);
    if (!RDT_HAVE_MUJOCO && (strcmp(names[i], "sim") == 0 || strcmp(names[i], "eval-policy") == 0)) continue;
    char want[64];
    snprintf(want, sizeof want, "usage: rdt bench %s", names[i]);
    CHECK_MSG(rc == 0, "rdt bench %s --help exited %d", names[i], rc);
    CHECK_MSG(strstr(buf, want) != NULL, "rdt bench %s --help: no '%s' line", names[i], want);
    CHECK_MSG(strstr(buf, "(default: ") != NULL, "rdt bench %s --help shows no defaults", names[i]);
  }
}

/* RDT_KERNEL_PROFILE=1 prints the per-op table when the backend closes. */
static void t_kernel_profile(void) {
  snprintf(cmd, sizeof cmd, "RDT_KERNEL_PROFILE=1 %s bench policy --config %s/configs/tiny.yaml --repeat 1 --warmup 0",
           getenv("RDT_BIN"), getenv("RDT_SOURCE_DIR"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 0);
  CHECK_MSG(strstr(buf, "kernel profile of cpu") != NULL, "no profile table: %.300s", buf);
  CHECK(strstr(buf, "linear 67x64x64 +bias") != NULL && strstr(buf, "attention B1 Tq67") != NULL);
  snprintf(cmd, sizeof cmd, "%s bench policy --config %s/configs/tiny.yaml --repeat 1 --warmup 0", getenv("RDT_BIN"),
           getenv("RDT_SOURCE_DIR"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 0);
  CHECK(strstr(buf, "kernel profile") == NULL);
}

/* rdt bench train puts the synthetic image tokens on the device once (as the
 * encoder leaves them in rdt train) or, with --host_tokens, uploads them every
 * step: the same steps either way, so the same losses. */
static void t_bench_train_tokens(void) {
  char losses[2][64];
  for (int host = 0; host < 2; host++) {
    snprintf(cmd, sizeof cmd, "%s bench train --config %s/configs/tiny.yaml --batch 2 --steps 2 --threads 1%s",
             getenv("RDT_BIN"), getenv("RDT_SOURCE_DIR"), host ? " --host_tokens" : "");
    CHECK(test_capture(cmd, buf, sizeof buf) == 0);
    CHECK_MSG(strstr(buf, host ? "\"img_tokens_from\": \"host\"" : "\"img_tokens_from\": \"device\"") != NULL, "%.400s",
              buf);
    const char *l = strstr(buf, "\"loss_last\"");
    CHECK_MSG(l != NULL, "no loss_last: %.400s", buf);
    snprintf(losses[host], sizeof losses[host], "%.40s", l ? l : "");
  }
  CHECK_MSG(strcmp(losses[0], losses[1]) == 0, "device tokens %s, host tokens %s", losses[0], losses[1]);
}

/* Issue 2, acceptance 3: an unknown flag fails and is named. */
static void t_unknown_flag_is_named(void) {
  snprintf(cmd, sizeof cmd, "%s train --bogus_flag 1", getenv("RDT_BIN"));
  int rc = test_capture(cmd, buf, sizeof buf);
  CHECK(rc != 0 && rc < 128);
  CHECK(strstr(buf, "--bogus_flag") != NULL);
  snprintf(cmd, sizeof cmd, "%s init --seeed 3", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 1);
  CHECK(strstr(buf, "did you mean --seed?") != NULL);
  snprintf(cmd, sizeof cmd, "%s train --train_batch_size=abc", getenv("RDT_BIN"));
  CHECK(test_capture(cmd, buf, sizeof buf) == 1);
  CHECK(strstr(buf, "train_batch_size") != NULL);
}

int main(void) {
  if (!getenv("RDT_BIN")) {
    fprintf(stderr, "RDT_BIN not set\n");
    return 1;
  }
  RUN(t_help_lists_every_command);
  RUN(t_version);
  RUN(t_unknown_command_suggests);
  RUN(t_no_arguments_is_usage_error);
  RUN(t_bench_lists_targets);
  RUN(t_bench_targets_have_help);
  RUN(t_kernel_profile);
  RUN(t_bench_train_tokens);
  RUN(t_every_command_has_help);
  RUN(t_unknown_flag_is_named);
  return test_done();
}
