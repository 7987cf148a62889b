/* model/tiny_encoders.h: TEST-ONLY stand-ins for SigLIP and T5, so the whole
 * training/evaluation loop runs in CI on 2 CPU cores.  They carry no
 * pretrained knowledge; never use them for real training.
 *
 * Selected by a config with a model.tiny_encoders section (configs/tiny.yaml):
 *   model:
 *     img_token_dim: 32            # width of an image token   (SigLIP: 1152)
 *     lang_token_dim: 32           # width of a language token (T5-XXL: 4096)
 *     img_tokens_per_image: 16     # must equal (image_size / patch_size)^2
 *     tiny_encoders:
 *       image_size: 32             # the image preprocessing side (SigLIP: 384)
 *       patch_size: 8
 *       vocab_size: 4096           # rows of the hashed word table
 *       seed: 1234
 *   dataset:
 *     tokenizer_max_length: 32     # most tokens per instruction, EOS included
 *
 * Vision: the image (3 x S x S, preprocessed as for SigLIP) is cut into p x p
 * patches in row-major patch order; token = W . patch + b with W, b a fixed
 * Gaussian draw from the seed (patch flattened channel, row, column; W scaled
 * by 1/sqrt(3 p p), b by 0.1).  Same contract as SigLIP's last_hidden_state:
 * (S/p)^2 tokens x img_token_dim per image.
 * Text: lower-cased ASCII words (runs of letters and digits) -> FNV-1a hash ->
 * row (hash mod (vocab_size - 1)) + 1 of a seeded N(0,1) table, then an EOS
 * token (row 0), as T5's </s>; the mask is 1 over those L tokens.  Same
 * contract as the T5 encoder: L x lang_token_dim, L >= 1 ("" gives EOS only).
 */
#ifndef RDT_TINY_ENCODERS_H
#define RDT_TINY_ENCODERS_H

#include <stdint.h>
#include "core/config.h"

typedef struct {
  int image_size, patch_size, img_token_dim;
  int lang_token_dim, vocab_size, max_length;
  uint64_t seed;
} rdt_tiny_cfg;

/* Read the keys above.  1 when model.tiny_encoders is present (filled), 0 when
 * absent, -1 on a bad value (non-positive sizes, image_size not a multiple of
 * patch_size, img_tokens_per_image inconsistent). */
int rdt_tiny_cfg_from_config(const rdt_config *c, rdt_tiny_cfg *out);

/* ---------------------------------------------------------------- vision */
typedef struct rdt_tiny_vision rdt_tiny_vision;

rdt_tiny_vision *rdt_tiny_vision_new(const rdt_tiny_cfg *c);
void rdt_tiny_vision_free(rdt_tiny_vision *v);
int rdt_tiny_vision_tokens(const rdt_tiny_vision *v);    /* (S/p)^2 */
/* images: n x 3 x S x S; tokens: n x (S/p)^2 x img_token_dim. */
void rdt_tiny_vision_encode(const rdt_tiny_vision *v, const float *images, int n, float *tokens);

/* ---------------------------------------------------------------- text */
typedef struct rdt_tiny_text rdt_tiny_text;

rdt_tiny_text *rdt_tiny_text_new(const rdt_tiny_cfg *c);
void rdt_tiny_text_free(rdt_tiny_text *t);
/* Encode into emb (max_length x lang_token_dim, rows past L zeroed) and mask
 * (max_length, 1 for the first L).  Returns L, or -1 when the words and EOS
 * exceed max_length (the error names the instruction). */
int rdt_tiny_text_encode(const rdt_tiny_text *t, const char *text, float *emb, uint8_t *mask);

#endif
