/* model/image.c: rotation, pad-to-square, Pillow-exact bicubic resize,
 * normalisation and upstream-style augmentation of camera images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "model/image.h"

/* ================================================================ configuration */

/* SigLIP defaults. */
void rdt_image_cfg_init(rdt_image_cfg *c, int size) {
  memset(c, 0, sizeof *c);
  c->size = size;
  c->rotate180 = 1;
  c->pad_square = 1;
  c->background = 127;   /* int(0.5 * 255) */
  for (int i = 0; i < 3; i++) c->mean[i] = 0.5f, c->std[i] = 0.5f;
}

/* Defaults plus dataset.image_rotate180 and dataset.image_aspect_ratio. */
int rdt_image_cfg_from_config(rdt_image_cfg *c, const rdt_config *cfg, int size) {
  rdt_image_cfg_init(c, size);
  if (size <= 0) return rdt_fail("image size %d: must be positive", size);
  if (!cfg) return 0;
  if (rdt_config_get_bool(cfg, "dataset.image_rotate180", &c->rotate180) < 0)
    return rdt_fail("dataset.image_rotate180: expected true or false");
  const char *ar = NULL;
  int r = rdt_config_get_str(cfg, "dataset.image_aspect_ratio", &ar);
  if (r < 0) return rdt_fail("dataset.image_aspect_ratio: expected a string");
  if (r == 0) {
    if (!strcmp(ar, "pad")) c->pad_square = 1;
    else if (!strcmp(ar, "none")) c->pad_square = 0;
    else return rdt_fail("dataset.image_aspect_ratio: '%s' (expected pad or none)", ar);
  }
  return 0;
}

/* ================================================================ geometric steps */

/* 180-degree turn: pixel (y, x) -> (h-1-y, w-1-x). */
void rdt_image_rotate180(uint8_t *dst, const uint8_t *src, int h, int w) {
  size_t n = (size_t)h * w;
  for (size_t i = 0; i < n; i++) memcpy(dst + (n - 1 - i) * 3, src + i * 3, 3);
}

/* expand2square: centred on a grey square. */
void rdt_image_pad_square(uint8_t *dst, const uint8_t *src, int h, int w, uint8_t bg) {
  int side = h > w ? h : w, oy = (side - h) / 2, ox = (side - w) / 2;
  memset(dst, bg, (size_t)side * side * 3);
  for (int y = 0; y < h; y++)
    memcpy(dst + ((size_t)(y + oy) * side + ox) * 3, src + (size_t)y * w * 3, (size_t)w * 3);
}

/* ---------------------------------------------------------------- Pillow bicubic */

#define PREC_BITS (32 - 8 - 2)   /* Pillow's PRECISION_BITS for 8-bit images */

/* Keys' cubic convolution kernel with a = -0.5 (Pillow bicubic_filter). */
static double bicubic(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/* Per output index: first input index, tap count, and ksize fixed-point taps
 * (Pillow precompute_coeffs + normalize_coeffs_8bpc). */
typedef struct {
  int ksize;
  int *first, *count;
  int32_t *k;
} taps;

static void taps_make(taps *t, int in, int out) {
  double scale = (double)in / out, filterscale = scale < 1 ? 1 : scale;
  double support = 2.0 * filterscale, ss = 1.0 / filterscale;
  t->ksize = (int)ceil(support) * 2 + 1;
  t->first = rdt_malloc(sizeof(int) * out);
  t->count = rdt_malloc(sizeof(int) * out);
  t->k = rdt_calloc((size_t)out * t->ksize, sizeof(int32_t));
  double *w = rdt_malloc(sizeof(double) * t->ksize);
  for (int o = 0; o < out; o++) {
    double center = (o + 0.5) * scale, sum = 0;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    int n = hi - lo;
    for (int x = 0; x < n; x++) sum += w[x] = bicubic((x + lo - center + 0.5) * ss);
    for (int x = 0; x < n; x++) {
      double v = sum != 0 ? w[x] / sum : w[x];
      t->k[(size_t)o * t->ksize + x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PREC_BITS)
                                                       : 0.5 + v * (1 << PREC_BITS));
    }
    t->first[o] = lo;
    t->count[o] = n;
  }
  free(w);
}

static void taps_free(taps *t) {
  free(t->first);
  free(t->count);
  free(t->k);
}

/* Pillow clip8: the accumulated sum (with its rounding half) >> PREC_BITS,
 * clamped.  Sums fit in 32 bits as in Pillow (|taps| sum to about 1.2 x 2^22). */
