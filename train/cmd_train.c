/* train/cmd_train.c: `rdt train`, upstream main.py's flags (names and defaults). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "core/error.h"
#include "core/flags.h"
#include "core/json.h"
#include "core/log.h"
#include "train/dist.h"
#include "train/launch.h"
#include "train/trainer.h"

/* The settings as JSON (stored in every checkpoint's trainer_state.json). */
static char *flags_json(const rdt_flag *flags, int n) {
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  for (int i = 0; i < n; i++) {
    const rdt_flag *f = &flags[i];
    jw_key(&w, f->name);
    if (f->type == RDT_FLAG_STR) {
      const char *s = *(const char **)f->ptr;
      if (s) jw_str(&w, s);
      else jw_null(&w);
    } else if (f->type == RDT_FLAG_INT) {
      jw_int(&w, *(int64_t *)f->ptr);
    } else if (f->type == RDT_FLAG_FLOAT) {
      jw_num(&w, *(double *)f->ptr);
    } else if (f->type == RDT_FLAG_BOOL) {
      jw_bool(&w, *(int *)f->ptr);
    } else {
      const rdt_strlist *l = f->ptr;
      jw_arr(&w);
      for (int k = 0; k < l->n; k++) jw_str(&w, l->v[k]);
      jw_arr_end(&w);
    }
  }
  jw_obj_end(&w);
  return jw_finish(&w);
}

