/* model/rdt.h: the Robotics Diffusion Transformer (RDTRunner of
 * thu-ml/RoboticsDiffusionTransformer) on any k_backend.
 *
 * One model object holds
 *   - every trainable parameter in ONE contiguous F32 master buffer on the
 *     backend (rdt_model_params), and a gradient buffer of the same layout
 *     (rdt_model_grads): AdamW, EMA, gradient all-reduce and checkpoints work
 *     on these flat buffers;
 *   - a table of (upstream state-dict name, shape, offset) describing the
 *     layout, in upstream state-dict order (rdt_model_param);
 *   - the activation memory, planned per (batch, language length) and reused.
 *
 * Numerics follow upstream exactly (timm 1.0.3 RmsNorm with the unbiased
 * variance, GELU-tanh, qk-norm per head, even blocks attend to language and odd
 * blocks to image tokens, cos-first timestep embedding); docs/MODEL.md has the
 * details.  Every batch argument is a HOST array in row-major order; B is the
 * batch, L the language length, H the hidden size, Tc = horizon (64),
 * D = state_token_dim = action_dim (128).
 *
 * Typical use:
 *   rdt_model_config cfg;  rdt_model_config_load("configs/base.yaml", &cfg);
 *   k_backend *b = k_open("cpu", 0);
 *   rdt_model *m = rdt_model_new(b, &cfg);
 *   rdt_st *st = rdt_st_open("checkpoints/rdt-1b");  rdt_model_load(m, st, NULL);
 *   rdt_model_sample(m, &batch, noise, actions);
 */
#ifndef RDT_MODEL_RDT_H
#define RDT_MODEL_RDT_H

#include <stddef.h>
#include <stdint.h>
#include "core/config.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

/* ---------------------------------------------------------------- configuration */
#define RDT_POS_MAX_MODALITIES 8
#define RDT_POS_MAX_GRID 4

/* One entry of an upstream pos-embed config, e.g. ("image", [2, 3, -729]) or
 * ("lang", -1024).  A negative size means "no sincos embedding along that
 * axis" (its |size| still counts tokens). */
typedef struct {
  char name[32];
  int ndim;                       /* 1 for a plain length, >1 for an image grid */
  int size[RDT_POS_MAX_GRID];
} rdt_pos_modality;

/* An upstream lang_pos_embed_config / img_pos_embed_config; n == 0 means None
 * (upstream then uses a 1-D sincos over all positions). */
typedef struct {
  int n;
  rdt_pos_modality m[RDT_POS_MAX_MODALITIES];
} rdt_pos_config;

/* Condition adaptor: "linear" (depth 0) or "mlp{N}x_gelu" (depth N). */
typedef struct {
  int depth;
} rdt_adaptor_kind;

typedef struct {
  /* model.rdt */
  int hidden_size, depth, num_heads;
  /* shapes (upstream RDTRunner arguments) */
  int action_dim;           /* output dim: common.state_dim (128) */
  int pred_horizon;         /* common.action_chunk_size (64) */
  int lang_token_dim;       /* model.lang_token_dim (4096 for T5-XXL) */
  int img_token_dim;        /* model.img_token_dim (1152 for SigLIP so400m) */
  int state_token_dim;      /* model.state_token_dim (128) */
  int max_lang_cond_len;    /* dataset.tokenizer_max_length (1024) */
  int img_history_size;     /* common.img_history_size (2) */
  int num_cameras;          /* common.num_cameras (3) */
  int img_tokens_per_image; /* model.img_tokens_per_image (729 for SigLIP so400m) */
  int img_cond_len;         /* history x cameras x tokens per image (4374) */
  rdt_pos_config lang_pos, img_pos;
  rdt_adaptor_kind lang_adaptor, img_adaptor, state_adaptor;
  /* model.noise_scheduler */
  int num_train_timesteps;      /* 1000 */
  int num_inference_timesteps;  /* 5 */
  char beta_schedule[32];       /* squaredcos_cap_v2 */
  char prediction_type[16];     /* sample | epsilon */
  int clip_sample;              /* must be false */
  /* model.ema (used by the trainer) */
  int64_t ema_update_after_step;
  double ema_inv_gamma, ema_power, ema_min_value, ema_max_value;
} rdt_model_config;

/* Fill from a YAML config (configs/base.yaml layout: common, dataset, model).
 * Missing keys take the RDT-1B defaults; wrong types and inconsistent sizes
 * fail.  0 or -1 + rdt_error(). */
int rdt_model_config_from_yaml(const rdt_config *c, rdt_model_config *out);
/* Fill from an upstream config.json (flat RDTRunner kwargs + rdt,
 * noise_scheduler, ema, *_adaptor).  0 or -1. */