static uint8_t clip8(int32_t s) {
  if (s < 0) return 0;
  s >>= PREC_BITS;
  return (uint8_t)(s > 255 ? 255 : s);
}

/* Horizontal pass over `rows` rows of width w into width ow. */
static void resample_rows(uint8_t *dst, int ow, const uint8_t *src, int w, int rows, const taps *t) {
  for (int y = 0; y < rows; y++) {
    const uint8_t *s = src + (size_t)y * w * 3;
    uint8_t *d = dst + (size_t)y * ow * 3;
    for (int o = 0; o < ow; o++) {
      const int32_t *k = t->k + (size_t)o * t->ksize;
      const uint8_t *p = s + (size_t)t->first[o] * 3;
      int32_t a0 = 1 << (PREC_BITS - 1), a1 = a0, a2 = a0;
      for (int x = 0; x < t->count[o]; x++, p += 3) a0 += p[0] * k[x], a1 += p[1] * k[x], a2 += p[2] * k[x];
      d[o * 3] = clip8(a0), d[o * 3 + 1] = clip8(a1), d[o * 3 + 2] = clip8(a2);
    }
  }
}

/* Vertical pass: output row o = taps over whole input rows (contiguous). */
static void resample_columns(uint8_t *dst, int oh, const uint8_t *src, int w, const taps *t) {
  size_t n = (size_t)w * 3;
  int32_t *acc = rdt_malloc(sizeof(int32_t) * n);
  for (int o = 0; o < oh; o++) {
    const int32_t *k = t->k + (size_t)o * t->ksize;
    for (size_t i = 0; i < n; i++) acc[i] = 1 << (PREC_BITS - 1);
    for (int y = 0; y < t->count[o]; y++) {
      const uint8_t *row = src + (size_t)(t->first[o] + y) * n;
      int32_t ky = k[y];
      for (size_t i = 0; i < n; i++) acc[i] += row[i] * ky;
    }
    uint8_t *d = dst + (size_t)o * n;
    for (size_t i = 0; i < n; i++) d[i] = clip8(acc[i]);
  }
  free(acc);
}

/* Horizontal pass (only over the rows the vertical pass reads), then vertical. */
void rdt_image_resize_bicubic(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w) {
  if (oh == h && ow == w) {
    memcpy(dst, src, (size_t)h * w * 3);
    return;
  }
  taps tv;
  taps_make(&tv, h, oh);
  int y0 = tv.first[0], y1 = tv.first[oh - 1] + tv.count[oh - 1];
  const uint8_t *mid = src + (size_t)y0 * w * 3;
  uint8_t *tmp = NULL;
  int mw = w;
  if (ow != w) {
    taps th;
    taps_make(&th, w, ow);
    tmp = rdt_malloc((size_t)(y1 - y0) * ow * 3);
    resample_rows(tmp, ow, mid, w, y1 - y0, &th);
    taps_free(&th);
    mid = tmp;
    mw = ow;
  }
  if (oh != h) {
    for (int o = 0; o < oh; o++) tv.first[o] -= y0;
    resample_columns(dst, oh, mid, mw, &tv);
  } else {
    memcpy(dst, mid, (size_t)oh * mw * 3);
  }
  free(tmp);
  taps_free(&tv);
}

/* ================================================================ normalisation */

/* transformers: rescale in float64 then cast to float32; normalise in float32. */
static float norm_value(uint8_t x, float mean, float std) {
  float r = (float)(x * (1.0 / 255.0));
  return (r - mean) / std;
}

void rdt_image_normalize(float *dst, const uint8_t *src, int h, int w, const rdt_image_cfg *c) {
  size_t n = (size_t)h * w;
  for (int ch = 0; ch < 3; ch++)
    for (size_t i = 0; i < n; i++) dst[ch * n + i] = norm_value(src[i * 3 + ch], c->mean[ch], c->std[ch]);
}

void rdt_image_background(const rdt_image_cfg *c, float *dst) {
  size_t n = (size_t)c->size * c->size;
  for (int ch = 0; ch < 3; ch++) {
    float v = norm_value(c->background, c->mean[ch], c->std[ch]);
    for (size_t i = 0; i < n; i++) dst[ch * n + i] = v;
  }
}

