/* model/t5.h: the T5 encoder (Hugging Face T5EncoderModel, T5 v1.1), forward
 * only, frozen, on any k_backend.
 *
 * RDT encodes instructions with google/t5-v1_1-xxl and uses
 * `last_hidden_state` (L x 4096).  The network:
 *   x = shared[ids]                               (no scaling)
 *   per block:  x += o(attn(q, k, v of LN0(x)))   scores q.k + bias, NO 1/sqrt(d);
 *                                                  bias[h, i, j] = rel_bias[bucket(j - i), h]
 *                                                  from block 0, shared by all blocks;
 *                                                  padded keys masked
 *               x += wo(act(wi_0 LN1(x)) * wi_1 LN1(x))   gated GELU-tanh (v1.1)
 *   out = final_layer_norm(x)
 * with T5's LayerNorm y = x * rsqrt(mean(x^2) + eps) * w (no centring, no
 * bias).  Weights load from a Hugging Face folder (config.json + safetensors,
 * shards or pytorch_model.bin; a full encoder-decoder checkpoint works, its
 * decoder is ignored), any float dtype; on a CPU backend a checkpoint too big
 * for memory is streamed layer by layer (encoder_util.h).  A model object
 * holds its activation buffers: one caller at a time.
 */
#ifndef RDT_MODEL_T5_H
#define RDT_MODEL_T5_H

#include <stdint.h>
#include "core/json.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "model/encoder_util.h"
#include "model/tokenizer.h"

typedef enum { T5_GATED_GELU, T5_GATED_SILU } t5_activation;

typedef struct {
  int d_model;        /* 4096 for v1.1-XXL */
  int d_kv;           /* 64 */
  int d_ff;           /* 10240 */
  int num_layers;     /* 24 */
  int num_heads;      /* 64 */
  int num_buckets;    /* relative_attention_num_buckets, 32 */
  int max_distance;   /* relative_attention_max_distance, 128 */
  int vocab_size;     /* 32128 */
  float eps;          /* layer_norm_epsilon, 1e-6 */
  t5_activation act;  /* feed_forward_proj: "gated-gelu" (v1.1) or "gated-silu" */
} t5_config;

typedef struct t5 t5;

/* Config from a parsed config.json (HF defaults for absent keys); 0 or -1. */
int t5_config_from_json(const rdt_json *j, t5_config *c);

/* Load config.json, the weights and, if present, spiece.model of a model
 * folder.  NULL + rdt_error(). */
t5 *t5_load(k_backend *b, const char *dir, enc_mode mode);
/* Build from a config and an open weight handle (kept open by the caller
 * until t5_free).  NULL + rdt_error(). */
t5 *t5_new(k_backend *b, const t5_config *c, const rdt_st *st, enc_mode mode);
void t5_free(t5 *m);
/* Write a folder (config.json + model.safetensors, no tokenizer) with random
 * weights of this config, for benchmarks at real sizes; 0 or -1. */
int t5_write_random(const t5_config *c, const char *dir, rdt_dtype dtype, uint64_t seed);

const t5_config *t5_cfg(const t5 *m);
/* The folder's tokenizer (NULL when built with t5_new or without spiece.model). */
const spm_model *t5_tokenizer(const t5 *m);
int t5_streamed(const t5 *m);

/* T5's bidirectional relative-position bucket of relative_position = key -
 * query (HF _relative_position_bucket with bidirectional=True): half the
 * buckets for keys after the query; within a half, exact distances below
 * num_buckets/4, then log-spaced up to max_distance, clamped. */
int t5_bucket(int relative_position, int num_buckets, int max_distance);
/* bias[h, i, j] = table[t5_bucket(j - i), h] for L x L positions; table is the
 * relative_attention_bias weight [num_buckets, heads]; bias is [heads, L, L]. */
void t5_position_bias(const float *table, int heads, int num_buckets, int max_distance, int L,
                      float *bias);

/* Encode B sequences of L token ids (host; mask [B, L] 1 = token, NULL = all)
 * into out, an activation buffer [B, L, d_model].  -1 + rdt_error() for an id
 * outside the vocabulary. */
int t5_forward(t5 *m, const int32_t *ids, const uint8_t *mask, int B, int L, void *out);
/* The same into a host F32 array [B, L, d_model]. */
int t5_encode(t5 *m, const int32_t *ids, const uint8_t *mask, int B, int L, float *out);
/* Tokenise one text with the T5 rule (EOS, truncation to max_length) and
 * encode it: *out = malloc'd [*len, d_model].  Needs the folder's tokenizer. */
int t5_encode_text(t5 *m, const char *text, int max_length, float **out, int *len);

/* ---------------------------------------------------------------- precomputed embeddings */
/* Where `rdt encode-lang` stores an instruction's embedding and
 * --precomp_lang_embed finds it (docs/ENCODERS.md): DIR/<slug>.safetensors,
 * slug = the instruction with every byte outside [A-Za-z0-9] replaced by '_';
 * DIR/empty_lang_embed.safetensors for "".  Returns a malloc'd path. */
char *t5_embed_path(const char *dir, const char *instruction);

/* Read the precomputed embedding of an instruction from dir (the file
 * t5_embed_path names: one tensor [L, dim] or [1, L, dim], any float dtype)
 * into a malloc'd F32 array *emb of *len rows.  0, or -1 naming the file when
 * it is missing or its shape is not [L, dim] with 1 <= L <= max_len. */
int t5_embed_load(const char *dir, const char *instruction, int dim, int max_len, float **emb, int *len);

#endif
