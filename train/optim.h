/* train/optim.h: torch.optim.AdamW over the model's flat F32 parameter buffer,
 * and global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
 *
 * Upstream optimises every parameter with one group: lr from the schedule,
 * betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on ALL parameters (biases
 * and norms included).
 */
#ifndef RDT_TRAIN_OPTIM_H
#define RDT_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "kernels/kernels.h"
#include "train/ema.h"

typedef struct {
  double beta1, beta2, eps, weight_decay;
} rdt_adamw_cfg;

typedef struct {
  rdt_adamw_cfg cfg;
  k_backend *b;
  size_t lo, n;      /* the parameters this optimizer updates: [lo, lo + n) */
  float *m, *v;      /* device F32 [n]: exp_avg, exp_avg_sq */
  int64_t step;      /* updates taken (torch's state "step") */
} rdt_adamw;

void rdt_adamw_init(rdt_adamw *o, k_backend *b, const rdt_adamw_cfg *c, size_t n);
/* An optimizer for the shard [lo, lo + n) of the parameters only (ZeRO-1:
 * each rank keeps the moments of its shard; AdamW is elementwise, so the
 * shard's update is bitwise the one a whole-buffer optimizer makes). */
void rdt_adamw_init_shard(rdt_adamw *o, k_backend *b, const rdt_adamw_cfg *c, size_t lo, size_t n);
void rdt_adamw_free(rdt_adamw *o);
/* The optimizer step of a training step in one pass over memory (k_adamw_ema)
 * on params[lo, lo + n): the gradient scaled by coef (rdt_grad_clip_coef;
 * the buffer itself is left as it is), one AdamW update at learning rate lr
 * (k_adamw), rdt_ema_update and, when wc is not NULL, the refresh of wc, the
 * compute copy of the whole parameter buffer (rdt_model_params_changed).
 * params and grads are the whole buffers; e covers the same range as o. */
void rdt_adamw_ema_step(rdt_adamw *o, rdt_ema *e, float *params, const float *grads, double coef, double lr,
                        void *wc);

/* The global L2 norm of grads (n floats, accumulated in double). */
double rdt_grad_norm(k_backend *b, const float *grads, size_t n);
/* clip_grad_norm_'s factor: max_norm / (norm + 1e-6) in float when norm >
 * max_norm, else 1 (no clipping); max_norm <= 0 disables. */
double rdt_grad_clip_coef(double norm, double max_norm);

#endif
