/* core/progress.c: a progress bar: redrawn in place on a terminal, plain lines otherwise. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/progress.h"

double rdt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds between plain-line reports: RDT_PROGRESS_SECONDS, default 10. */
static double plain_interval(void) {
  const char *e = getenv("RDT_PROGRESS_SECONDS");
  if (!e || !*e) return 10.0;
  char *end;
  double v = strtod(e, &end);
  return *end || v < 0 ? 10.0 : v;
}

/* "h:mm:ss" or "mm:ss". */
static void format_duration(char *buf, size_t len, double s) {
  if (!(s >= 0) || s > 359999999) {
    snprintf(buf, len, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, len, "%02ld:%02ld", t / 60, t % 60);
}

void rdt_progress_start(rdt_progress *p, const char *label, int64_t total) {
  memset(p, 0, sizeof *p);
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  p->total = total;
  p->out = stderr;
  p->tty = isatty(fileno(stderr));
  p->enabled = 1;
  p->t_start = p->t_last_draw = rdt_now();
}

/* Write the current state: "label done/total (pct%) rate it/s elapsed E eta R suffix". */
static void draw(rdt_progress *p, double now, const char *suffix, int final) {
  double elapsed = now - p->t_start;
  double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
  char line[512], el[32], eta[32];
  int n = 0;
  format_duration(el, sizeof el, elapsed);
  if (p->total > 0) {
    double pct = 100.0 * (double)p->done / (double)p->total;
    format_duration(eta, sizeof eta, rate > 0 ? (double)(p->total - p->done) / rate : -1);
    n = snprintf(line, sizeof line, "%s %lld/%lld (%.0f%%) %.3g it/s elapsed %s eta %s", p->label,
                 (long long)p->done, (long long)p->total, pct, rate, el, final ? "00:00" : eta);
  } else {
    n = snprintf(line, sizeof line, "%s %lld %.3g it/s elapsed %s", p->label, (long long)p->done, rate, el);
  }
  if (suffix && *suffix && n > 0 && (size_t)n < sizeof line) snprintf(line + n, sizeof line - (size_t)n, " %s", suffix);
  if (p->tty) fprintf(p->out, "\r%s\x1b[K%s", line, final ? "\n" : "");
  else fprintf(p->out, "%s\n", line);
  fflush(p->out);
  p->t_last_draw = now;
}

void rdt_progress_update(rdt_progress *p, int64_t done, const char *suffix_fmt, ...) {
  p->done = done;
  if (!p->enabled) return;
  if (suffix_fmt) {
    va_list ap;
    va_start(ap, suffix_fmt);
    vsnprintf(p->suffix, sizeof p->suffix, suffix_fmt, ap);
    va_end(ap);
  }
  double now = rdt_now(), interval = p->tty ? 0.1 : plain_interval();
  if (now - p->t_last_draw >= interval) draw(p, now, p->suffix, 0);
}

void rdt_progress_end(rdt_progress *p) {
  if (!p->enabled) return;
  draw(p, rdt_now(), p->suffix, 1);
  p->enabled = 0;
}