int rdt_image_is_background(const rdt_image_cfg *c, const float *img) {
  size_t n = (size_t)c->size * c->size;
  for (int ch = 0; ch < 3; ch++) {
    float v = norm_value(c->background, c->mean[ch], c->std[ch]);
    for (size_t i = 0; i < n; i++)
      if (img[ch * n + i] != v) return 0;
  }
  return 1;
}

/* ================================================================ whole pipeline */

int rdt_image_preprocess(const rdt_image_cfg *c, const uint8_t *src, int h, int w,
                         rdt_rng *aug, float *dst) {
  if (h <= 0 || w <= 0 || c->size <= 0)
    return rdt_fail("image of %dx%d to size %d: bad size", h, w, c->size);
  size_t n = (size_t)h * w * 3;
  int side = c->pad_square ? (h > w ? h : w) : 0;
  uint8_t *work = rdt_malloc(n), *square = NULL, *sized = rdt_malloc((size_t)c->size * c->size * 3);
  if (c->rotate180) rdt_image_rotate180(work, src, h, w);
  else memcpy(work, src, n);
  if (aug && c->augment) rdt_image_augment(work, h, w, aug);
  const uint8_t *cur = work;
  int ch = h, cw = w;
  if (c->pad_square && h != w) {
    square = rdt_malloc((size_t)side * side * 3);
    rdt_image_pad_square(square, work, h, w, c->background);
    cur = square, ch = cw = side;
  }
  rdt_image_resize_bicubic(sized, c->size, c->size, cur, ch, cw);
  rdt_image_normalize(dst, sized, c->size, c->size, c);
  free(work);
  free(square);
  free(sized);
  return 0;
}

/* ================================================================ augmentation helpers */

static double uniform(rdt_rng *r, double lo, double hi) { return lo + (hi - lo) * rdt_rng_uniform(r); }

static uint8_t clamp_u8(double v) { return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v); }

/* PIL Image.blend(a, b, alpha) for 8-bit: a + alpha (b - a) in single
 * precision (alpha is a C float there), truncated, clipped. */
static uint8_t blend(uint8_t a, uint8_t b, double alpha) {
  float t = (float)a + (float)alpha * (float)((int)b - (int)a);
  return clamp_u8(t);
}

/* PIL RGB -> L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16. */
static uint8_t luma(const uint8_t *p) {
  return (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
}

/* ImageEnhance.Brightness: blend with black. */
static void adjust_brightness(uint8_t *img, size_t n, double f) {
  for (size_t i = 0; i < n * 3; i++) img[i] = blend(0, img[i], f);
}

/* ImageEnhance.Contrast: blend with the grey of the rounded mean luma. */
static void adjust_contrast(uint8_t *img, size_t n, double f) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += luma(img + i * 3);
  uint8_t mean = (uint8_t)(int)(sum / (double)n + 0.5);
  for (size_t i = 0; i < n * 3; i++) img[i] = blend(mean, img[i], f);
}

/* ImageEnhance.Color: blend with the pixel's own luma. */
static void adjust_saturation(uint8_t *img, size_t n, double f) {
  for (size_t i = 0; i < n; i++) {
    uint8_t l = luma(img + i * 3);
    for (int c = 0; c < 3; c++) img[i * 3 + c] = blend(l, img[i * 3 + c], f);
  }
}

/* torchvision adjust_hue on PIL: to 8-bit HSV (PIL), h += trunc(f*255) mod 256, back. */
static void adjust_hue(uint8_t *img, size_t n, double f) {
  int shift = (int)(f * 255);
  for (size_t i = 0; i < n; i++) {
    uint8_t *p = img + i * 3;
    int r = p[0], g = p[1], b = p[2];
    int mx = r > g ? (r > b ? r : b) : (g > b ? g : b), mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (mx == mn) continue;   /* grey: hue has no effect */
    double cr = mx - mn, s = cr / mx, hh;
    double rc = (mx - r) / cr, gc = (mx - g) / cr, bc = (mx - b) / cr;
    hh = r == mx ? bc - gc : g == mx ? 2 + rc - bc : 4 + gc - rc;
    hh = fmod(hh / 6.0, 1.0);
    if (hh < 0) hh += 1;
    int h8 = ((int)(hh * 255) + shift) & 255, s8 = (int)(s * 255);
    /* PIL hsv2rgb */
    double H = h8 * 6.0 / 255.0, S = s8 / 255.0, V = mx;
    int k = (int)floor(H);
    double fr = H - k;
    uint8_t pp = clamp_u8(round(V * (1 - S))), q = clamp_u8(round(V * (1 - S * fr)));
    uint8_t t = clamp_u8(round(V * (1 - S * (1 - fr)))), v = (uint8_t)mx;
    uint8_t out[6][3] = {{v, t, pp}, {q, v, pp}, {pp, v, t}, {pp, q, v}, {t, pp, v}, {v, pp, q}};
    memcpy(p, out[k % 6], 3);
  }
}

