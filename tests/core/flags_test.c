/* tests/core/flags_test.c: both flag forms, bools, lists, numbers, unknown flags, help. */
#include "test.h"
#include "core/error.h"
#include "core/flags.h"

static const char *config, *name;
static int64_t batch, steps;
static double lr;
static int video, verbose;
static rdt_strlist tasks;

static const rdt_flag flags[] = {
  {"config", RDT_FLAG_STR, &config, "configs/base.yaml", "YAML config"},
  {"name", RDT_FLAG_STR, &name, NULL, "run name"},
  {"train_batch_size", RDT_FLAG_INT, &batch, "4", "batch per process"},
  {"max_train_steps", RDT_FLAG_INT, &steps, "100", "steps"},
  {"learning_rate", RDT_FLAG_FLOAT, &lr, "5e-6", "learning rate"},
  {"record_video", RDT_FLAG_BOOL, &video, "false", "write videos"},
  {"verbose", RDT_FLAG_BOOL, &verbose, "true", "chatty"},
  {"tasks", RDT_FLAG_LIST, &tasks, "a,b", "task names"},
};
static const int nflags = sizeof flags / sizeof flags[0];

/* Parse a NULL-terminated argument list. */
static int parse(rdt_overrides *ov, rdt_strlist *pos, ...) {
  static char *argv[64];
  va_list ap;
  va_start(ap, pos);
  int argc = 0;
  argv[argc++] = "train";
  for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
  va_end(ap);
  rdt_strlist_free(&tasks);
  return rdt_flags_parse("train", "train RDT", flags, nflags, argc, argv, ov, pos);
}

static void t_defaults(void) {
  CHECK(parse(NULL, NULL, NULL) == 0);
  CHECK(strcmp(config, "configs/base.yaml") == 0 && name == NULL);
  CHECK(batch == 4 && steps == 100 && lr == 5e-6 && video == 0 && verbose == 1);
  CHECK(tasks.n == 2 && strcmp(tasks.v[0], "a") == 0 && strcmp(tasks.v[1], "b") == 0);
  CHECK(!rdt_flag_given(flags, nflags, "train_batch_size"));
}

static void t_both_forms(void) {
  CHECK(parse(NULL, NULL, "--train_batch_size=16", "--max_train_steps", "7", "--learning_rate", "1e-4",
              "--name=x=y", NULL) == 0);
  CHECK(batch == 16 && steps == 7 && lr == 1e-4);
  CHECK(strcmp(name, "x=y") == 0);   /* only the first '=' splits */
  CHECK(rdt_flag_given(flags, nflags, "train_batch_size") && rdt_flag_given(flags, nflags, "name"));
  CHECK(!rdt_flag_given(flags, nflags, "config") && !rdt_flag_given(flags, nflags, "nonexistent"));
}

static void t_bools(void) {
  rdt_strlist pos;
  CHECK(parse(NULL, &pos, "--record_video", "--verbose", "false", "file.txt", NULL) == 0);
  CHECK(video == 1 && verbose == 0);
  CHECK(pos.n == 1 && strcmp(pos.v[0], "file.txt") == 0);
  rdt_strlist_free(&pos);
  CHECK(parse(NULL, NULL, "--record_video=0", "--verbose=1", NULL) == 0);
  CHECK(video == 0 && verbose == 1);
  CHECK(parse(NULL, NULL, "--record_video=maybe", NULL) == -1);
  CHECK(strstr(rdt_error(), "--record_video") && strstr(rdt_error(), "maybe"));
}

static void t_lists(void) {
  CHECK(parse(NULL, NULL, "--tasks", "x,y", "--tasks=z", NULL) == 0);
  CHECK(tasks.n == 3);   /* the default is replaced, then items accumulate */
  CHECK(tasks.n == 3 && !strcmp(tasks.v[0], "x") && !strcmp(tasks.v[1], "y") && !strcmp(tasks.v[2], "z"));
}

