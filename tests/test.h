/* tests/test.h: a minimal harness.  Each test file is one executable (one ctest
 * entry) that runs its cases in order; any failed CHECK makes it exit 1.
 *
 *   static void t_roundtrip(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *   int main(void) { RUN(t_roundtrip); return test_done(); }
 *
 * test_data_dir() finds ../shared/libero (or $RDT_LIBERO_ROOT); a test that
 * needs it and does not find it exits 77, which ctest reports as skipped;
 * CI always has it, so a skip there never hides a failure.
 */
#ifndef RDT_TEST_H
#define RDT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_failures_;
static const char *test_current_ = "";

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__,          \
              test_current_, #cond);                                                 \
      test_failures_++;                                                              \
    }                                                                                \
  } while (0)

#define CHECK_MSG(cond, ...)                                                         \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: [%s] CHECK failed: %s: ", __FILE__, __LINE__,          \
              test_current_, #cond);                                                 \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fputc('\n', stderr);                                                           \
      test_failures_++;                                                              \
    }                                                                                \
  } while (0)

/* |a - b| <= tol */
#define CHECK_NEAR(a, b, tol)                                                        \
  do {                                                                               \
    double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                   \
    if (!(fabs(a_ - b_) <= t_)) {                                                    \
      fprintf(stderr, "%s:%d: [%s] CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %.3g\n", \
              __FILE__, __LINE__, test_current_, #a, a_, #b, b_, t_);                \
      test_failures_++;                                                              \
    }                                                                                \
  } while (0)

/* |a - b| <= rel * max(|a|, |b|) + abs */
#define CHECK_CLOSE(a, b, rel, abs_)                                                 \
  do {                                                                               \
    double a_ = (double)(a), b_ = (double)(b);                                       \
    double t_ = (double)(rel) * fmax(fabs(a_), fabs(b_)) + (double)(abs_);           \
    if (!(fabs(a_ - b_) <= t_)) {                                                    \
      fprintf(stderr, "%s:%d: [%s] CHECK_CLOSE failed: %s = %.9g, %s = %.9g\n",      \
              __FILE__, __LINE__, test_current_, #a, a_, #b, b_);                    \
      test_failures_++;                                                              \
    }                                                                                \
  } while (0)

/* RDT_TEST_ONLY=t_a,t_b runs only those groups (for slow runs such as the
 * CUDA emulation); unset or empty: every group. */
static inline int test_selected(const char *name) {
  const char *list = getenv("RDT_TEST_ONLY");
  if (!list || !*list) return 1;
  size_t n = strlen(name);
  for (const char *p = strstr(list, name); p; p = strstr(p + 1, name))
    if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
  return 0;
}

#define RUN(fn)                                                                      \
  do {                                                                               \
    if (!test_selected(#fn)) break;                                                  \
    int before_ = test_failures_;                                                    \
    test_current_ = #fn;                                                             \
    fn();                                                                            \
    fprintf(stderr, "%s %s\n", test_failures_ == before_ ? "ok  " : "FAIL", #fn);    \
  } while (0)

static inline int test_done(void) {
  if (test_failures_) fprintf(stderr, "%d check(s) failed\n", test_failures_);
  return test_failures_ ? 1 : 0;
}

/* ‖a − b‖ / ‖b‖ over n doubles-or-floats given as double arrays. */
static inline double test_rel_err(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Run a shell command (printf-style); its exit code, -1 if it did not exit. */
static inline int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int test_sh(const char *fmt, ...) {
  char cmd[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Run a shell command capturing stdout and stderr (NUL-terminated, truncated
 * to len); its exit code, or 128 + the signal that ended it. */
static inline int test_capture(const char *cmd, char *out, size_t len) {
  char full[16400];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, len - 1, p);
  out[n] = 0;
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The rdt program ($RDT_BIN, set by ctest for every test). */
static inline const char *test_rdt_bin(void) {
  const char *b = getenv("RDT_BIN");
  return b ? b : "./rdt";
}

/* The LIBERO package folder (holding assets/, bddl_files/, init_files/):
 * $RDT_LIBERO_ROOT, else <source>/../shared/libero/libero.  Exits 77 (skip)
 * when neither exists. */
static inline const char *test_libero_root(void) {
  static char buf[4096];
  const char *env = getenv("RDT_LIBERO_ROOT");
  if (env && *env) return env;
  const char *src = getenv("RDT_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/../shared/libero/libero", src ? src : ".");
  FILE *f = fopen(buf, "r");
  if (!f) {
    fprintf(stderr, "skipped: LIBERO data not found (set RDT_LIBERO_ROOT)\n");
    exit(77);
  }
  fclose(f);
  return buf;
}

/* robosuite's models/assets folder: $RDT_ROBOSUITE_ASSETS, else the shared copy. */
static inline const char *test_robosuite_assets(void) {
  static char buf[4096];
  const char *env = getenv("RDT_ROBOSUITE_ASSETS");
  if (env && *env) return env;
  const char *src = getenv("RDT_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/../shared/libero/robosuite/models/assets", src ? src : ".");
  return buf;
}

/* A scratch folder unique to this test run (created). */
static inline const char *test_tmpdir(const char *name) {
  static char buf[4096];
  const char *base = getenv("RDT_TEST_TMP");
  snprintf(buf, sizeof buf, "%s/rdt-test-%s-%d", base ? base : "/tmp", name, (int)getpid());
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", buf);
  if (system(cmd) != 0) exit(2);
  return buf;
}

#endif
