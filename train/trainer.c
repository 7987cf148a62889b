/* train/trainer.c: the training loop of `rdt train` (see trainer.h). */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/progress.h"
#include "model/rdt.h"
#include "train/checkpoint.h"
#include "train/conditions.h"
#include "train/data_libero.h"
#include "train/ema.h"
#include "train/loader.h"
#include "train/lr.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/samples.h"
#include "train/stats.h"

/* Draws of validation batches come from streams far from the training ones. */
#define VALIDATION_STREAM ((uint64_t)1 << 62)

typedef struct {
  const rdt_train_opts *o;
  rdt_dist *d;
  int main_rank;                  /* rank 0: logs, validation output, checkpoints */
  rdt_config *cfg;
  rdt_model_config mc;
  k_backend *b;
  rdt_model *m;
  rdt_data_source *src;
  int nsrc;
  rdt_libero_data *data;
  rdt_conditions *cond;
  int nds;
  float *state_mean;              /* [nds, 128] */
  double *action_std;             /* [nds] action_std_global, 0 = unknown */
  rdt_batcher *train_b, *val_b;
  rdt_loader *loader;
  rdt_train_batch **slots;
  int nslots;
  rdt_train_batch *val_batch;
  rdt_ema ema;                    /* under ZeRO-1 both hold this rank's shard only */
  rdt_adamw opt;
  int zero;                       /* ZeRO-1: the optimizer state is sharded over the ranks */
  rdt_lr_schedule lr;
  rdt_train_state st;
  int64_t max_steps, start_step, global_batch;
  int fp16;
  double loss_scale;              /* fp16 dynamic loss scale */
  int64_t scale_good;
  int scale_skips;                /* fp16 overflows in a row */
  rdt_metrics *metrics;
  rdt_progress bar;
  char weights_from[512];
} trainer;

/* The outcome of one optimizer step. */
typedef struct {
  double loss, grad_norm, lr, seconds;
  int skipped;                    /* fp16 overflow: no update */
} step_result;

/* ================================================================ set-up */

/* YAML config plus the dotted overrides; then the model config, taken from
 * config.json when the pretrained weights are a folder that has one
 * (upstream RDTRunner.from_pretrained). */
static int setup_config(trainer *t) {
  const rdt_train_opts *o = t->o;
  t->cfg = rdt_config_load(o->config_path);
  if (!t->cfg) return -1;
  for (int i = 0; o->overrides && i < o->overrides->n; i++)
    if (rdt_config_set(t->cfg, o->overrides->keys[i], o->overrides->values[i]) != 0)
      return rdt_fail_ctx("--%s", o->overrides->keys[i]);
  if (rdt_model_config_from_yaml(t->cfg, &t->mc) != 0) return rdt_fail_ctx("%s", o->config_path);
  if (!o->pretrained) return 0;
  int found;
  if (rdt_is_dir(o->pretrained)) {
    char *json = rdt_path_join(o->pretrained, "config.json");
    found = rdt_is_file(json) ? (rdt_model_config_load(json, &t->mc) == 0 ? 1 : -1) : 0;
    free(json);
  } else {
    found = rdt_model_config_beside(o->pretrained, &t->mc);
  }
  if (found < 0) return -1;
  if (found) rdt_info("model config from the config.json beside %s (as upstream from_pretrained)", o->pretrained);
  return 0;
}

/* The backend, its threads and the activation dtype of --mixed_precision. */
static int setup_backend(trainer *t) {
  const rdt_train_opts *o = t->o;
  const char *dev = o->device && *o->device ? o->device : "auto";
  int cuda = strcmp(dev, "cuda") == 0 || strncmp(dev, "cuda:", 5) == 0 ||
             (strcmp(dev, "auto") == 0 && k_cuda_available());
  RDT_CHECK(cuda || strcmp(dev, "cpu") == 0 || strcmp(dev, "auto") == 0,
            "--device: '%s' is not cpu, cuda or auto", dev);
  char name[32];
  snprintf(name, sizeof name, cuda ? "cuda:%d" : "cpu", t->d->local_rank);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = o->threads > 0 ? (int)o->threads : (int)(cores / t->d->local_world > 1 ? cores / t->d->local_world : 1);
  t->b = k_open(name, threads);
  if (!t->b) return rdt_fail_ctx("--device %s", dev);
  const char *mp = o->mixed_precision && *o->mixed_precision ? o->mixed_precision : (cuda ? "bf16" : "no");
  rdt_dtype act = RDT_F32;
  if (strcmp(mp, "bf16") == 0) act = RDT_BF16;
  else if (strcmp(mp, "fp16") == 0) act = RDT_F16, t->fp16 = 1;
  else if (strcmp(mp, "no") != 0) return rdt_fail("--mixed_precision: '%s' is not bf16, fp16 or no", mp);
  if (act != RDT_F32 && !cuda) {
    /* The CPU keeps F32 buffers and rounds every activation where CUDA stores
     * its 16-bit ones (kernels/cpu/round.c): a GPU run's numerics, fp16 loss
     * scaling included, at CPU speed. */
    if (k_set_act_rounding(t->b, act) != 0) return rdt_fail_ctx("--mixed_precision %s", mp);
  } else if (k_set_act_dtype(t->b, act) != 0) {
    return rdt_fail_ctx("--mixed_precision %s", mp);
  }
  RDT_CHECK(!t->fp16 || (o->fp16_init_scale >= 1 && o->fp16_init_scale <= 1e30),
            "--fp16_init_scale must be in 1..1e30, got %g", o->fp16_init_scale);
  t->loss_scale = t->fp16 ? o->fp16_init_scale : 1.0;   /* torch GradScaler's init_scale, 65536 by default */
  return rdt_dist_attach(t->d, t->b) == 0 ? 0 : rdt_fail_ctx("joining the other ranks over NCCL");
}