void rdt_image_color_jitter(uint8_t *img, int h, int w, rdt_rng *r) {
  size_t n = (size_t)h * w;
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; i--) {
    int j = (int)rdt_rng_below(r, (uint64_t)i + 1), t = order[i];
    order[i] = order[j], order[j] = t;
  }
  double bf = uniform(r, 0.7, 1.3), cf = uniform(r, 0.6, 1.4);
  double sf = uniform(r, 0.5, 1.5), hf = uniform(r, -0.03, 0.03);
  for (int i = 0; i < 4; i++) {
    switch (order[i]) {
      case 0: adjust_brightness(img, n, bf); break;
      case 1: adjust_contrast(img, n, cf); break;
      case 2: adjust_saturation(img, n, sf); break;
      default: adjust_hue(img, n, hf); break;
    }
  }
}

/* ---------------------------------------------------------------- noise */

/* Knuth's Poisson sampler (lam <= 12.75 here). */
static int poisson(rdt_rng *r, double lam) {
  double limit = exp(-lam), p = 1;
  int k = -1;
  do {
    k++;
    p *= rdt_rng_uniform(r);
  } while (p > limit);
  return k;
}

/* One noise value of the chosen kind with scale s. */
static double noise_value(rdt_rng *r, int kind, double s) {
  if (kind == 0) return s * rdt_rng_normal(r);
  if (kind == 1) {
    double u = rdt_rng_uniform(r) - 0.5;
    return -s * (u < 0 ? -1 : 1) * log(1 - 2 * fabs(u) + 1e-300);
  }
  int v = poisson(r, s);
  return rdt_rng_uniform(r) < 0.5 ? -v : v;   /* imgaug RandomSign(Poisson) */
}

/* imgaug OneOf(Gaussian, Laplace, Poisson), scale U(0, 0.05*255), per channel half the time. */
static void add_noise(uint8_t *img, size_t n, rdt_rng *r) {
  int kind = (int)rdt_rng_below(r, 3);
  double s = uniform(r, 0, 0.05 * 255);
  int per_channel = rdt_rng_uniform(r) < 0.5;
  for (size_t i = 0; i < n; i++) {
    double v = noise_value(r, kind, s);
    for (int c = 0; c < 3; c++) {
      if (c && per_channel) v = noise_value(r, kind, s);
      img[i * 3 + c] = clamp_u8(round(img[i * 3 + c] + v));
    }
  }
}

/* ---------------------------------------------------------------- blur */

/* OpenCV BORDER_REFLECT_101 index. */
static int reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

/* Correlate img with a kh x kw kernel anchored at (kh/2, kw/2), reflect-101
 * borders, rounded back to 8 bits. */
static void filter2d(uint8_t *img, int h, int w, const double *k, int kh, int kw) {
  uint8_t *src = rdt_malloc((size_t)h * w * 3);
  memcpy(src, img, (size_t)h * w * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double acc[3] = {0, 0, 0};
      for (int i = 0; i < kh; i++) {
        int sy = reflect101(y + i - kh / 2, h);
        for (int j = 0; j < kw; j++) {
          double kv = k[i * kw + j];
          if (kv == 0) continue;
          const uint8_t *p = src + ((size_t)sy * w + reflect101(x + j - kw / 2, w)) * 3;
          for (int c = 0; c < 3; c++) acc[c] += kv * p[c];
        }
      }
      for (int c = 0; c < 3; c++) img[((size_t)y * w + x) * 3 + c] = clamp_u8(round(acc[c]));
    }
  free(src);
}

/* Separable Gaussian, sigma U(0, 3), radius ceil(3 sigma); nothing below 0.05. */
static void gaussian_blur(uint8_t *img, int h, int w, rdt_rng *r) {
  double sigma = uniform(r, 0, 3);
  if (sigma < 0.05) return;
  int rad = (int)ceil(3 * sigma), n = 2 * rad + 1;
  double *k = rdt_malloc(sizeof(double) * n), sum = 0;
  for (int i = 0; i < n; i++) sum += k[i] = exp(-0.5 * (i - rad) * (i - rad) / (sigma * sigma));
  for (int i = 0; i < n; i++) k[i] /= sum;
  filter2d(img, h, w, k, 1, n);
  filter2d(img, h, w, k, n, 1);
  free(k);
}