int rdt_model_config_from_json(const rdt_json *j, rdt_model_config *out);
/* Load a .json (config.json) or YAML file by its extension.  0 or -1. */
int rdt_model_config_load(const char *path, rdt_model_config *out);
/* The config as found beside a weights path: WEIGHTS_DIR/config.json (also the
 * parent of an ema/ folder) when it exists.  1 found, 0 none, -1 unreadable. */
int rdt_model_config_beside(const char *weights_path, rdt_model_config *out);
/* Check sizes (heads divide hidden, even hidden, action_dim == state_token_dim,
 * img_cond_len matches img_pos, supported scheduler).  0 or -1. */
int rdt_model_config_check(const rdt_model_config *cfg);
/* Upstream config.json text (malloc'd); rdt_model_config_write writes it
 * atomically. */
char *rdt_model_config_to_json(const rdt_model_config *cfg);
int rdt_model_config_write(const rdt_model_config *cfg, const char *path);

/* ---------------------------------------------------------------- parameter table */
typedef struct {
  char name[96];            /* upstream state-dict name */
  int ndim;
  int64_t shape[3];
  size_t offset;            /* in floats, into the master/gradient buffers */
  size_t numel;
} rdt_param_info;

/* The parameter table for a config, in upstream state-dict order, without
 * allocating a model (e.g. to check a 1B layout).  Returns the count and a
 * malloc'd array in *out (free it). */
int rdt_param_table(const rdt_model_config *cfg, rdt_param_info **out);
/* Total number of floats of a table. */
size_t rdt_param_total(const rdt_param_info *t, int n);
/* Does a tensor file hold exactly this table (names, shapes, float dtypes)?
 * 0, or -1 with every missing, unexpected and wrong-shaped name in one error. */
int rdt_param_check(const rdt_param_info *table, int n, const rdt_st *st);

/* ---------------------------------------------------------------- model object */
typedef struct rdt_model rdt_model;

/* A model on backend b with all parameters zero (call rdt_model_init or
 * rdt_model_load).  NULL + rdt_error() for an invalid config. */
rdt_model *rdt_model_new(k_backend *b, const rdt_model_config *cfg);
void rdt_model_free(rdt_model *m);
const rdt_model_config *rdt_model_cfg(const rdt_model *m);
k_backend *rdt_model_backend(const rdt_model *m);

int rdt_model_param_count(const rdt_model *m);
const rdt_param_info *rdt_model_param(const rdt_model *m, int i);
int rdt_model_param_find(const rdt_model *m, const char *name);   /* index or -1 */
size_t rdt_model_numel(const rdt_model *m);                        /* total floats */
/* Device F32 buffers of rdt_model_numel() floats, in table layout.  The
 * gradient buffer is allocated (zeroed) on first use. */
float *rdt_model_params(rdt_model *m);
float *rdt_model_grads(rdt_model *m);
void rdt_model_zero_grad(rdt_model *m);
/* Call after changing rdt_model_params() (optimizer step, upload): refreshes
 * the compute copies (bf16 on CUDA).  Cheap no-op on CPU. */
void rdt_model_params_changed(rdt_model *m);
/* The compute copy of the parameters (activation dtype, table layout) when it
 * is a separate buffer (16-bit activations), else NULL: for an optimizer step
 * that refreshes it itself (rdt_adamw_ema_step) instead of calling
 * rdt_model_params_changed. */
void *rdt_model_compute_copy(rdt_model *m);

/* Initialise for training from scratch as upstream RDTRunner does:
 * xavier-uniform weights and zero biases for every Linear inside RDT, N(0, 0.02)
 * for the timestep/frequency embedder weights, zero final projection, sincos
 * position embeddings, unit norms; PyTorch's default Linear init for the
 * adaptors.  Deterministic for a seed. */
void rdt_model_init(rdt_model *m, uint64_t seed);

/* Load weights by upstream name (any float dtype, converted to F32) into dst,
 * a device buffer of rdt_model_numel() floats (NULL = the model's parameters,
 * then the compute copies are refreshed).  Strict: every missing, unexpected
 * and wrong-shaped tensor is listed in one error.  0 or -1. */
int rdt_model_load(rdt_model *m, const rdt_st *st, float *dst);
/* Save src (a device buffer in table layout; NULL = the model's parameters) as
 * safetensors with the upstream names and shapes, dtype RDT_F32 or RDT_BF16,
 * atomically.  0 or -1. */
int rdt_model_save(rdt_model *m, const float *src, const char *path, rdt_dtype dtype);
/* The same with host buffers of rdt_model_numel() floats (no compute-copy refresh). */
int rdt_model_load_host(rdt_model *m, const rdt_st *st, float *host);
int rdt_model_save_host(rdt_model *m, const float *host, const char *path, rdt_dtype dtype);