/* The encoders, the data and every instruction's embedding. */
static int setup_data(trainer *t) {
  const rdt_train_opts *o = t->o;
  RDT_CHECK(o->data_dir && o->data_dir->n > 0, "--data_dir is required (a folder of LIBERO *_demo.hdf5 files, "
            "one file, or a dataset-list JSON)");
  RDT_CHECK(!o->precomp_lang_embed || o->lang_embed_dir, "--precomp_lang_embed needs --lang_embed_dir DIR");
  rdt_conditions_opts co = {o->vision_encoder, o->text_encoder, o->precomp_lang_embed ? o->lang_embed_dir : NULL,
                            t->mc.lang_token_dim, t->mc.img_token_dim, t->mc.img_tokens_per_image,
                            t->mc.max_lang_cond_len};
  t->cond = rdt_conditions_open(t->cfg, &co, t->b);
  if (!t->cond) return -1;
  if (rdt_data_sources_parse((const char *const *)o->data_dir->v, o->data_dir->n, o->dataset, &t->src, &t->nsrc) != 0)
    return -1;
  rdt_libero_opts lo;
  rdt_libero_opts_init(&lo, rdt_conditions_image_size(t->cond));
  lo.format = rdt_uni_format_from_config(t->cfg);
  if (!lo.format || rdt_image_cfg_from_config(&lo.image, t->cfg, rdt_conditions_image_size(t->cond)) != 0)
    return rdt_fail_ctx("%s", o->config_path);
  lo.image.augment = o->image_aug;
  lo.chunk = t->mc.pred_horizon;
  t->data = rdt_libero_open(t->src, t->nsrc, &lo);
  if (!t->data) return -1;
  t->nds = rdt_libero_num_datasets(t->data);
  int ne = rdt_libero_num_episodes(t->data);
  const char **text = rdt_malloc((size_t)ne * sizeof *text);
  for (int e = 0; e < ne; e++) text[e] = rdt_libero_episode(t->data, e)->instruction;
  int rc = rdt_conditions_add_instructions(t->cond, text, ne);
  free(text);
  return rc;
}

/* Per-dataset state_mean (the masked-state dummy) and action scale: from
 * --dataset_stat, else computed here (rank 0 writes OUTPUT/dataset_stat.json). */
static int setup_stats(trainer *t) {
  t->state_mean = rdt_calloc((size_t)t->nds * RDT_UNI_DIM, sizeof(float));
  t->action_std = rdt_calloc((size_t)t->nds, sizeof(double));
  char *out = rdt_path_join(t->o->output_dir, "dataset_stat.json");
  int rc = 0;
  for (int i = 0; i < t->nds && rc == 0; i++) {
    const char *name = rdt_libero_dataset_name(t->data, i);
    if (t->o->dataset_stat) {
      int found = rdt_stats_state_mean(t->o->dataset_stat, name, t->state_mean + (size_t)i * RDT_UNI_DIM);
      if (found == 0) rc = rdt_fail("%s: no entry for dataset '%s' (make one with rdt stats)", t->o->dataset_stat, name);
      if (found == 1 && rdt_stats_action_std_global(t->o->dataset_stat, name, &t->action_std[i]) < 0) rc = -1;
      if (found < 0) rc = -1;
      continue;
    }
    rdt_dataset_stats s;
    rc = rdt_stats_compute(t->data, i, &s);
    for (int j = 0; rc == 0 && j < RDT_UNI_DIM; j++) t->state_mean[(size_t)i * RDT_UNI_DIM + j] = (float)s.state.mean[j];
    t->action_std[i] = s.action_std_global;
    if (rc == 0 && t->main_rank) rc = rdt_stats_write(out, name, &s);
  }
  free(out);
  return rc;
}

/* The model: upstream initialisation from the seed, or pretrained weights. */
static int setup_model(trainer *t) {
  t->m = rdt_model_new(t->b, &t->mc);
  if (!t->m) return -1;
  rdt_model_set_checkpointing(t->m, t->o->gradient_checkpointing);
  if (!t->o->pretrained) {
    rdt_model_init(t->m, (uint64_t)t->o->seed);
    snprintf(t->weights_from, sizeof t->weights_from, "from scratch (upstream init, seed %lld)", (long long)t->o->seed);
    return 0;
  }
  rdt_st *st = rdt_st_open(t->o->pretrained);
  int rc = st ? rdt_model_load(t->m, st, NULL) : -1;
  rdt_st_close(st);
  snprintf(t->weights_from, sizeof t->weights_from, "%s", t->o->pretrained);
  return rc ? rdt_fail_ctx("--pretrained_model_name_or_path") : 0;
}

