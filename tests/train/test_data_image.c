/* Image preprocessing: rotation, padding, Pillow bicubic (hand-worked and
 * Pillow-generated references), normalisation, background, augmentation. */
#include <stdint.h>
#include "model/image.h"
#include "test.h"

/* The test pattern the Pillow references were made from. */
static void pattern(uint8_t *a, int h, int w) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) a[(y * w + x) * 3 + c] = (uint8_t)((y * 67 + x * 29 + c * 101 + x * y * 13) % 256);
}

static void t_rotate(void) {
  uint8_t src[2 * 3 * 3], dst[2 * 3 * 3];
  for (int i = 0; i < 18; i++) src[i] = (uint8_t)i;
  rdt_image_rotate180(dst, src, 2, 3);
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 3; x++)
      for (int c = 0; c < 3; c++) CHECK(dst[(y * 3 + x) * 3 + c] == src[((1 - y) * 3 + (2 - x)) * 3 + c]);
}

/* expand2square: 2 rows x 4 columns go to rows 1..2 of a 4x4 grey square;
 * 3 rows x 2 columns to columns 0..1 of a 3x3 ((3-2)//2 = 0). */
static void t_pad(void) {
  uint8_t src[4 * 4 * 3], dst[4 * 4 * 3];
  for (int i = 0; i < 24; i++) src[i] = (uint8_t)(200 + i);
  rdt_image_pad_square(dst, src, 2, 4, 127);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      for (int c = 0; c < 3; c++) {
        int v = dst[(y * 4 + x) * 3 + c];
        if (y == 1 || y == 2) CHECK(v == src[((y - 1) * 4 + x) * 3 + c]);
        else CHECK(v == 127);
      }
  rdt_image_pad_square(dst, src, 3, 2, 127);
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 3; x++)
      for (int c = 0; c < 3; c++) {
        int v = dst[(y * 3 + x) * 3 + c];
        if (x < 2) CHECK(v == src[(y * 2 + x) * 3 + c]);
        else CHECK(v == 127);
      }
}

/* Keys' kernel with a = -0.5, worked by hand at the offsets a 2 -> 4 upscale
 * uses (scale 1/2, centres 0.25 and 0.75, support 2):
 *   k(0.25) = 0.8671875, k(1.25) = -0.0703125, k(0.75) = 0.2265625.
 * Output 0 reads inputs 0,1 at distances 0.25, 1.25; output 1 at 0.25, 0.75;
 * outputs 2, 3 mirror them.  Each row is normalised to sum 1. */
static const double W4[4][2] = {
  {0.8671875 / 0.796875, -0.0703125 / 0.796875},
  {0.8671875 / 1.09375, 0.2265625 / 1.09375},
  {0.2265625 / 1.09375, 0.8671875 / 1.09375},
  {-0.0703125 / 0.796875, 0.8671875 / 0.796875},
};

/* One output value as Pillow forms it: each weight rounded to 22 fractional
 * bits (half away from zero), the sum rounded half up, clamped to 0..255.
 * (In element 3 below the exact value is 36.5; the rounded weights give 36.) */
static uint8_t tap2(const double w[2], int a, int b) {
  long long k0 = llround(w[0] * (1 << 22)), k1 = llround(w[1] * (1 << 22));
  long long s = (1 << 21) + k0 * a + k1 * b;
  if (s < 0) return 0;
  s >>= 22;
  return (uint8_t)(s > 255 ? 255 : s);
}

static void t_bicubic_hand(void) {
  const uint8_t src[2 * 2 * 3] = {0, 10, 255, 200, 100, 0, 50, 255, 30, 255, 0, 128};
  uint8_t mid[2 * 4 * 3], want[4 * 4 * 3], got[4 * 4 * 3];
  /* horizontal pass to 8 bits, then vertical (Pillow's order) */
  for (int y = 0; y < 2; y++)
    for (int o = 0; o < 4; o++)
      for (int c = 0; c < 3; c++)
        mid[(y * 4 + o) * 3 + c] = tap2(W4[o], src[(y * 2) * 3 + c], src[(y * 2 + 1) * 3 + c]);
  for (int o = 0; o < 4; o++)
    for (int x = 0; x < 4; x++)
      for (int c = 0; c < 3; c++)
        want[(o * 4 + x) * 3 + c] = tap2(W4[o], mid[x * 3 + c], mid[(4 + x) * 3 + c]);
  rdt_image_resize_bicubic(got, 4, 4, src, 2, 2);
  for (int i = 0; i < 48; i++) CHECK_MSG(got[i] == want[i], "element %d: %d vs hand %d", i, got[i], want[i]);
  /* Pillow 13 on the same input (Image.resize((4, 4), BICUBIC)) */
  static const uint8_t pil[48] = {0, 0, 255, 36, 14, 215, 154, 83, 48, 215, 118, 0, 7, 54, 207, 52,
                                  65, 171, 170, 75, 64, 226, 86, 28, 25, 203, 69, 81, 166, 81, 202, 59,
                                  97, 247, 22, 109, 35, 255, 0, 97, 217, 37, 218, 51, 113, 255, 0, 149};
  for (int i = 0; i < 48; i++) CHECK_MSG(got[i] == pil[i], "element %d: %d vs Pillow %d", i, got[i], pil[i]);
}

