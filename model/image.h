/* model/image.h: camera image -> vision encoder input, as upstream RDT feeds SigLIP.
 *
 * Pipeline (rdt_image_preprocess), for one uint8 H x W x 3 image:
 *   1. optional 180-degree rotation (cfg.rotate180).  LIBERO files and MuJoCo
 *      read-outs are bottom-row-first; ONE switch (config key
 *      dataset.image_rotate180, default on = upright) is read by training and
 *      evaluation alike, so the policy always sees the training orientation;
 *   2. optional augmentation (training only; upstream --image_aug): on 50% of
 *      the images, colour jitter and/or noise + blur (rdt_image_augment);
 *   3. pad to square on (127,127,127), centred (upstream expand2square with
 *      int(0.5*255));
 *   4. bicubic resize to cfg.size x cfg.size, bit-exact with Pillow's
 *      Image.resize(BICUBIC) on 8-bit RGB (what SiglipImageProcessor does);
 *   5. x / 255, then (x - mean) / std with mean = std = 0.5 -> float CHW.
 * A missing or masked image is the background: a cfg.size square of 127 run
 * through steps 3-5, i.e. every value (127/255 - 0.5)/0.5 = -1/255.
 * docs/DATA.md gives the sources of every constant.
 */
#ifndef RDT_IMAGE_H
#define RDT_IMAGE_H

#include <stdint.h>
#include "core/config.h"
#include "core/rng.h"

typedef struct {
  int size;            /* encoder input side: 384 for SigLIP so400m-patch14-384 */
  int rotate180;       /* 1: rotate every input by 180 degrees first (default 1) */
  int pad_square;      /* 1: upstream image_aspect_ratio "pad" (default 1) */
  int augment;         /* 1: rdt_image_preprocess augments when given an rng */
  uint8_t background;  /* padding / background grey: int(0.5*255) = 127 */
  float mean[3], std[3];
} rdt_image_cfg;

/* SigLIP defaults for an encoder of side `size`: rotate180 1, pad 1, augment 0,
 * background 127, mean = std = 0.5. */
void rdt_image_cfg_init(rdt_image_cfg *c, int size);
/* Defaults, then the config keys dataset.image_rotate180 (bool) and
 * dataset.image_aspect_ratio ("pad" or "none").  0 or -1. */
int rdt_image_cfg_from_config(rdt_image_cfg *c, const rdt_config *cfg, int size);

/* ---------------------------------------------------------------- steps */
/* dst = src turned by 180 degrees (dst != src). */
void rdt_image_rotate180(uint8_t *dst, const uint8_t *src, int h, int w);
/* Centre src on a max(h,w) square of grey `bg` (upstream expand2square:
 * offset (side - h) / 2 rows or (side - w) / 2 columns, rounded down). */
void rdt_image_pad_square(uint8_t *dst, const uint8_t *src, int h, int w, uint8_t bg);
/* Pillow BICUBIC resize of 8-bit RGB: a = -0.5 kernel, support x scale when
 * shrinking, 22-bit fixed-point coefficients, horizontal pass then vertical,
 * 8-bit intermediate.  Identity copy when the sizes match. */
void rdt_image_resize_bicubic(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w);
/* uint8 HWC -> float CHW, (x/255 - mean[c]) / std[c]. */
void rdt_image_normalize(float *dst, const uint8_t *src, int h, int w, const rdt_image_cfg *c);

/* ---------------------------------------------------------------- whole pipeline */
/* Steps 1-5 into dst (3 x size x size floats).  aug: NULL = no augmentation
 * (always at evaluation); else, when c->augment is set, rdt_image_augment
 * draws from it.  0, or -1 for a degenerate size. */
int rdt_image_preprocess(const rdt_image_cfg *c, const uint8_t *src, int h, int w,
                         rdt_rng *aug, float *dst);
/* The background image in encoder layout (3 x size x size). */
void rdt_image_background(const rdt_image_cfg *c, float *dst);
/* 1 if img (3 x size x size) is exactly the background (encoders cache it). */
int rdt_image_is_background(const rdt_image_cfg *c, const float *img);

/* ---------------------------------------------------------------- augmentation */
/* Upstream train/dataset.py --image_aug, for one valid image, in place: with
 * probability 1/2 nothing; otherwise one of {colour only, corruption only,
 * both} uniformly, colour first. */
void rdt_image_augment(uint8_t *img, int h, int w, rdt_rng *r);
/* torchvision ColorJitter(brightness 0.3, contrast 0.4, saturation 0.5, hue
 * 0.03): factors uniform in [0.7,1.3], [0.6,1.4], [0.5,1.5], [-0.03,0.03],
 * the four operations in a random order, each on 8-bit RGB as PIL's
 * ImageEnhance / HSV hue shift. */
void rdt_image_color_jitter(uint8_t *img, int h, int w, rdt_rng *r);
/* Upstream train/image_corrupt.py (imgaug), in a random order: one additive
 * noise (Gaussian / Laplace / signed Poisson, scale up to 0.05*255, per
 * channel with probability 1/2) and, with probability 1/2, one blur: motion
 * (k 3..36) half the time, else one of Gaussian (sigma <= 3), average (k 2..7)
 * or median (k 3..11, odd). */
void rdt_image_corrupt(uint8_t *img, int h, int w, rdt_rng *r);

#endif