/* EMA, AdamW and the schedule. */
static int setup_optim(trainer *t) {
  const rdt_train_opts *o = t->o;
  rdt_ema_cfg ec = {t->mc.ema_update_after_step, t->mc.ema_inv_gamma, t->mc.ema_power, t->mc.ema_min_value,
                    t->mc.ema_max_value};
  RDT_CHECK(o->zero_stage == 0 || o->zero_stage == 1, "--zero_stage %lld: 0 (none) or 1 (shard the optimizer state)",
            (long long)o->zero_stage);
  size_t n = rdt_model_numel(t->m), lo = 0, cnt = n;
  t->zero = o->zero_stage == 1 && t->d->world > 1;
  if (t->zero) rdt_dist_shard(t->d, t->d->rank, n, &lo, &cnt);
  rdt_ema_init_shard(&t->ema, t->b, &ec, rdt_model_params(t->m), lo, cnt);
  rdt_adamw_cfg ac = {o->adam_beta1, o->adam_beta2, o->adam_epsilon, o->adam_weight_decay};
  rdt_adamw_init_shard(&t->opt, t->b, &ac, lo, cnt);
  t->lr.base = o->learning_rate;
  t->lr.warmup = o->lr_warmup_steps;
  if (rdt_lr_parse(o->lr_scheduler, &t->lr.kind) != 0) return -1;
  return 0;
}

/* Steps and batch layout: --max_train_steps, else epochs over the usable steps. */
static int setup_schedule(trainer *t) {
  const rdt_train_opts *o = t->o;
  RDT_CHECK(o->train_batch_size >= 1 && o->gradient_accumulation_steps >= 1,
            "--train_batch_size and --gradient_accumulation_steps must be at least 1");
  t->global_batch = o->train_batch_size * t->d->world * o->gradient_accumulation_steps;
  if (o->max_train_steps > 0) {
    t->max_steps = o->max_train_steps;
  } else {
    int64_t per_rank = o->train_batch_size * t->d->world;
    int64_t batches = (rdt_libero_num_steps(t->data) + per_rank - 1) / per_rank;
    t->max_steps = o->num_train_epochs * ((batches + o->gradient_accumulation_steps - 1) / o->gradient_accumulation_steps);
  }
  RDT_CHECK(t->max_steps >= 1, "nothing to train: --max_train_steps / --num_train_epochs give 0 steps");
  t->lr.total = t->max_steps;
  t->st.seed = (uint64_t)o->seed;
  t->st.world_size = t->d->world;
  t->st.train_batch_size = o->train_batch_size;
  t->st.grad_accum = o->gradient_accumulation_steps;
  return 0;
}

/* ---------------------------------------------------------------- state in host memory */
/* Full-size host buffers for the EMA (and the AdamW moments). */
static rdt_ckpt_host host_state_new(trainer *t, int moments) {
  size_t bytes = rdt_model_numel(t->m) * sizeof(float);
  rdt_ckpt_host h = {rdt_malloc(bytes), NULL, NULL};
  if (moments) h.exp_avg = rdt_calloc(1, bytes), h.exp_avg_sq = rdt_calloc(1, bytes);
  return h;
}

static void host_state_free(rdt_ckpt_host *h) {
  free(h->ema), free(h->exp_avg), free(h->exp_avg_sq);
  memset(h, 0, sizeof *h);
}

/* Each rank keeps its part (its shard under ZeRO-1, else everything). */
static void host_state_upload(trainer *t, const rdt_ckpt_host *h) {
  k_upload(t->b, t->ema.w, h->ema + t->ema.lo, t->ema.n * sizeof(float));
  if (h->exp_avg) {
    k_upload(t->b, t->opt.m, h->exp_avg + t->opt.lo, t->opt.n * sizeof(float));
    k_upload(t->b, t->opt.v, h->exp_avg_sq + t->opt.lo, t->opt.n * sizeof(float));
  }
}

/* Rank 0's full copy of a per-rank state buffer (every rank calls this). */
static void gather_state(trainer *t, const float *dev, float *host) {
  if (t->zero) rdt_dist_gather_host(t->d, t->b, dev, host, rdt_model_numel(t->m));
  else if (t->main_rank) k_download(t->b, host, dev, rdt_model_numel(t->m) * sizeof(float));
}

/* Rank 0: the EMA (and moments) gathered into h, allocated there; the other
 * ranks only send.  Every rank calls this. */
static void host_state_gather(trainer *t, rdt_ckpt_host *h, int moments) {
  memset(h, 0, sizeof *h);
  if (t->main_rank) *h = host_state_new(t, moments);
  gather_state(t, t->ema.w, h->ema);
  if (moments) {
    gather_state(t, t->opt.m, h->exp_avg);
    gather_state(t, t->opt.v, h->exp_avg_sq);
  }
}

/* Restore a checkpoint of this trainer; the batch layout of this run is kept
 * for the next checkpoints (a different one is warned about). */
static int resume_own(trainer *t, const char *path) {
  rdt_train_state now = t->st;
  rdt_ckpt_host h = host_state_new(t, 1);
  int rc = rdt_ckpt_load(path, t->m, &h, &t->st);
  if (rc == 0) host_state_upload(t, &h);
  host_state_free(&h);
  if (rc != 0) return -1;
  t->ema.updates = t->st.ema_updates;
  t->opt.step = t->st.adam_step;
  rdt_info("Resuming from checkpoint %s (step %lld)", path, (long long)t->st.global_step);
  int64_t was = t->st.world_size * t->st.train_batch_size * t->st.grad_accum;
  if (t->st.seed != now.seed || was != t->global_batch)
    rdt_warn("%s was written with seed %llu and global batch %lld; this run has seed %llu and global batch %lld: "
             "the data continues from sample %lld, but the run will not repeat the original one",
             path, (unsigned long long)t->st.seed, (long long)was, (unsigned long long)now.seed,
             (long long)t->global_batch, (long long)t->st.samples_seen);
  t->st.seed = now.seed;
  t->st.world_size = now.world_size;
  t->st.train_batch_size = now.train_batch_size;
  t->st.grad_accum = now.grad_accum;
  return 0;
}

