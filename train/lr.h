/* train/lr.h: learning-rate schedules, as diffusers 0.27.2 get_scheduler builds
 * them on a torch LambdaLR.
 *
 * The factor multiplies --learning_rate.  `step` counts optimizer steps taken
 * so far (LambdaLR's last_epoch): the first update uses factor(0), so a warmup
 * starts from lr 0 exactly as upstream.
 *   constant              1
 *   constant_with_warmup  s/max(1,w) for s < w, else 1
 *   linear                warmup, then max(0, (N - s) / max(1, N - w))
 *   cosine                warmup, then max(0, (1 + cos(pi * p)) / 2),
 *                         p = (s - w) / max(1, N - w)  (num_cycles 0.5)
 */
#ifndef RDT_TRAIN_LR_H
#define RDT_TRAIN_LR_H

#include <stdint.h>

typedef enum { RDT_LR_CONSTANT, RDT_LR_CONSTANT_WARMUP, RDT_LR_LINEAR, RDT_LR_COSINE } rdt_lr_kind;

typedef struct {
  rdt_lr_kind kind;
  double base;         /* --learning_rate */
  int64_t warmup;      /* --lr_warmup_steps */
  int64_t total;       /* --max_train_steps */
} rdt_lr_schedule;

/* Parse a --lr_scheduler name; -1 + rdt_error() listing the known ones. */
int rdt_lr_parse(const char *name, rdt_lr_kind *out);
const char *rdt_lr_name(rdt_lr_kind k);
/* The multiplier after `step` optimizer steps. */
double rdt_lr_factor(const rdt_lr_schedule *s, int64_t step);
/* base * factor. */
double rdt_lr_at(const rdt_lr_schedule *s, int64_t step);

#endif
