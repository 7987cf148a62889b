/* train/trainer.h: the training run of `rdt train` (upstream train/train.py).
 *
 * Per optimizer step, on every rank: gradient_accumulation_steps micro-
 * batches of train_batch_size samples, each rdt_model_loss with backward at
 * grad scale 1/accumulation (accelerate's loss division), the EMA updated
 * after every micro-batch as upstream; then the gradient mean over ranks, its
 * global norm (NaN/Inf stops the run with the step number, saving nothing),
 * clipping to max_grad_norm, AdamW at the scheduled learning rate (one fused
 * pass with the EMA; rdt_adamw_ema_step).  With several ranks the gradient
 * average overlaps the last micro-batch's backward pass; with zero_stage 1
 * each rank keeps the moments and EMA of its shard and the weights are
 * all-gathered after the update.  Rank 0 logs, validates every sample_period
 * steps, saves checkpoint-N every checkpointing_period steps (gathering the
 * shards) and the final weights at the end.
 */
#ifndef RDT_TRAIN_TRAINER_H
#define RDT_TRAIN_TRAINER_H

#include <stdint.h>
#include "core/flags.h"
#include "train/dist.h"

typedef struct {
  const char *config_path;
  const rdt_overrides *overrides;
  const char *pretrained;           /* --pretrained_model_name_or_path */
  const char *vision_encoder, *text_encoder;
  const char *output_dir;
  const char *dataset;              /* statistics key / dataset name */
  const rdt_strlist *data_dir;
  const char *dataset_stat;         /* statistics file, or NULL (computed) */
  int precomp_lang_embed;
  const char *lang_embed_dir;
  int64_t train_batch_size, sample_batch_size, num_sample_batches;
  int64_t gradient_accumulation_steps, max_train_steps, num_train_epochs;
  double learning_rate;
  const char *lr_scheduler;
  int64_t lr_warmup_steps;
  double adam_beta1, adam_beta2, adam_epsilon, adam_weight_decay, max_grad_norm;
  int64_t checkpointing_period, checkpoints_total_limit;
  const char *resume_from_checkpoint;
  int64_t sample_period;
  double cond_mask_prob, cam_ext_mask_prob, state_noise_snr;   /* snr NAN: none */
  int image_aug;
  int gradient_checkpointing;       /* recompute block activations in the backward pass */
  int64_t zero_stage;               /* 1: ZeRO-1, the EMA and AdamW state sharded over the ranks */
  int64_t dataloader_num_workers, seed;
  const char *mixed_precision, *device, *report_to;
  double fp16_init_scale;           /* fp16: the dynamic loss scale's start (torch GradScaler's init_scale) */
  int64_t threads;
  const char *args_json;            /* the settings, stored in checkpoints */
} rdt_train_opts;

/* Run training; returns the exit code (0 done).  Errors are printed. */
int rdt_train_run(const rdt_train_opts *o, rdt_dist *d);

#endif