/* --resume_from_checkpoint PATH|latest (a PATH that is not a folder is looked
 * up by its base name inside --output_dir, as upstream).  A folder without
 * trainer_state.json is taken as an upstream checkpoint. */
static int setup_resume(trainer *t) {
  const char *r = t->o->resume_from_checkpoint;
  if (!r || !*r) return 0;
  char *path = NULL;
  if (strcmp(r, "latest") == 0) path = rdt_ckpt_latest(t->o->output_dir);
  else if (rdt_is_dir(r)) path = rdt_strdup(r);
  else path = rdt_path_join(t->o->output_dir, rdt_basename(r));
  if (!path || !rdt_is_dir(path)) {
    rdt_info("Checkpoint '%s' does not exist. Starting a new training run.", r);
    free(path);
    return 0;
  }
  char *state = rdt_path_join(path, "trainer_state.json");
  int rc, upstream = !rdt_is_file(state);
  free(state);
  if (!upstream) {
    rc = resume_own(t, path);
  } else {
    rdt_ckpt_host h = host_state_new(t, 0);
    rc = rdt_ckpt_load_upstream(path, t->m, h.ema, &t->st, t->global_batch);
    if (rc == 0) host_state_upload(t, &h);
    host_state_free(&h);
    t->ema.updates = t->st.ema_updates;
    if (rc == 0)
      rdt_warn("%s has no trainer_state.json (an upstream checkpoint?): resumed the weights and EMA at step %lld; "
               "the optimizer state starts afresh, as upstream's fallback does", path, (long long)t->st.global_step);
  }
  free(path);
  return rc ? rdt_fail_ctx("--resume_from_checkpoint %s", r) : 0;
}

/* Batch producers and the loader, continuing at the resumed micro-batch.
 * Data position: micro-batch k holds samples k * stride + rank * B + i, so a
 * resume with the same layout continues exactly. */
static void setup_loader(trainer *t) {
  const rdt_train_opts *o = t->o;
  int workers = (int)(o->dataloader_num_workers > 0 ? o->dataloader_num_workers : 0);
  rdt_batcher_opts bo = {(uint64_t)o->seed, 0, 1, (int)o->train_batch_size, o->train_batch_size * t->d->world,
                         o->train_batch_size * t->d->rank, o->cond_mask_prob, o->cam_ext_mask_prob,
                         o->state_noise_snr, (float)rdt_config_float(t->cfg, "dataset.ctrl_freq", RDT_LIBERO_CTRL_FREQ),
                         t->state_mean, t->mc.num_train_timesteps};
  t->train_b = rdt_batcher_new(&bo, t->data, t->cond, &t->mc, workers);
  t->nslots = workers > 0 ? 2 * workers : 1;
  t->slots = rdt_calloc((size_t)t->nslots, sizeof *t->slots);
  for (int i = 0; i < t->nslots; i++) t->slots[i] = rdt_batcher_alloc(t->train_b);
  int64_t first = t->st.samples_seen / bo.stride;
  t->loader = rdt_loader_new(workers, t->nslots, (void **)t->slots, rdt_batcher_fill, t->train_b, first);
  if (o->sample_period > 0 && o->num_sample_batches > 0) {
    rdt_batcher_opts vo = bo;
    vo.stream_base = VALIDATION_STREAM;
    vo.train = 0;
    vo.batch = (int)o->sample_batch_size;
    vo.stride = o->sample_batch_size * t->d->world;
    vo.offset = o->sample_batch_size * t->d->rank;
    t->val_b = rdt_batcher_new(&vo, t->data, t->cond, &t->mc, 0);
    t->val_batch = rdt_batcher_alloc(t->val_b);
  }
}

/* ================================================================ banner */

