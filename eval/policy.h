/* eval/policy.h: the RDT policy as LIBERO evaluation runs it.
 *
 * Observation -> model inputs exactly as training builds them: the raw
 * observation (joints, gripper, eef pose with the orientation as axis-angle of
 * the eef quaternion, the two cameras at t-1 and t as rendered, bottom row
 * first) goes through rdt_obs_to_model_input (model/unified.h) with the
 * config's unified format and image settings; control frequency 20; the
 * state mask as action mask.  Action chunk -> 7-dim LIBERO actions by
 * rdt_uni_action_to_libero (the inverse of the training mapping, clipped).
 *
 * One query of one environment is an eval_request: prepared on the worker
 * thread that owns the environment (image preprocessing, diffusion noise drawn
 * from the episode's own generator), then answered together with the other
 * waiting requests by one eval_policy_run call.  Every request is padded to
 * the same language length (the longest instruction of the run, with a mask).
 *
 * Batching (eval_policy_opts.batch):
 *   EVAL_BATCH_ONE   the requests go through the vision encoder and the
 *                    sampler as ONE batch (B = number of requests): the fast
 *                    path on a GPU.  Rows are independent in exact arithmetic,
 *                    but GEMM libraries round a row differently depending on
 *                    the batch size (OpenBLAS small-matrix kernels, cuBLAS
 *                    algorithm choice), so results agree with B = 1 only to
 *                    float rounding;
 *   EVAL_BATCH_ROWS  each request is run alone (B = 1), one after another:
 *                    a row's result never depends on what else was waiting,
 *                    so an evaluation gives bit-identical episodes for any
 *                    number of workers;
 *   EVAL_BATCH_AUTO  ROWS on the CPU backend (its kernels are multi-threaded
 *                    within one row; batching gains little), ONE on CUDA.
 *
 *   eval_policy *p = eval_policy_open(cfg, &opts);      // model, strict weights, encoders
 *   eval_policy_instructions(p, texts, n);               // encode once
 *   eval_request *r = eval_request_new(p);
 *   eval_policy_prepare(p, &raw, instruction, &rng, r);  // any thread
 *   eval_policy_run(p, &r, 1);                           // the model thread
 *   eval_policy_action(p, r, k, &raw_now, action);       // chunk element k -> LIBERO action
 */
#ifndef RDT_EVAL_POLICY_H
#define RDT_EVAL_POLICY_H

#include <stdint.h>
#include "core/config.h"
#include "core/rng.h"
#include "model/rdt.h"
#include "model/unified.h"
#include "sim/env.h"

/* ---------------------------------------------------------------- observations */
/* How observations become model inputs: the config's dataset.unified_format
 * and image settings (dataset.image_rotate180, dataset.image_aspect_ratio) at
 * the vision encoder's input side. */
typedef struct {
  const rdt_uni_format *format;
  rdt_image_cfg image;
} eval_obs_map;

/* 0 or -1 + rdt_error() (unknown format, bad keys).  cfg may be NULL (defaults). */
int eval_obs_map_init(eval_obs_map *m, const rdt_config *cfg, int encoder_size);

/* The raw observation of a simulator observation: the low-dimensional state
 * (eef orientation = rdt_quat_to_axisangle of the eef quaternion, as LIBERO
 * stores ee_ori) and the camera images given: cur[c] / prev[c] for camera c
 * (RDT_CAM_AGENTVIEW, RDT_CAM_EYE_IN_HAND), size x size, bottom row first,
 * NULL when absent. */
void eval_raw_obs(const sim_obs *o, const uint8_t *const cur[RDT_RAW_CAMERAS],
                  const uint8_t *const prev[RDT_RAW_CAMERAS], int size, rdt_raw_obs *out);

/* ---------------------------------------------------------------- the policy */
typedef enum { EVAL_BATCH_AUTO, EVAL_BATCH_ONE, EVAL_BATCH_ROWS } eval_batch_mode;

/* "auto", "batch", "rows" -> the mode, or -1. */
int eval_batch_mode_parse(const char *s);

typedef struct {
  const char *pretrained;          /* weights file, or a checkpoint folder (its ema/model.safetensors);
                                      NULL: random weights (benchmarks only; needs the YAML config) */
  const char *text_encoder;        /* T5 folder, or NULL */
  const char *vision_encoder;      /* SigLIP folder, or NULL */
  const char *precomp_lang_embed;  /* folder of `rdt encode-lang` files, or NULL */
  const char *device;              /* "cpu", "cuda", "cuda:N" */
  int threads;                     /* CPU threads (0 = all cores) */
  const char *precision;           /* CUDA activations: "bf16" or "no" */
  eval_batch_mode batch;           /* how waiting requests share model calls */
} eval_policy_opts;

typedef struct eval_policy eval_policy;

/* The weights file a --pretrained value names: a folder gives its
 * ema/model.safetensors when present, else the folder itself (rdt_st_open
 * picks model.safetensors, a shard index or pytorch_model.bin).  Malloc'd. */
char *eval_weights_path(const char *pretrained);

/* Open the backend, build the model for the config (cfg: the YAML with
 * overrides, or NULL for the config.json beside the weights), load the weights
 * strictly (every missing, unexpected or wrong-shaped tensor in one message;
 * without weights: rdt_model_init with seed 0),
 * then the encoders (the test-only tiny encoders when the config has
 * model.tiny_encoders, else SigLIP and T5 or precomputed embeddings).
 * NULL + rdt_error(). */
eval_policy *eval_policy_open(const rdt_config *cfg, const eval_policy_opts *o);
void eval_policy_free(eval_policy *p);

/* Encode the run's instructions (index i = text[i]), once; fixes the language
 * length every query is padded to, and releases T5.  0 or -1. */
int eval_policy_instructions(eval_policy *p, const char *const *text, int n);

const eval_obs_map *eval_policy_obs_map(const eval_policy *p);
const rdt_model_config *eval_policy_model_config(const eval_policy *p);
const char *eval_policy_weights(const eval_policy *p);     /* the resolved weights path */
const char *eval_policy_describe(const eval_policy *p);    /* backend and encoders, one line */
/* Model calls (rdt_model_sample) and rows answered so far. */
int64_t eval_policy_calls(const eval_policy *p);
int64_t eval_policy_rows(const eval_policy *p);

/* ---------------------------------------------------------------- queries */
typedef struct {
  rdt_model_input in;     /* state, masks, preprocessed images (owned) */
  int instruction;        /* index given to eval_policy_instructions */
  float *noise;           /* horizon x action_dim: the sampler's initial noise */
  float *chunk;           /* horizon x action_dim: the answer */
} eval_request;

eval_request *eval_request_new(const eval_policy *p);
void eval_request_free(eval_request *r);

/* Build the model inputs of one observation and draw the noise (horizon x
 * action_dim standard normals, in order) from rng.  Thread-safe.  0 or -1. */
int eval_policy_prepare(const eval_policy *p, const rdt_raw_obs *o, int instruction, rdt_rng *rng,
                        eval_request *r);
/* Answer n prepared requests: vision encoder on their images, then the
 * sampler, as one batch or row by row (the policy's batch mode).  One thread
 * at a time.  0 or -1. */
int eval_policy_run(eval_policy *p, eval_request *const *r, int n);
/* Chunk element k of an answered request as a LIBERO action; cur is the
 * observation the action is taken from (used by absolute formats). */
void eval_policy_action(const eval_policy *p, const eval_request *r, int k, const rdt_raw_obs *cur,
                        double action[SIM_ACTION_DIM]);

#endif