/* Pillow 13 Image.fromarray(pattern).resize((ow, oh), Image.BICUBIC): an
 * upscale 5x5 -> 9x9 and a shrink 17x13 -> 5x7 (support scaled by 17/5, 13/7). */
static void t_bicubic_pillow(void) {
  static const uint8_t up[9 * 9 * 3] = {
    0, 94, 215, 1, 102, 234, 19, 120, 254, 35, 135, 139, 50, 151, 0, 66, 179, 0, 82, 205, 28, 100, 222, 46, 108, 230, 54,
    15, 114, 145, 24, 127, 162, 44, 153, 184, 62, 178, 115, 80, 190, 26, 103, 163, 33, 126, 144, 63, 146, 165, 89, 156, 177, 102,
    56, 156, 22, 69, 173, 35, 94, 206, 61, 117, 244, 75, 140, 252, 86, 168, 134, 106, 197, 39, 132, 222, 67, 165, 235, 88, 181,
    92, 218, 22, 112, 189, 35, 152, 139, 66, 188, 157, 108, 206, 183, 152, 162, 116, 189, 130, 68, 196, 162, 108, 146, 181, 134,
    117, 130, 251, 76, 147, 178, 93, 182, 47, 128, 227, 41, 159, 244, 89, 190, 129, 120, 238, 39, 151, 232, 76, 186, 101, 102,
    203, 28, 197, 131, 111, 159, 107, 142, 93, 66, 195, 111, 90, 155, 150, 144, 96, 113, 199, 129, 91, 216, 157, 144, 150, 128,
    174, 111, 110, 203, 36, 151, 138, 63, 175, 23, 115, 209, 25, 147, 128, 81, 173, 27, 128, 228, 53, 169, 232, 104, 201, 116,
    144, 216, 51, 163, 66, 81, 206, 64, 115, 168, 62, 172, 99, 94, 130, 78, 143, 67, 89, 204, 106, 140, 225, 148, 162, 155, 146,
    98, 113, 144, 60, 0, 111, 235, 23, 147, 162, 88, 202, 35, 137, 118, 51, 182, 6, 128, 247, 35, 194, 252, 100, 198, 125, 165,
    71, 53, 199, 0};
  static const uint8_t down[5 * 7 * 3] = {
    91, 141, 120, 134, 150, 115, 134, 159, 131, 120, 123, 110, 133, 136, 117, 127, 108, 150, 106, 123, 123, 119, 125, 121,
    136, 123, 122, 134, 110, 119, 124, 123, 141, 139, 139, 105, 144, 121, 112, 162, 130, 131, 139, 111, 117, 121, 117, 125,
    106, 84, 158, 120, 98, 125, 136, 149, 114, 121, 129, 129, 124, 141, 131, 135, 129, 130, 143, 153, 106, 106, 135, 126,
    136, 134, 120, 150, 154, 126, 126, 139, 134, 134, 107, 149, 131, 113, 164, 127, 123, 145, 163, 135, 119, 112, 88, 145,
    133, 146, 123, 142, 120, 132, 141, 159, 88};
  uint8_t src[17 * 13 * 3], got[9 * 9 * 3];
  int bad = 0;
  pattern(src, 5, 5);
  rdt_image_resize_bicubic(got, 9, 9, src, 5, 5);
  for (int i = 0; i < 243; i++) bad += got[i] != up[i];
  CHECK_MSG(bad == 0, "%d of 243 upscaled values differ from Pillow", bad);
  pattern(src, 17, 13);
  rdt_image_resize_bicubic(got, 5, 7, src, 17, 13);
  bad = 0;
  for (int i = 0; i < 105; i++) bad += got[i] != down[i];
  CHECK_MSG(bad == 0, "%d of 105 downscaled values differ from Pillow", bad);
}