static void banner(trainer *t) {
  const rdt_train_opts *o = t->o;
  char host[128] = "?";
  gethostname(host, sizeof host - 1);
  fprintf(stderr, "rank %d/%d pid %d on %s, local rank %d, device %s\n", t->d->rank, t->d->world, (int)getpid(),
          host, t->d->local_rank, k_name(t->b));
  if (!t->main_rank) return;
  rdt_dtype ad = k_act_dtype(t->b), ar = k_act_rounding(t->b);
  char act[64];
  if (ar != ad) snprintf(act, sizeof act, "fp32 rounded to %s (CPU emulation of CUDA's)", rdt_dtype_name(ar));
  else snprintf(act, sizeof act, "%s", ad == RDT_F32 ? "fp32" : rdt_dtype_name(ad));
  rdt_info("***** Running training *****");
  rdt_info("  world size          %d process%s (ranks 0..%d), %d on this machine, gradients over %s%s", t->d->world,
           t->d->world > 1 ? "es" : "", t->d->world - 1, t->d->local_world, rdt_dist_transport(t->d),
           rdt_dist_can_overlap(t->d, t->b) ? " (overlapped with the backward pass, one all-reduce per block)" : "");
  rdt_info("  backend             %s, %d thread%s per process, activations %s", k_name(t->b), k_threads(t->b),
           k_threads(t->b) > 1 ? "s" : "", act);
  rdt_info("  model               hidden %d, depth %d, heads %d: %zu parameters, %s", t->mc.hidden_size,
           t->mc.depth, t->mc.num_heads, rdt_model_numel(t->m), t->weights_from);
  rdt_info("  encoders            %s", rdt_conditions_describe(t->cond));
  rdt_info("  data                %d dataset%s, %d episodes, %lld usable steps", t->nds, t->nds > 1 ? "s" : "",
           rdt_libero_num_episodes(t->data), (long long)rdt_libero_num_steps(t->data));
  rdt_info("  batch per process   %lld (--train_batch_size is PER PROCESS)", (long long)o->train_batch_size);
  rdt_info("  global batch        %lld per process x %d process%s x %lld accumulation step%s = %lld samples "
           "per optimizer step", (long long)o->train_batch_size, t->d->world, t->d->world > 1 ? "es" : "",
           (long long)o->gradient_accumulation_steps, o->gradient_accumulation_steps > 1 ? "s" : "",
           (long long)t->global_batch);
  rdt_info("  optimizer steps     %lld (from step %lld), ~%.2f epochs", (long long)t->max_steps,
           (long long)t->start_step, (double)t->max_steps * t->global_batch / (double)rdt_libero_num_steps(t->data));
  rdt_info("  AdamW               lr %g (%s, warmup %lld), betas %g/%g, eps %g, weight decay %g, clip %g",
           o->learning_rate, rdt_lr_name(t->lr.kind), (long long)o->lr_warmup_steps, o->adam_beta1, o->adam_beta2,
           o->adam_epsilon, o->adam_weight_decay, o->max_grad_norm);
  rdt_info("  EMA                 update_after_step %lld, inv_gamma %g, power %g, decay in [%g, %g], every micro-batch",
           (long long)t->ema.cfg.update_after_step, t->ema.cfg.inv_gamma, t->ema.cfg.power, t->ema.cfg.min_value,
           t->ema.cfg.max_value);
  rdt_info("  checkpoints         every %lld steps into %s (%s)", (long long)o->checkpointing_period, o->output_dir,
           o->checkpoints_total_limit > 0 ? "keeping the newest ones" : "keeping all");
  rdt_info("  seed                %lld; loader threads %lld", (long long)o->seed, (long long)o->dataloader_num_workers);
  if (o->gradient_checkpointing) rdt_info("  gradient checkpointing: each block's activations recomputed in the backward pass");
  if (t->zero)
    rdt_info("  ZeRO-1              AdamW moments and EMA sharded: %zu of %zu parameters per rank, weights all-gathered "
             "after each step", t->opt.n, rdt_model_numel(t->m));
  else if (o->zero_stage == 1)
    rdt_info("  ZeRO-1              nothing to shard in a world of one process");
}

/* ================================================================ one step */

/* Forward and backward of one micro-batch, adding its gradient. */
static int micro_batch(trainer *t, float grad_scale, double *loss) {
  int64_t index;
  rdt_train_batch *bt = rdt_loader_next(t->loader, &index);
  if (!bt) return -1;
  rdt_batcher_encode(t->train_b, bt);
  rdt_batch v = rdt_train_batch_view(bt);
  float l;
  int rc = rdt_model_loss(t->m, &v, bt->actions, bt->noise, bt->timesteps, 1, grad_scale, &l);
  rdt_loader_release(t->loader);
  t->st.micro_steps++;
  *loss += l;
  return rc;
}

/* fp16: unscale the gradient, or skip the step on overflow (torch GradScaler:
 * halve the scale on overflow, double it after 2000 good steps).  Returns 1
 * to skip, -1 after 30 overflows in a row. */
static int fp16_unscale(trainer *t, double *norm) {
  float *g = rdt_model_grads(t->m);
  if (!isfinite(*norm)) {
    t->loss_scale *= 0.5;
    t->scale_good = 0;
    if (++t->scale_skips > 30)
      return rdt_fail("step %lld: 30 fp16 overflows in a row (loss scale %g); stopping without saving",
                      (long long)t->st.global_step + 1, t->loss_scale);
    rdt_warn("step %lld: fp16 gradient overflow, step skipped, loss scale now %g",
             (long long)t->st.global_step + 1, t->loss_scale);
    return 1;
  }
  t->scale_skips = 0;
  *norm /= t->loss_scale;
  k_scale_f32(t->b, g, rdt_model_numel(t->m), (float)(1.0 / t->loss_scale));
  if (++t->scale_good == 2000) t->loss_scale *= 2.0, t->scale_good = 0;
  return 0;
}

/* Gradient hook: average a finished range while the backward pass goes on. */
static void grads_ready(void *ctx, float *grads, size_t off, size_t n) {
  trainer *t = ctx;
  rdt_dist_mean_start(t->d, t->b, grads + off, n);
}

