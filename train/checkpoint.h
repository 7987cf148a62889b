/* train/checkpoint.h: training checkpoints, written atomically, and resume.
 *
 * OUTPUT/checkpoint-N/ (N = optimizer steps done) holds
 *   model.safetensors       the trained weights (F32, upstream names)
 *   ema/model.safetensors   the EMA weights (F32, upstream names)
 *   optimizer.safetensors   AdamW exp_avg / exp_avg_sq per parameter
 *                           ("<name>.exp_avg", "<name>.exp_avg_sq"), F32
 *   trainer_state.json      step counts, data position, seed, batch layout
 *   config.json             the upstream model config
 * It is written into OUTPUT/.checkpoint-N.tmp-PID/, every file fsynced, then
 * renamed to checkpoint-N and OUTPUT fsynced: a checkpoint-N folder is
 * complete or absent.  rdt_ckpt_latest only considers names of the exact form
 * checkpoint-<digits> that hold trainer_state.json, so a temporary folder left
 * by a killed run is never picked (rdt_ckpt_clean_temp removes such folders).
 */
#ifndef RDT_TRAIN_CHECKPOINT_H
#define RDT_TRAIN_CHECKPOINT_H

#include <stdint.h>
#include "model/rdt.h"

/* What besides the tensors a resume needs.  Every random draw of the trainer
 * comes from a stream seeded by (seed, sample index), so the data position
 * (samples_seen) and the seed restore all randomness exactly. */
typedef struct {
  int64_t global_step;       /* optimizer steps done */
  int64_t samples_seen;      /* training samples consumed, all ranks */
  int64_t micro_steps;       /* micro-batches done (per rank) */
  int64_t ema_updates;       /* EMA update count */
  int64_t adam_step;         /* AdamW step count */
  int64_t validations;       /* validation rounds done */
  uint64_t seed;
  int world_size;
  int64_t train_batch_size;  /* per process */
  int64_t grad_accum;
} rdt_train_state;

/* The trainer state besides the model's own weights, as full-size host
 * buffers of rdt_model_numel() floats in table layout.  The trainer fills
 * them before a save (gathering the ranks' shards under ZeRO-1) and hands
 * them out after a load (each rank keeping its shard). */
typedef struct {
  float *ema;                    /* EMA weights */
  float *exp_avg, *exp_avg_sq;   /* AdamW moments */
} rdt_ckpt_host;

/* Write OUTPUT/checkpoint-<st->global_step> (the optimizer's step count is
 * st->adam_step).  args_json: the run's settings (an encoded JSON object,
 * stored under "args"), may be NULL.  0 or -1. */
int rdt_ckpt_save(const char *output_dir, rdt_model *m, const rdt_ckpt_host *h, const rdt_train_state *st,
                  const char *args_json);
/* Restore the weights (into the model), EMA and moments (into h) and *st
 * from a checkpoint folder.  0 or -1. */
int rdt_ckpt_load(const char *dir, rdt_model *m, rdt_ckpt_host *h, rdt_train_state *st);
/* Resume from a checkpoint folder written by upstream train.py (no
 * trainer_state.json), as upstream's own fallback does: the weights from the
 * folder (model.safetensors or pytorch_model.bin), the EMA from
 * ema/model.safetensors (else a copy of the weights) into ema, the step from
 * the name checkpoint-N; the AdamW moments start from zero (the caller's) and
 * the data position is N x global_batch.  0 or -1. */
int rdt_ckpt_load_upstream(const char *dir, rdt_model *m, float *ema, rdt_train_state *st, int64_t global_batch);
/* Read trainer_state.json only.  0 or -1. */
int rdt_ckpt_read_state(const char *dir, rdt_train_state *st);
/* The newest complete checkpoint folder of output_dir (malloc'd), or NULL
 * when there is none (no error recorded). */
char *rdt_ckpt_latest(const char *output_dir);
/* Keep the newest `limit` checkpoints (limit <= 0: keep all).  Returns the
 * number removed, -1 on error. */
int rdt_ckpt_prune(const char *output_dir, int limit);
/* Remove temporary folders left by an interrupted save.  Returns the count. */
int rdt_ckpt_clean_temp(const char *output_dir);
/* The end-of-training files: OUTPUT/model.safetensors, OUTPUT/config.json,
 * OUTPUT/ema/model.safetensors.  0 or -1. */
int rdt_ckpt_save_final(const char *output_dir, rdt_model *m, const float *ema);

#endif