/* Box filter k x k, k in 2..7. */
static void average_blur(uint8_t *img, int h, int w, rdt_rng *r) {
  int k = 2 + (int)rdt_rng_below(r, 6);
  double *kern = rdt_malloc(sizeof(double) * k);
  for (int i = 0; i < k; i++) kern[i] = 1.0 / k;
  filter2d(img, h, w, kern, 1, k);
  filter2d(img, h, w, kern, k, 1);
  free(kern);
}

/* Median over k x k (k drawn from 3..11, made odd), replicated borders. */
static void median_blur(uint8_t *img, int h, int w, rdt_rng *r) {
  int k = 3 + (int)rdt_rng_below(r, 9);
  if (k % 2 == 0) k++;
  int rad = k / 2, half = k * k / 2;
  uint8_t *src = rdt_malloc((size_t)h * w * 3);
  memcpy(src, img, (size_t)h * w * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        int hist[256] = {0};
        for (int i = -rad; i <= rad; i++) {
          int sy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
          for (int j = -rad; j <= rad; j++) {
            int sx = x + j < 0 ? 0 : x + j >= w ? w - 1 : x + j;
            hist[src[((size_t)sy * w + sx) * 3 + c]]++;
          }
        }
        int v = 0, seen = hist[0];
        while (seen <= half) seen += hist[++v];
        img[((size_t)y * w + x) * 3 + c] = (uint8_t)v;
      }
  free(src);
}

/* imgaug MotionBlur: a k x k kernel holding a line through the centre with
 * weights from d to 1-d (direction d in [-1, 1]), turned by an angle in
 * [0, 360), normalised to sum 1. */
static void motion_blur(uint8_t *img, int h, int w, rdt_rng *r) {
  int k = 3 + (int)rdt_rng_below(r, 34);
  double angle = uniform(r, 0, 2 * M_PI), d = uniform(r, -1, 1), c = (k - 1) / 2.0;
  double *kern = rdt_calloc((size_t)k * k, sizeof(double)), sum = 0;
  for (int i = 0; i < k; i++) {
    double wgt = d + (1 - 2 * d) * i / (k - 1), t = i - c;
    double x = c - t * sin(angle), y = c + t * cos(angle);   /* the column x = c, turned */
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double fx = x - x0, fy = y - y0;
    for (int dy = 0; dy < 2; dy++)
      for (int dx = 0; dx < 2; dx++) {
        int xx = x0 + dx, yy = y0 + dy;
        if (xx < 0 || yy < 0 || xx >= k || yy >= k) continue;
        kern[yy * k + xx] += wgt * (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
      }
  }
  for (int i = 0; i < k * k; i++) sum += kern[i];
  if (fabs(sum) > 1e-6) {
    for (int i = 0; i < k * k; i++) kern[i] /= sum;
    filter2d(img, h, w, kern, k, k);
  }
  free(kern);
}

/* SomeOf((0, 1), [OneOf(Gaussian, average, median), motion]). */
static void maybe_blur(uint8_t *img, int h, int w, rdt_rng *r) {
  if (rdt_rng_uniform(r) < 0.5) return;
  if (rdt_rng_uniform(r) < 0.5) {
    motion_blur(img, h, w, r);
    return;
  }
  switch (rdt_rng_below(r, 3)) {
    case 0: gaussian_blur(img, h, w, r); break;
    case 1: average_blur(img, h, w, r); break;
    default: median_blur(img, h, w, r); break;
  }
}

void rdt_image_corrupt(uint8_t *img, int h, int w, rdt_rng *r) {
  size_t n = (size_t)h * w;
  if (rdt_rng_uniform(r) < 0.5) {   /* random_order=True over the two stages */
    add_noise(img, n, r);
    maybe_blur(img, h, w, r);
  } else {
    maybe_blur(img, h, w, r);
    add_noise(img, n, r);
  }
}

void rdt_image_augment(uint8_t *img, int h, int w, rdt_rng *r) {
  if (rdt_rng_uniform(r) < 0.5) return;
  int kind = (int)rdt_rng_below(r, 3);   /* 0 corruption only, 1 colour only, 2 both */
  if (kind != 0) rdt_image_color_jitter(img, h, w, r);
  if (kind != 1) rdt_image_corrupt(img, h, w, r);
}