/* One optimizer step on every rank. */
static int train_step(trainer *t, step_result *r) {
  const rdt_train_opts *o = t->o;
  double t0 = rdt_now(), loss = 0;
  int64_t A = o->gradient_accumulation_steps;
  float *params = rdt_model_params(t->m), *grads = rdt_model_grads(t->m);
  size_t n = rdt_model_numel(t->m);
  int overlap = rdt_dist_can_overlap(t->d, t->b);
  rdt_model_zero_grad(t->m);
  for (int64_t a = 0; a < A; a++) {
    /* the last micro-batch's backward pass starts averaging each finished range */
    rdt_model_set_grad_hook(t->m, overlap && a == A - 1 ? grads_ready : NULL, t);
    int rc = micro_batch(t, (float)(t->loss_scale / (double)A), &loss);
    rdt_model_set_grad_hook(t->m, NULL, NULL);
    if (rc != 0) return -1;
    if (a < A - 1) rdt_ema_update(&t->ema, params);   /* upstream: every micro-batch */
  }
  if (overlap) rdt_dist_mean_wait(t->d, t->b);
  else rdt_dist_mean_f32(t->d, t->b, grads, n);
  rdt_dist_sum(t->d, &loss, 1);
  r->loss = loss / (double)(A * t->d->world);
  r->grad_norm = rdt_grad_norm(t->b, grads, n);
  r->skipped = t->fp16 ? fp16_unscale(t, &r->grad_norm) : 0;
  if (r->skipped < 0) return -1;
  if (!r->skipped && (!isfinite(r->loss) || !isfinite(r->grad_norm))) {
    double bad = isfinite(r->loss) ? r->grad_norm : r->loss;
    char *last = rdt_ckpt_latest(o->output_dir);
    rdt_fail("step %lld: the %s is %s; stopping without saving (newest checkpoint: %s)",
             (long long)t->st.global_step + 1, isfinite(r->loss) ? "gradient norm" : "loss",
             isnan(bad) ? "NaN" : "infinite", last ? last : "none");
    free(last);
    return -1;
  }
  r->lr = rdt_lr_at(&t->lr, t->st.global_step);
  if (!r->skipped) {
    /* clipping, AdamW, EMA and (unless the shards must be gathered first) the
     * compute copy in one pass over the parameters */
    double coef = rdt_grad_clip_coef(r->grad_norm, o->max_grad_norm);
    rdt_adamw_ema_step(&t->opt, &t->ema, params, grads, coef, r->lr, t->zero ? NULL : rdt_model_compute_copy(t->m));
    if (t->zero) {
      rdt_dist_allgather_f32(t->d, t->b, params, n);   /* each rank updated its shard */
      rdt_model_params_changed(t->m);
    }
  } else {
    rdt_ema_update(&t->ema, params);
  }
  t->st.global_step++;
  t->st.samples_seen += t->global_batch;
  t->st.adam_step = t->opt.step;
  t->st.ema_updates = t->ema.updates;
  k_sync(t->b);
  r->seconds = rdt_now() - t0;
  return 0;
}

/* ================================================================ validation */

/* Validation sums, added over batches and then over ranks:
 * [0] per-batch MSE, [1] per-batch l2err, [2] per-batch normalised MSE,
 * [3] batches with a normalised MSE, then per dataset [mse, l2err, samples]. */
#define VAL_DS(ds) (4 + 3 * (ds))

/* Add one sampled batch's errors (pred vs the ground-truth chunk) to sum. */
static void validation_add(const trainer *t, const rdt_train_batch *bt, const float *pred, double *sum) {
  size_t per = (size_t)t->mc.pred_horizon * RDT_UNI_DIM;
  double bm = 0, bl = 0, bc = 0, bn = 0, bnc = 0;
  for (int i = 0; i < bt->B; i++) {
    const float *mask = bt->state_mask + (size_t)i * RDT_UNI_DIM, *norm = bt->state_norm + (size_t)i * RDT_UNI_DIM;
    double sm = 0, sl = 0, c = 0;
    for (size_t at = (size_t)i * per, k = 0; k < per; k++, at++) {
      int j = (int)(k % RDT_UNI_DIM);
      double e = ((double)pred[at] - bt->actions[at]) * ((double)pred[at] - bt->actions[at]);
      sm += e * mask[j], sl += sqrt(e) / (norm[j] + 1e-3) * mask[j], c += mask[j];
    }
    if (c == 0) continue;
    int ds = bt->dataset[i];
    sum[VAL_DS(ds)] += sm / c, sum[VAL_DS(ds) + 1] += sl / c, sum[VAL_DS(ds) + 2] += 1;
    bm += sm, bl += sl, bc += c;
    if (t->action_std[ds] > 0) bn += sm / (t->action_std[ds] * t->action_std[ds]), bnc += c;
  }
  if (bc > 0) sum[0] += bm / bc, sum[1] += bl / bc;
  if (bnc > 0) sum[2] += bn / bnc, sum[3] += 1;
}