int rdt_cmd_train(int argc, char **argv) {
  rdt_train_opts o;
  memset(&o, 0, sizeof o);
  rdt_strlist data_dir = {0};
  rdt_overrides ov = {0};
  const char *config = NULL, *config_path = NULL, *snr = NULL, *deepspeed = NULL;
  int64_t nproc = 1;
  int scale_lr = 0, load_from_hdf5 = 0;
  const rdt_flag flags[] = {
      {"config", RDT_FLAG_STR, &config, "configs/base.yaml", "model/training YAML (upstream --config_path)"},
      {"config_path", RDT_FLAG_STR, &config_path, NULL, "same as --config (upstream name)"},
      {"pretrained_model_name_or_path", RDT_FLAG_STR, &o.pretrained, NULL,
       "weights to start from: .safetensors, checkpoint folder or pytorch_model.bin (none: from scratch)"},
      {"pretrained_vision_encoder_name_or_path", RDT_FLAG_STR, &o.vision_encoder, NULL,
       "SigLIP folder (not needed with a tiny-encoder config)"},
      {"pretrained_text_encoder_name_or_path", RDT_FLAG_STR, &o.text_encoder, NULL,
       "T5 folder (not needed with --precomp_lang_embed or a tiny-encoder config)"},
      {"output_dir", RDT_FLAG_STR, &o.output_dir, "checkpoints", "checkpoints, logs and final weights"},
      {"dataset", RDT_FLAG_STR, &o.dataset, "libero_90", "dataset name (statistics key) for --data_dir folders/files"},
      {"data_dir", RDT_FLAG_LIST, &data_dir, NULL,
       "LIBERO *_demo.hdf5 folder or file, or a dataset-list JSON (repeatable)"},
      {"dataset_stat", RDT_FLAG_STR, &o.dataset_stat, NULL,
       "statistics JSON from rdt stats (default: computed, saved as OUTPUT/dataset_stat.json)"},
      {"precomp_lang_embed", RDT_FLAG_BOOL, &o.precomp_lang_embed, "false",
       "use precomputed language embeddings (rdt encode-lang) from --lang_embed_dir"},
      {"lang_embed_dir", RDT_FLAG_STR, &o.lang_embed_dir, NULL, "folder written by rdt encode-lang"},
      {"load_from_hdf5", RDT_FLAG_BOOL, &load_from_hdf5, "false", "accepted for upstream scripts; data is always HDF5"},
      {"train_batch_size", RDT_FLAG_INT, &o.train_batch_size, "4", "samples per PROCESS per micro-batch"},
      {"sample_batch_size", RDT_FLAG_INT, &o.sample_batch_size, "8", "samples per process per validation batch"},
      {"num_sample_batches", RDT_FLAG_INT, &o.num_sample_batches, "2", "validation batches"},
      {"num_train_epochs", RDT_FLAG_INT, &o.num_train_epochs, "1", "epochs when --max_train_steps is 0"},
      {"max_train_steps", RDT_FLAG_INT, &o.max_train_steps, "0", "optimizer steps (0: from --num_train_epochs)"},
      {"gradient_accumulation_steps", RDT_FLAG_INT, &o.gradient_accumulation_steps, "1", "micro-batches per step"},
      {"learning_rate", RDT_FLAG_FLOAT, &o.learning_rate, "5e-6", "peak learning rate"},
      {"scale_lr", RDT_FLAG_BOOL, &scale_lr, "false", "multiply the lr by accumulation x batch x processes"},
      {"lr_scheduler", RDT_FLAG_STR, &o.lr_scheduler, "constant", "constant, constant_with_warmup, linear, cosine"},
      {"lr_warmup_steps", RDT_FLAG_INT, &o.lr_warmup_steps, "500", "warmup optimizer steps"},
      {"adam_beta1", RDT_FLAG_FLOAT, &o.adam_beta1, "0.9", "AdamW beta1"},
      {"adam_beta2", RDT_FLAG_FLOAT, &o.adam_beta2, "0.999", "AdamW beta2"},
      {"adam_weight_decay", RDT_FLAG_FLOAT, &o.adam_weight_decay, "1e-2", "AdamW weight decay (all parameters)"},
      {"adam_epsilon", RDT_FLAG_FLOAT, &o.adam_epsilon, "1e-08", "AdamW epsilon"},
      {"max_grad_norm", RDT_FLAG_FLOAT, &o.max_grad_norm, "1.0", "gradient clipping (global L2 norm; 0 = off)"},
      {"checkpointing_period", RDT_FLAG_INT, &o.checkpointing_period, "500", "save checkpoint-N every N steps"},
      {"checkpoints_total_limit", RDT_FLAG_INT, &o.checkpoints_total_limit, "0", "keep the newest N (0: all)"},
      {"resume_from_checkpoint", RDT_FLAG_STR, &o.resume_from_checkpoint, NULL, "a checkpoint folder or 'latest'"},
      {"sample_period", RDT_FLAG_INT, &o.sample_period, "-1", "validate every N steps (-1: never)"},
      {"cond_mask_prob", RDT_FLAG_FLOAT, &o.cond_mask_prob, "0.1", "condition dropout probability"},
      {"cam_ext_mask_prob", RDT_FLAG_FLOAT, &o.cam_ext_mask_prob, "-1.0",
       "exterior camera dropout (< 0: --cond_mask_prob)"},
      {"state_noise_snr", RDT_FLAG_STR, &snr, NULL, "state noise SNR in dB (none: no noise)"},
      {"image_aug", RDT_FLAG_BOOL, &o.image_aug, "false", "colour jitter / corruption on half the images"},
      {"dataloader_num_workers", RDT_FLAG_INT, &o.dataloader_num_workers, "0",
       "loader threads (0: load in the training thread)"},
      {"seed", RDT_FLAG_INT, &o.seed, "0", "seed of initialisation and every data draw"},
      {"mixed_precision", RDT_FLAG_STR, &o.mixed_precision, NULL, "bf16, fp16 or no (default: bf16 on CUDA, no on CPU)"},
      {"fp16_init_scale", RDT_FLAG_FLOAT, &o.fp16_init_scale, "65536",
       "fp16: the dynamic loss scale's starting value (torch GradScaler's init_scale)"},
      {"device", RDT_FLAG_STR, &o.device, "auto", "cpu, cuda or auto"},
      {"gradient_checkpointing", RDT_FLAG_BOOL, &o.gradient_checkpointing, "false",
       "recompute each block's activations in the backward pass (less memory, about a third more compute)"},
      {"zero_stage", RDT_FLAG_INT, &o.zero_stage, "0",
       "1: shard the AdamW moments and the EMA over the ranks (ZeRO-1; bitwise the same result, less memory)"},
      {"nproc", RDT_FLAG_INT, &nproc, "1", "local worker processes (one per GPU with --device cuda)"},
      {"threads", RDT_FLAG_INT, &o.threads, "0", "CPU threads per process (0: cores / local processes)"},
      {"report_to", RDT_FLAG_STR, &o.report_to, "tensorboard", "tensorboard or none"},
      {"deepspeed", RDT_FLAG_STR, &deepspeed, NULL, "accepted for upstream scripts and ignored"},
  };
  const int nflags = (int)(sizeof flags / sizeof flags[0]);
  const char *summary =
      "train RDT on LIBERO demonstrations (upstream main.py flags; --model.x=v overrides the config)";
  int rc = rdt_flags_parse(argv[0], summary, flags, nflags, argc, argv, &ov, NULL);
  if (rc == 1) return 0;
  if (rc < 0) rdt_die_last();
  if (nproc > 1 && !rdt_dist_launched()) {
    rc = rdt_launch_workers((int)nproc, argc, argv);
    if (rc < 0) rdt_die_last();
    return rc;
  }
  rdt_dist d;
  if (rdt_dist_init(&d) != 0) rdt_die_last();
  if (nproc > 1 && nproc != d.world)
    rdt_warn("--nproc %lld ignored: already running as %d processes under an MPI launcher", (long long)nproc, d.world);
  if (deepspeed && d.rank == 0) rdt_warn("--deepspeed is ignored: rdt does its own data-parallel training");
  o.config_path = config_path ? config_path : config;
  o.overrides = &ov;
  o.data_dir = &data_dir;
  o.state_noise_snr = NAN;
  if (snr && strcmp(snr, "None") != 0 && strcmp(snr, "none") != 0) {
    char *end;
    o.state_noise_snr = strtod(snr, &end);
    if (end == snr || *end) rdt_die("--state_noise_snr: '%s' is not a number", snr);
  }
  if (scale_lr) o.learning_rate *= (double)(o.gradient_accumulation_steps * o.train_batch_size * d.world);
  char *args = flags_json(flags, nflags);
  o.args_json = args;
  rc = rdt_train_run(&o, &d);
  free(args);
  rdt_strlist_free(&data_dir);
  rdt_overrides_free(&ov);
  rdt_dist_finalize(&d);
  return rc;
}