/* x/255 then (x - 0.5)/0.5, channel-major. */
static void t_normalize(void) {
  rdt_image_cfg c;
  rdt_image_cfg_init(&c, 2);
  const uint8_t src[2 * 2 * 3] = {0, 255, 127, 51, 102, 153, 204, 1, 2, 3, 4, 5};
  float dst[12];
  rdt_image_normalize(dst, src, 2, 2, &c);
  for (int ch = 0; ch < 3; ch++)
    for (int i = 0; i < 4; i++) CHECK_NEAR(dst[ch * 4 + i], src[i * 3 + ch] / 255.0 * 2 - 1, 1e-6);
  CHECK_NEAR(dst[0], -1, 0);
  CHECK_NEAR(dst[4], 1, 0);
  CHECK_NEAR(dst[8], -1.0 / 255, 1e-7);
}

/* The whole pipeline on a 2x4 image to size 4: rotate, pad rows 1..2, no resize. */
static void t_pipeline(void) {
  rdt_image_cfg c;
  rdt_image_cfg_init(&c, 4);
  uint8_t src[2 * 4 * 3];
  float out[3 * 16], bg[3 * 16];
  for (int i = 0; i < 24; i++) src[i] = (uint8_t)(10 * i);
  CHECK(rdt_image_preprocess(&c, src, 2, 4, NULL, out) == 0);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      for (int ch = 0; ch < 3; ch++) {
        /* rotated: row y-1 of the padded block is source row 1-(y-1), column 3-x */
        int v = (y == 1 || y == 2) ? src[((2 - y) * 4 + (3 - x)) * 3 + ch] : 127;
        CHECK_NEAR(out[ch * 16 + y * 4 + x], v / 255.0 * 2 - 1, 1e-6);
      }
  c.rotate180 = 0;
  CHECK(rdt_image_preprocess(&c, src, 2, 4, NULL, out) == 0);
  CHECK_NEAR(out[4 * 1 + 0], src[0] / 255.0 * 2 - 1, 1e-6);   /* (1, 0) = source (0, 0) */
  rdt_image_background(&c, bg);
  CHECK(rdt_image_is_background(&c, bg));
  CHECK(!rdt_image_is_background(&c, out));
  for (int i = 0; i < 48; i++) CHECK_NEAR(bg[i], (127 / 255.0 - 0.5) / 0.5, 1e-7);
  CHECK(rdt_image_preprocess(&c, src, 0, 4, NULL, out) < 0);
}

/* Augmentation: deterministic per rng state, about half the images untouched,
 * nothing without an rng or with augment off. */
static void t_augment(void) {
  enum { H = 24, W = 24, N = 200 };
  uint8_t base[H * W * 3], a[H * W * 3], b[H * W * 3];
  rdt_rng r1, r2;
  int same = 0, untouched = 0;
  pattern(base, H, W);
  rdt_rng_seed(&r1, 7, 0);
  rdt_rng_seed(&r2, 7, 0);
  for (int i = 0; i < N; i++) {
    memcpy(a, base, sizeof a);
    memcpy(b, base, sizeof b);
    rdt_image_augment(a, H, W, &r1);
    rdt_image_augment(b, H, W, &r2);
    same += !memcmp(a, b, sizeof a);
    untouched += !memcmp(a, base, sizeof a);
  }
  CHECK(same == N);
  CHECK_MSG(untouched > 70 && untouched < 130, "%d of %d untouched (expected about half)", untouched, N);
  rdt_rng_seed(&r2, 8, 0);
  int differ = 0;
  for (int i = 0; i < 20; i++) {
    memcpy(a, base, sizeof a);
    memcpy(b, base, sizeof b);
    rdt_image_color_jitter(a, H, W, &r1);
    rdt_image_color_jitter(b, H, W, &r2);
    differ += memcmp(a, b, sizeof a) != 0;
  }
  CHECK(differ >= 18);
  for (int i = 0; i < 40; i++) {   /* every corruption branch runs without leaving the image size */
    memcpy(a, base, sizeof a);
    rdt_image_corrupt(a, H, W, &r1);
  }
  rdt_image_cfg c;
  float x[3 * 16], y[3 * 16];
  rdt_image_cfg_init(&c, 4);
  CHECK(rdt_image_preprocess(&c, base, 4, 4, &r1, x) == 0);   /* augment off */
  CHECK(rdt_image_preprocess(&c, base, 4, 4, NULL, y) == 0);
  CHECK(!memcmp(x, y, sizeof x));
}

int main(void) {
  RUN(t_rotate);
  RUN(t_pad);
  RUN(t_bicubic_hand);
  RUN(t_bicubic_pillow);
  RUN(t_normalize);
  RUN(t_pipeline);
  RUN(t_augment);
  return test_done();
}
