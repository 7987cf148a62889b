/* train/conditions.h: the frozen condition encoders of a training run.
 *
 * Language: every distinct instruction of the data (and "", the empty
 * instruction that condition dropout substitutes) is encoded ONCE at start-up
 * into a table that the loader threads read: by the test-only tiny text
 * encoder (a config with model.tiny_encoders), by T5
 * (--pretrained_text_encoder_name_or_path), or from precomputed embeddings
 * (--precomp_lang_embed --lang_embed_dir DIR: the files `rdt encode-lang`
 * writes, t5_embed_path: DIR/<slug>.safetensors per instruction and
 * DIR/empty_lang_embed.safetensors for ""; the file's one tensor is [L, D] or
 * [1, L, D], any float dtype).  The encoders are frozen and deterministic, so
 * this equals upstream's per-batch encoding.
 * Vision: the tiny encoder runs on the loader threads; SigLIP
 * (--pretrained_vision_encoder_name_or_path) on the backend, on the batch,
 * in the training thread.
 */
#ifndef RDT_TRAIN_CONDITIONS_H
#define RDT_TRAIN_CONDITIONS_H

#include <stdint.h>
#include "core/config.h"
#include "kernels/kernels.h"

typedef struct rdt_conditions rdt_conditions;

typedef struct {
  const char *vision_path;     /* SigLIP folder, or NULL */
  const char *text_path;       /* T5 folder, or NULL */
  const char *lang_embed_dir;  /* precomputed embeddings, or NULL */
  int lang_token_dim, img_token_dim, img_tokens_per_image, max_lang_len;
} rdt_conditions_opts;

/* Open the encoders a config and the options select; NULL + rdt_error()
 * (e.g. a real-size config without encoder paths). */
rdt_conditions *rdt_conditions_open(const rdt_config *cfg, const rdt_conditions_opts *o, k_backend *b);
void rdt_conditions_free(rdt_conditions *c);

/* The preprocessing side of the vision encoder (32 tiny, 384 SigLIP). */
int rdt_conditions_image_size(const rdt_conditions *c);
/* A short description for the banner ("tiny (test-only)", "SigLIP + T5", ...). */
const char *rdt_conditions_describe(const rdt_conditions *c);

/* Encode the instructions (n strings; "" is always added).  0 or -1. */
int rdt_conditions_add_instructions(rdt_conditions *c, const char *const *text, int n);
/* The encoded instruction: copies L rows of D floats into emb (room for
 * max_lang_len rows) and returns L; -1 + rdt_error() if it was never added. */
int rdt_conditions_lang(const rdt_conditions *c, const char *text, float *emb);

/* 1 when rdt_conditions_images may run on loader threads (tiny encoder). */
int rdt_conditions_images_threadsafe(const rdt_conditions *c);
/* n preprocessed images [n, 3, S, S] -> tokens [n, tokens, D] (host). */
void rdt_conditions_images(rdt_conditions *c, const float *images, int n, float *tokens);
/* The same into a buffer of the backend (activation dtype) that the encoder
 * owns and reuses (siglip_encode_device): valid until the next call.  For SigLIP on a GPU, whose tokens then
 * go to the model without a round trip through host memory
 * (rdt_batch.img_tokens_dev).  NULL when the encoder runs on the host (the
 * tiny encoder, or the CPU backend): use rdt_conditions_images. */
const void *rdt_conditions_images_device(rdt_conditions *c, const float *images, int n);

#endif
