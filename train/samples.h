/* train/samples.h: training and validation batches, as upstream's
 * VLAConsumerDataset + collator + RDTRunner.compute_loss draw them.
 *
 * Sample g (a global index: micro-batch k of rank r holds samples
 * k * stride + r * B + i, i < B) takes every random draw from its own stream
 * rdt_rng_seed(seed, stream_base + g), in this order:
 *   1. (episode, step): rdt_libero_draw (dataset by weight, episode by usable
 *      steps, step uniform), then the sample itself (image augmentation draws
 *      from the stream when --image_aug);
 *   2. training only, each with probability cond_mask_prob (upstream
 *      train/dataset.py): control frequency -> 0; state noise
 *      N(0, episode state_std / sqrt(10^(snr/10))) when --state_noise_snr;
 *      state -> the dataset's state_mean; state_elem_mask -> zeros; for each
 *      valid image ([t-1, t] x [exterior, right wrist, left wrist]) ->
 *      background (the exterior camera with cam_ext_mask_prob when >= 0);
 *      instruction -> "" (the empty instruction's embedding);
 *   3. the diffusion timestep, uniform in [0, num_train_timesteps), and the
 *      noise, N(0, 1) [chunk, 128] (validation: the sampler's initial noise).
 * So a batch depends only on (seed, its index, the batch layout): the same
 * for any number of loader threads, across resume, and across ranks (N
 * ranks with batch B/N see exactly the samples of one rank with batch B).
 */
#ifndef RDT_TRAIN_SAMPLES_H
#define RDT_TRAIN_SAMPLES_H

#include <math.h>
#include <stdint.h>
#include "model/rdt.h"
#include "train/conditions.h"
#include "train/data_libero.h"

typedef struct {
  int B, L;               /* samples, language length of this batch (max over samples) */
  int64_t first;          /* global index of sample 0 */
  float *lang;            /* [B, L, lang_dim] (room for max_lang_len rows each) */
  uint8_t *lang_mask;     /* [B, L] */
  float *images;          /* [B, 6, 3, S, S] preprocessed */
  float *img_tokens;      /* [B, img_cond_len, img_dim] */
  const void *img_tokens_dev; /* or the tokens on the device (SigLIP on a GPU; rdt_batch.img_tokens_dev) */
  int img_encoded;        /* img_tokens (or img_tokens_dev) filled */
  float *state;           /* [B, 128] */
  float *state_mask;      /* [B, 128] state_elem_mask after dropout = the model's action_mask */
  float *state_norm;      /* [B, 128] episode state norm (validation l2err) */
  float *actions, *noise; /* [B, chunk, 128] */
  int64_t *timesteps;     /* [B] */
  float *ctrl_freq;       /* [B] */
  int *dataset;           /* [B] */
} rdt_train_batch;

typedef struct {
  uint64_t seed;
  uint64_t stream_base;   /* separates training and validation draws */
  int train;              /* 1: dropout, state noise, augmentation */
  int batch;              /* B per rank */
  int64_t stride;         /* samples per micro-batch over all ranks */
  int64_t offset;         /* this rank's first sample within a micro-batch */
  double cond_mask_prob, cam_ext_mask_prob;
  double state_noise_snr; /* NAN: none */
  float ctrl_freq;        /* the control-frequency condition (Hz) */
  const float *state_mean;/* [datasets, 128] the masked-state dummy */
  int num_train_timesteps;
} rdt_batcher_opts;

typedef struct rdt_batcher rdt_batcher;

/* workers: loader threads that will call rdt_batcher_fill (0 = synchronous). */
rdt_batcher *rdt_batcher_new(const rdt_batcher_opts *o, const rdt_libero_data *d, rdt_conditions *c,
                             const rdt_model_config *mc, int workers);
void rdt_batcher_free(rdt_batcher *b);
rdt_train_batch *rdt_batcher_alloc(const rdt_batcher *b);
void rdt_train_batch_free(rdt_train_batch *t);
/* Loader callback: fill slot (an rdt_train_batch) with micro-batch `index`. */
int rdt_batcher_fill(void *batcher, int64_t index, void *slot, int worker);
/* Encode the images if the loader did not (SigLIP in the training thread). */
void rdt_batcher_encode(rdt_batcher *b, rdt_train_batch *t);
/* The model's view of a batch. */
rdt_batch rdt_train_batch_view(const rdt_train_batch *t);

#endif
