/* core/progress.h: a progress bar for long loops.
 *
 * On a terminal: one line redrawn in place with count, rate, ETA and a
 * caller-supplied suffix (loss, success rate).  Not a terminal: a plain line at
 * most every `RDT_PROGRESS_SECONDS` (default 10) seconds and at the end.
 */
#ifndef RDT_PROGRESS_H
#define RDT_PROGRESS_H

#include <stdint.h>
#include <stdio.h>
#include "core/error.h"

typedef struct {
  char label[64];
  int64_t total, done;
  double t_start, t_last_draw;
  int tty;
  int enabled;
  FILE *out;
  char suffix[128];   /* the last suffix given, repeated by rdt_progress_end */
} rdt_progress;

void rdt_progress_start(rdt_progress *p, const char *label, int64_t total);
/* Set the count and redraw if due; suffix_fmt may be NULL. */
void rdt_progress_update(rdt_progress *p, int64_t done, const char *suffix_fmt, ...) RDT_PRINTF(3, 4);
void rdt_progress_end(rdt_progress *p);

/* Monotonic seconds. */
double rdt_now(void);

#endif