/* Rank 0: the validation row of metrics.jsonl and a log line. */
static int validation_log(trainer *t, const double *sum) {
  int nds = t->nds, n = 0;
  rdt_scalar *v = rdt_calloc((size_t)(3 + 2 * nds), sizeof *v);
  char **names = rdt_calloc((size_t)(2 * nds), sizeof *names);
  double batches = (double)t->o->num_sample_batches * t->d->world;
  v[n++] = (rdt_scalar){"overall_avg_sample_mse", sum[0] / batches};
  v[n++] = (rdt_scalar){"overall_avg_sample_l2err", sum[1] / batches};
  if (sum[3] > 0) v[n++] = (rdt_scalar){"overall_avg_sample_nmse", sum[2] / sum[3]};
  for (int ds = 0; ds < nds; ds++) {
    const double *d = sum + VAL_DS(ds);
    if (d[2] == 0) continue;
    const char *name = rdt_libero_dataset_name(t->data, ds);
    names[2 * ds] = rdt_malloc(strlen(name) + 16), names[2 * ds + 1] = rdt_malloc(strlen(name) + 16);
    sprintf(names[2 * ds], "%s_sample_mse", name);
    sprintf(names[2 * ds + 1], "%s_sample_l2err", name);
    v[n++] = (rdt_scalar){names[2 * ds], d[0] / d[2]};
    v[n++] = (rdt_scalar){names[2 * ds + 1], d[1] / d[2]};
  }
  rdt_info("step %lld validation: overall_avg_sample_mse %.6g, overall_avg_sample_l2err %.6g",
           (long long)t->st.global_step, v[0].value, v[1].value);
  int rc = rdt_metrics_log(t->metrics, t->st.global_step, v, n);
  for (int i = 0; i < 2 * nds; i++) free(names[i]);
  free(names);
  free(v);
  return rc;
}

/* Upstream train/sample.py on num_sample_batches unmasked batches with the
 * training weights: overall_avg_sample_mse (mean of per-batch MSE over the
 * state_elem_mask slots), overall_avg_sample_l2err (the same of
 * sqrt(err) / (state_norm + 1e-3)), per-dataset means of the per-sample
 * values, each averaged over ranks; plus overall_avg_sample_nmse, the MSE
 * over action_std_global^2 when the statistics have it. */
static int validate(trainer *t) {
  int nsum = VAL_DS(t->nds);
  double *sum = rdt_calloc((size_t)nsum, sizeof(double));
  rdt_train_batch *bt = t->val_batch;
  float *pred = rdt_malloc((size_t)bt->B * t->mc.pred_horizon * RDT_UNI_DIM * sizeof(float));
  int rc = 0;
  for (int64_t vb = 0; vb < t->o->num_sample_batches && rc == 0; vb++) {
    rc = rdt_batcher_fill(t->val_b, t->st.validations * t->o->num_sample_batches + vb, bt, 0);
    if (rc == 0) {
      rdt_batcher_encode(t->val_b, bt);
      rdt_batch v = rdt_train_batch_view(bt);
      rc = rdt_model_sample(t->m, &v, bt->noise, pred);
    }
    if (rc == 0) validation_add(t, bt, pred, sum);
  }
  free(pred);
  if (rc == 0) rdt_dist_sum(t->d, sum, nsum);
  if (rc == 0 && t->main_rank) rc = validation_log(t, sum);
  else if (rc != 0) rdt_fail_ctx("validation");
  t->st.validations++;
  free(sum);
  return rc;
}

/* ================================================================ the run */

/* Rank 0: metrics row, progress bar, a line in training.log. */
static int log_step(trainer *t, const step_result *r) {
  double sps = r->seconds > 0 ? (double)t->global_batch / r->seconds : 0;
  rdt_scalar v[] = {{"loss", r->loss}, {"lr", r->lr}, {"grad_norm", r->grad_norm},
                    {"samples_per_s", sps}, {"step_time", r->seconds}};
  rdt_debug("step %lld loss %.6g lr %.6g grad_norm %.6g samples/s %.4g step_time %.4gs%s",
            (long long)t->st.global_step, r->loss, r->lr, r->grad_norm, sps, r->seconds,
            r->skipped ? " (skipped: fp16 overflow)" : "");
  rdt_progress_update(&t->bar, t->st.global_step - t->start_step, "loss %.4f lr %.3g", r->loss, r->lr);
  return rdt_metrics_log(t->metrics, t->st.global_step, v, (int)(sizeof v / sizeof v[0]));
}

/* Every rank joins (the state is gathered); rank 0 writes. */
static int save_checkpoint(trainer *t) {
  rdt_ckpt_host h;
  host_state_gather(t, &h, 1);
  int rc = t->main_rank ? rdt_ckpt_save(t->o->output_dir, t->m, &h, &t->st, t->o->args_json) : 0;
  host_state_free(&h);
  if (rc != 0 || !t->main_rank) return rc;
  rdt_info("Saved state to %s/checkpoint-%lld", t->o->output_dir, (long long)t->st.global_step);
  int removed = rdt_ckpt_prune(t->o->output_dir, (int)t->o->checkpoints_total_limit);
  if (removed > 0) rdt_info("removed %d old checkpoint%s (--checkpoints_total_limit %lld)", removed,
                            removed > 1 ? "s" : "", (long long)t->o->checkpoints_total_limit);
  return removed < 0 ? -1 : 0;
}

/* After the first step, when the activations are allocated: where the
 * backend's memory went (rank 0's log). */
