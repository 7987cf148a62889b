/* model/siglip.h: the SigLIP vision tower (Hugging Face SiglipVisionModel),
 * forward only, frozen, on any k_backend.
 *
 * RDT encodes every camera image with google/siglip-so400m-patch14-384 and
 * uses `last_hidden_state`: 729 tokens x 1152 per image.  The network:
 *   patch embedding   Conv2d(C, D, kernel p, stride p, "valid") with bias,
 *                     patches in row-major order, + learned position embedding;
 *   N encoder layers  x += out_proj(attn(LN1(x)))   (q/k/v/out with biases,
 *                                                    scale head_dim^-0.5)
 *                     x += fc2(gelu_tanh(fc1(LN2(x))))
 *   post_layernorm    (LayerNorm with bias, eps from the config, 1e-6);
 * the pooling head is not used.  Weights load from a Hugging Face folder
 * (config.json + model.safetensors or shards or pytorch_model.bin), either a
 * SiglipVisionModel or a full SiglipModel (its text tower is ignored); any
 * float dtype.
 *
 * Images that are one constant colour (the background that pads missing
 * cameras) are encoded once and served from a cache afterwards.  A model
 * object holds its activation buffers: one caller at a time.
 */
#ifndef RDT_MODEL_SIGLIP_H
#define RDT_MODEL_SIGLIP_H

#include "core/json.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "model/encoder_util.h"

typedef struct {
  int hidden_size;         /* D: 1152 for so400m */
  int intermediate_size;   /* 4304 */
  int num_layers;          /* 27 */
  int num_heads;           /* 16 */
  int num_channels;        /* 3 */
  int image_size;          /* 384 */
  int patch_size;          /* 14 */
  float eps;               /* layer_norm_eps, 1e-6 */
} siglip_config;

typedef struct siglip siglip;

/* Config from a parsed config.json: the "vision_config" object of a full
 * SigLIP config, or the top level of a vision-only one; HF defaults for
 * absent keys.  0 or -1 + rdt_error(). */
int siglip_config_from_json(const rdt_json *j, siglip_config *c);

/* Load config.json and the weights of a model folder.  NULL + rdt_error(). */
siglip *siglip_load(k_backend *b, const char *dir, enc_mode mode);
/* Build from a config and an open weight handle (kept open by the caller
 * until siglip_free).  NULL + rdt_error(). */
siglip *siglip_new(k_backend *b, const siglip_config *c, const rdt_st *st, enc_mode mode);
void siglip_free(siglip *m);
/* Write a folder (config.json + model.safetensors) with random weights of
 * this config, for benchmarks at real sizes; 0 or -1 + rdt_error(). */
int siglip_write_random(const siglip_config *c, const char *dir, rdt_dtype dtype, uint64_t seed);

const siglip_config *siglip_cfg(const siglip *m);
/* Tokens per image: (image_size / patch_size)^2 (729 for so400m). */
int siglip_tokens(const siglip *m);
/* 1 if the matrices are streamed from the checkpoint at every forward pass. */
int siglip_streamed(const siglip *m);

/* Encode n preprocessed images (host F32, [n, C, S, S], as SiglipImageProcessor
 * gives them) into out, an activation buffer [n, tokens, D] on the backend. */
void siglip_forward(siglip *m, const float *images, int n, void *out);
/* The same into a buffer the model owns and reuses (grown as needed): valid
 * until the next call.  For handing the tokens on without a host round trip. */
const void *siglip_encode_device(siglip *m, const float *images, int n);
/* The same into a host F32 array [n, tokens, D]. */
void siglip_encode(siglip *m, const float *images, int n, float *out);
/* Images served from the constant-colour cache so far (for tests and logs). */
long siglip_cache_hits(const siglip *m);

#endif
