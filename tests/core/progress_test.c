/* tests/core/progress_test.c: the plain (non-terminal) line format and its rate limit. */
#include "test.h"
#include "core/progress.h"

static char buf[8192];

/* Read everything written to f. */
static const char *slurp(FILE *f) {
  fflush(f);
  rewind(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  return buf;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void t_plain_lines(void) {
  setenv("RDT_PROGRESS_SECONDS", "0", 1);
  rdt_progress p;
  rdt_progress_start(&p, "train", 4);
  FILE *f = tmpfile();
  p.out = f;
  p.tty = 0;
  p.t_start -= 2.0;   /* pretend two seconds have passed: 1 step -> 0.5 it/s */
  rdt_progress_update(&p, 1, "loss %.3f", 0.25);
  rdt_progress_end(&p);
  const char *s = slurp(f);
  CHECK(count_lines(s) == 2);
  CHECK_MSG(strncmp(s, "train 1/4 (25%) 0.5 it/s elapsed 00:02 eta 00:06 loss 0.250\n", 60) == 0, "got %s", s);
  const char *second = strchr(s, '\n') + 1;
  CHECK_MSG(strncmp(second, "train 1/4 (25%)", 15) == 0 && strstr(second, "eta 00:00 loss 0.250\n"), "got %s", second);
  CHECK(!strchr(s, '\r') && !strchr(s, '\x1b'));   /* no terminal control in plain mode */
  fclose(f);
}

static void t_rate_limited(void) {
  setenv("RDT_PROGRESS_SECONDS", "1000", 1);
  rdt_progress p;
  rdt_progress_start(&p, "eval", 0);
  FILE *f = tmpfile();
  p.out = f;
  p.tty = 0;
  for (int i = 1; i <= 100; i++) rdt_progress_update(&p, i, NULL);
  rdt_progress_end(&p);
  const char *s = slurp(f);
  CHECK(count_lines(s) == 1);   /* only the final line */
  CHECK_MSG(strncmp(s, "eval 100 ", 9) == 0, "got %s", s);   /* no total: no percentage or eta */
  CHECK(!strstr(s, "eta"));
  fclose(f);
}

static void t_tty_redraws(void) {
  rdt_progress p;
  rdt_progress_start(&p, "x", 10);
  FILE *f = tmpfile();
  p.out = f;
  p.tty = 1;
  p.t_last_draw -= 1;
  rdt_progress_update(&p, 5, NULL);
  rdt_progress_end(&p);
  const char *s = slurp(f);
  CHECK(s[0] == '\r' && strstr(s, "\x1b[K") && count_lines(s) == 1);
  fclose(f);
}

static void t_now_monotonic(void) {
  double a = rdt_now(), b = rdt_now();
  CHECK(b >= a && a > 0);
}

int main(void) {
  RUN(t_plain_lines);
  RUN(t_rate_limited);
  RUN(t_tty_redraws);
  RUN(t_now_monotonic);
  return test_done();
}
