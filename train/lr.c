/* train/lr.c: learning-rate schedules (see lr.h). */
#include "train/lr.h"

#include <math.h>
#include <string.h>
#include "core/error.h"

static const char *lr_names[] = {"constant", "constant_with_warmup", "linear", "cosine"};

/* Parse a --lr_scheduler name. */
int rdt_lr_parse(const char *name, rdt_lr_kind *out) {
  for (int i = 0; i < 4; i++)
    if (name && strcmp(name, lr_names[i]) == 0) {
      *out = (rdt_lr_kind)i;
      return 0;
    }
  return rdt_fail("--lr_scheduler: unknown schedule '%s' (known: constant, constant_with_warmup, "
                  "linear, cosine)", name ? name : "");
}

/* The flag spelling of a schedule. */
const char *rdt_lr_name(rdt_lr_kind k) { return lr_names[k]; }

/* The multiplier after `step` optimizer steps (diffusers' lr_lambda). */
double rdt_lr_factor(const rdt_lr_schedule *s, int64_t step) {
  if (s->kind == RDT_LR_CONSTANT) return 1.0;
  if (step < s->warmup) return (double)step / (double)(s->warmup > 1 ? s->warmup : 1);
  if (s->kind == RDT_LR_CONSTANT_WARMUP) return 1.0;
  double span = (double)(s->total - s->warmup > 1 ? s->total - s->warmup : 1);
  if (s->kind == RDT_LR_LINEAR) return fmax(0.0, (double)(s->total - step) / span);
  double progress = (double)(step - s->warmup) / span;
  return fmax(0.0, 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress)));
}

/* base * factor. */
double rdt_lr_at(const rdt_lr_schedule *s, int64_t step) { return s->base * rdt_lr_factor(s, step); }