static void t_numeric_errors(void) {
  CHECK(parse(NULL, NULL, "--train_batch_size", "abc", NULL) == -1);
  CHECK(strstr(rdt_error(), "--train_batch_size") && strstr(rdt_error(), "integer") && strstr(rdt_error(), "abc"));
  CHECK(parse(NULL, NULL, "--train_batch_size=1.5", NULL) == -1);
  CHECK(parse(NULL, NULL, "--train_batch_size=99999999999999999999", NULL) == -1);
  CHECK(parse(NULL, NULL, "--learning_rate=1e-4x", NULL) == -1);
  CHECK(strstr(rdt_error(), "--learning_rate") && strstr(rdt_error(), "number"));
  CHECK(parse(NULL, NULL, "--max_train_steps", NULL) == -1);
  CHECK(strstr(rdt_error(), "needs a value"));
}

static void t_unknown_flag(void) {
  CHECK(parse(NULL, NULL, "--train_bach_size", "4", NULL) == -1);
  CHECK_MSG(strcmp(rdt_error(), "unknown flag --train_bach_size for 'rdt train' (did you mean --train_batch_size?)") == 0,
            "%s", rdt_error());
  CHECK(parse(NULL, NULL, "--bogus_flag", "1", NULL) == -1);
  CHECK(strstr(rdt_error(), "unknown flag --bogus_flag for 'rdt train'") && !strstr(rdt_error(), "did you mean"));
  CHECK(parse(NULL, NULL, "-x", NULL) == -1);
  CHECK(parse(NULL, NULL, "stray", NULL) == -1 && strstr(rdt_error(), "stray"));
}

static void t_overrides(void) {
  rdt_overrides ov;
  CHECK(parse(&ov, NULL, "--model.rdt.depth=2", "--train.lr", "0.5", "--train_batch_size=3", NULL) == 0);
  CHECK(ov.n == 2 && batch == 3);
  CHECK(!strcmp(ov.keys[0], "model.rdt.depth") && !strcmp(ov.values[0], "2"));
  CHECK(!strcmp(ov.keys[1], "train.lr") && !strcmp(ov.values[1], "0.5"));
  rdt_overrides_free(&ov);
  CHECK(parse(NULL, NULL, "--model.rdt.depth=2", NULL) == -1);   /* no overrides accepted */
}

static void t_double_dash(void) {
  rdt_strlist pos;
  CHECK(parse(NULL, &pos, "--", "--record_video", NULL) == 0);
  CHECK(pos.n == 1 && strcmp(pos.v[0], "--record_video") == 0 && video == 0);
  rdt_strlist_free(&pos);
}

static void t_usage(void) {
  char buf[4096];
  FILE *f = tmpfile();
  rdt_flags_usage(f, "train", "train RDT", flags, nflags);
  rewind(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  CHECK(strstr(buf, "usage: rdt train [flags]"));
  CHECK(strstr(buf, "--train_batch_size int") && strstr(buf, "(default: 4)"));
  CHECK(strstr(buf, "--learning_rate float") && strstr(buf, "(default: 5e-6)"));
  CHECK(strstr(buf, "--record_video bool") && strstr(buf, "--tasks list") && strstr(buf, "--config string"));
  CHECK(strstr(buf, "--help"));
}

static void t_edit_distance(void) {
  CHECK(rdt_edit_distance("", "") == 0);
  CHECK(rdt_edit_distance("abc", "") == 3);
  CHECK(rdt_edit_distance("kitten", "sitting") == 3);   /* the textbook example */
  CHECK(rdt_edit_distance("trian", "train") == 1);      /* one adjacent swap */
  CHECK(rdt_edit_distance("flaw", "lawn") == 2);
}

int main(void) {
  RUN(t_defaults);
  RUN(t_both_forms);
  RUN(t_bools);
  RUN(t_lists);
  RUN(t_numeric_errors);
  RUN(t_unknown_flag);
  RUN(t_overrides);
  RUN(t_double_dash);
  RUN(t_usage);
  RUN(t_edit_distance);
  rdt_strlist_free(&tasks);
  return test_done();
}