static void memory_plan(trainer *t) {
  const double mib = 1024.0 * 1024.0;
  double n = (double)rdt_model_numel(t->m), act = (double)rdt_model_activation_bytes(t->m);
  double copy = rdt_model_compute_copy(t->m) ? n * (double)k_act_size(t->b) : 0, used = (double)k_bytes_in_use(t->b);
  double shard = (double)t->opt.n * 4;   /* each of m, v and the EMA on this rank */
  rdt_info("memory on %s: %.1f MiB in use = F32 weights, gradients %.1f MiB each; AdamW m and v, EMA %.1f MiB each%s; "
           "%s compute copy %.1f MiB; activations %.1f MiB (batch %lld%s); other %.1f MiB",
           k_name(t->b), used / mib, n * 4 / mib, shard / mib, t->zero ? " (ZeRO-1 shard)" : "",
           rdt_dtype_name(k_act_dtype(t->b)), copy / mib, act / mib, (long long)t->o->train_batch_size,
           t->o->gradient_checkpointing ? ", recomputed blocks" : "", (used - 2 * n * 4 - 3 * shard - copy - act) / mib);
}

/* Train to max_steps; every failure stops all ranks. */
static int run_loop(trainer *t) {
  const rdt_train_opts *o = t->o;
  if (t->main_rank) rdt_progress_start(&t->bar, "train", t->max_steps - t->start_step);
  int first = 1;
  while (t->st.global_step < t->max_steps) {
    step_result r = {0};
    if (train_step(t, &r) != 0) return -1;
    if (first && t->main_rank) memory_plan(t);
    first = 0;
    if (t->main_rank && log_step(t, &r) != 0) return -1;
    int64_t s = t->st.global_step;
    if (o->checkpointing_period > 0 && s % o->checkpointing_period == 0 && save_checkpoint(t) != 0) return -1;
    if (t->val_b && s % o->sample_period == 0 && validate(t) != 0) return -1;
  }
  if (t->main_rank) rdt_progress_end(&t->bar);
  rdt_ckpt_host h;
  host_state_gather(t, &h, 0);
  int rc = t->main_rank ? rdt_ckpt_save_final(o->output_dir, t->m, h.ema) : 0;
  host_state_free(&h);
  if (rc == 0 && t->main_rank) rdt_info("Saved Model to %s", o->output_dir);
  return rc;
}

/* Rank 0's output folder, training.log and metrics. */
static int setup_output(trainer *t, int resumed) {
  if (!t->main_rank) return 0;
  t->metrics = rdt_metrics_open(t->o->output_dir, strcmp(t->o->report_to, "tensorboard") == 0,
                                resumed ? t->st.global_step : -1);
  return t->metrics ? 0 : -1;
}

static int setup_log(trainer *t) {
  const rdt_train_opts *o = t->o;
  RDT_CHECK(o->output_dir && *o->output_dir, "--output_dir is empty");
  RDT_CHECK(strcmp(o->report_to, "tensorboard") == 0 || strcmp(o->report_to, "none") == 0,
            "--report_to: '%s' is not supported (tensorboard or none)", o->report_to);
  if (t->d->world > 1) rdt_log_set_rank(t->d->rank);
  if (!t->main_rank) return 0;
  if (rdt_mkdirs(o->output_dir) != 0) return -1;
  int stale = rdt_ckpt_clean_temp(o->output_dir);
  char *log = rdt_path_join(o->output_dir, "training.log");
  rdt_log_set_file(log);
  free(log);
  if (stale) rdt_warn("removed %d unfinished checkpoint folder%s left by an interrupted run", stale, stale > 1 ? "s" : "");
  return 0;
}

static void trainer_free(trainer *t) {
  rdt_loader_free(t->loader);
  for (int i = 0; i < t->nslots; i++) rdt_train_batch_free(t->slots[i]);
  free(t->slots);
  rdt_train_batch_free(t->val_batch);
  rdt_batcher_free(t->train_b);
  rdt_batcher_free(t->val_b);
  rdt_metrics_close(t->metrics);
  rdt_ema_free(&t->ema);
  rdt_adamw_free(&t->opt);
  rdt_model_free(t->m);
  rdt_conditions_free(t->cond);
  rdt_libero_close(t->data);
  rdt_data_sources_free(t->src, t->nsrc);
  free(t->state_mean);
  free(t->action_std);
  if (t->b) k_close(t->b);
  rdt_config_free(t->cfg);
  if (t->main_rank) rdt_log_set_file(NULL);
}

int rdt_train_run(const rdt_train_opts *o, rdt_dist *d) {
  trainer t;
  memset(&t, 0, sizeof t);
  t.o = o;
  t.d = d;
  t.main_rank = d->rank == 0;
  int rc = setup_log(&t);
  if (rc == 0) rc = setup_config(&t);
  if (rc == 0) rc = setup_backend(&t);
  if (rc == 0) rc = setup_data(&t);
  if (rc == 0) rc = setup_stats(&t);
  if (rc == 0) rc = setup_model(&t);
  if (rc == 0) rc = setup_optim(&t);
  if (rc == 0) rc = setup_schedule(&t);
  if (rc == 0) rc = setup_resume(&t);
  t.start_step = t.st.global_step;
  if (rc == 0) rc = setup_output(&t, t.start_step > 0 || t.st.micro_steps > 0);
  if (rc == 0) {
    setup_loader(&t);
    banner(&t);
    rc = run_loop(&t);
  }
  if (rc != 0) {
    if (d->world > 1) rdt_dist_abort(d, "%s", rdt_error());
    fprintf(stderr, "rdt: error: %s\n", rdt_error());
    rdt_log(RDT_LOG_DEBUG, "error: %s", rdt_error());
  }
  trainer_free(&t);
  return rc ? 1 : 0;
}