/* ---------------------------------------------------------------- batches */
/* The conditioning inputs of one call (host arrays, upstream argument names). */
typedef struct {
  int B, L;                   /* batch, language length (1..max_lang_cond_len) */
  const float *lang_tokens;   /* [B, L, lang_token_dim] */
  const uint8_t *lang_mask;   /* [B, L], 1 = attend; NULL = all attend */
  const float *img_tokens;    /* [B, img_cond_len, img_token_dim] */
  const float *state_tokens;  /* [B, 1, state_token_dim] */
  const float *action_mask;   /* [B, 1, state_token_dim], 0/1 */
  const float *ctrl_freqs;    /* [B] */
  const void *img_tokens_dev; /* instead of img_tokens when not NULL: the same tokens in a buffer of
                               * the model's backend, activation dtype (an encoder's output on the
                               * device, without a round trip through host memory) */
} rdt_batch;

/* ---------------------------------------------------------------- compute */
/* Training loss (upstream compute_loss with the caller's noise and timesteps):
 * x_t = sqrt(abar) action_gt + sqrt(1 - abar) noise, pred = model(x_t, t),
 * loss = mean((pred - target)^2) over B x horizon x D (target = action_gt for
 * prediction_type sample, noise for epsilon).  With backward != 0 the gradient
 * of grad_scale * loss is ADDED to rdt_model_grads() (zero it once per
 * optimizer step).  action_gt, noise [B, horizon, D]; timesteps [B] in
 * [0, num_train_timesteps).  Returns 0 and *loss, or -1 for a bad batch. */
int rdt_model_loss(rdt_model *m, const rdt_batch *in, const float *action_gt,
                   const float *noise, const int64_t *timesteps, int backward,
                   float grad_scale, float *loss);

/* One denoiser evaluation (upstream RDT forward after the adaptors):
 * pred [B, horizon, D] for noisy_action [B, horizon, D] at timesteps [B]. */
int rdt_model_forward(rdt_model *m, const rdt_batch *in, const float *noisy_action,
                      const int64_t *timesteps, float *pred);

/* Upstream predict_action from the given initial noise [B, horizon, D]: the
 * DPM-Solver++ loop (num_inference_timesteps steps), result times the action
 * mask, into actions [B, horizon, D]. */
int rdt_model_sample(rdt_model *m, const rdt_batch *in, const float *noise, float *actions);

/* Condition caching in rdt_model_sample (default on): the adaptor outputs and
 * every block's cross-attention K/V are computed once per call instead of once
 * per denoising step.  Results are identical either way. */
void rdt_model_set_cond_cache(rdt_model *m, int on);

/* Activation recomputation for training (default off): the forward pass keeps
 * only the residual stream of every block; the backward pass runs each block
 * forward again (its cross-attention K/V included) just before its backward.
 * One block's internals and one set of condition K/V per kind (language,
 * image) are allocated instead of every block's: about a third more compute,
 * far less memory.  Losses and gradients are bitwise the same. */
void rdt_model_set_checkpointing(rdt_model *m, int on);

/* Gradient readiness, for overlapping the gradient all-reduce with the
 * backward pass: during every rdt_model_loss with backward, fn(ctx, grads,
 * off, n) is called for each range [off, off + n) of the gradient buffer as
 * soon as the pass will no longer write it (on CUDA: once the writes are
 * queued on the backend's stream): each block's parameters as its backward
 * finishes, last block first, then the parameters before and after the
 * blocks.  Together the calls cover the buffer once.  NULL turns it off. */
typedef void (*rdt_grad_ready_fn)(void *ctx, float *grads, size_t off, size_t n);
void rdt_model_set_grad_hook(rdt_model *m, rdt_grad_ready_fn fn, void *ctx);

/* Copy an activation of the last compute call to host memory (n floats
 * expected; -1 if the name is unknown, n mismatches or the activation was not
 * kept).  Always available:
 *   "lang_cond"          [B, L, H]          lang_adaptor output
 *   "img_cond"           [B, img_cond_len, H] img_adaptor output
 *   "state_action_traj"  [B, 1 + horizon, H] state_adaptor output
 *   "pred"               [B, horizon, D]
 * After rdt_model_loss with backward (every activation is kept):
 *   "t_emb", "freq_emb"  [B, H]
 *   "x_embed"            [B, horizon + 3, H] tokens with x_pos_embed added
 *   "block.I.attn", "block.I.cross", "block.I.ffn"  [B, horizon + 3, H]
 *                        residual stream after each sublayer of block I
 *   "final"              [B, horizon + 3, D] final layer output */
int rdt_model_activation(rdt_model *m, const char *name, float *host, size_t n);
/* The element count of an activation for the last call's batch (0 if unknown). */
size_t rdt_model_activation_numel(rdt_model *m, const char *name);

/* Bytes of activation memory currently planned (for messages and benches). */
size_t rdt_model_activation_bytes(const rdt_model *m);

#endif
