/* Test-size encoders: config keys, shapes, determinism from the seed,
 * linearity and locality of the patch projection, hashed words with EOS. */
#include <stdint.h>
#include "core/error.h"
#include "core/rng.h"
#include "model/tiny_encoders.h"
#include "test.h"

static rdt_tiny_cfg small_cfg(uint64_t seed) {
  rdt_tiny_cfg c = {.image_size = 8, .patch_size = 4, .img_token_dim = 5, .lang_token_dim = 6,
                    .vocab_size = 64, .max_length = 6, .seed = seed};
  return c;
}

static void t_config(void) {
  const char *yaml =
      "model:\n  img_token_dim: 16\n  lang_token_dim: 24\n  img_tokens_per_image: 16\n"
      "  tiny_encoders:\n    image_size: 32\n    patch_size: 8\n    vocab_size: 100\n    seed: 5\n"
      "dataset:\n  tokenizer_max_length: 12\n";
  rdt_config *c = rdt_config_parse(yaml, strlen(yaml), "tiny.yaml");
  rdt_tiny_cfg t;
  CHECK(c != NULL);
  CHECK(rdt_tiny_cfg_from_config(c, &t) == 1);
  CHECK(t.image_size == 32 && t.patch_size == 8 && t.img_token_dim == 16 && t.lang_token_dim == 24);
  CHECK(t.vocab_size == 100 && t.max_length == 12 && t.seed == 5);
  CHECK(rdt_config_set(c, "model.img_tokens_per_image", "15") == 0);
  CHECK(rdt_tiny_cfg_from_config(c, &t) < 0);
  CHECK(strstr(rdt_error(), "img_tokens_per_image") != NULL);
  CHECK(rdt_config_set(c, "model.img_tokens_per_image", "16") == 0);
  CHECK(rdt_config_set(c, "model.tiny_encoders.patch_size", "7") == 0);
  CHECK(rdt_tiny_cfg_from_config(c, &t) < 0);
  rdt_config_free(c);
  rdt_config *empty = rdt_config_new();
  CHECK(rdt_tiny_cfg_from_config(empty, &t) == 0);
  rdt_config_free(empty);
}

/* tokens: (S/p)^2 per image; tok(0) = b; tok(x + y) = tok(x) + tok(y) - b;
 * a pixel changes only its own patch's token; same seed, same tokens. */
static void t_vision(void) {
  rdt_tiny_cfg c = small_cfg(9);
  rdt_tiny_vision *v = rdt_tiny_vision_new(&c), *v2 = rdt_tiny_vision_new(&c);
  c.seed = 10;
  rdt_tiny_vision *v3 = rdt_tiny_vision_new(&c);
  enum { S = 8, N = 3 * S * S, T = 4, D = 5 };
  CHECK(rdt_tiny_vision_tokens(v) == T);
  float x[2][N], z[N] = {0}, sum[N], tx[2][T * D], tz[T * D], ts[T * D], t2[T * D], t3[T * D];
  rdt_rng r;
  rdt_rng_seed(&r, 1, 0);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < N; i++) x[k][i] = (float)rdt_rng_normal(&r);
  for (int i = 0; i < N; i++) sum[i] = x[0][i] + x[1][i];
  rdt_tiny_vision_encode(v, x[0], 2, tx[0]);   /* two images in one call */
  rdt_tiny_vision_encode(v, z, 1, tz);
  rdt_tiny_vision_encode(v, sum, 1, ts);
  for (int i = 0; i < T * D; i++) CHECK_NEAR(ts[i], tx[0][i] + tx[1][i] - tz[i], 1e-4);
  rdt_tiny_vision_encode(v2, x[0], 1, t2);
  rdt_tiny_vision_encode(v3, x[0], 1, t3);
  CHECK(!memcmp(t2, tx[0], sizeof t2));
  CHECK(memcmp(t3, tx[0], sizeof t3) != 0);
  /* pixel (channel 1, row 5, column 2) lies in patch (1, 0) = token 2 */
  memcpy(sum, x[0], sizeof sum);
  sum[(1 * S + 5) * S + 2] += 1;
  rdt_tiny_vision_encode(v, sum, 1, ts);
  for (int t = 0; t < T; t++)
    for (int d = 0; d < D; d++) {
      float diff = ts[t * D + d] - tx[0][t * D + d];
      if (t == 2) CHECK(diff != 0);
      else CHECK(diff == 0);
    }
  rdt_tiny_vision_free(v);
  rdt_tiny_vision_free(v2);
  rdt_tiny_vision_free(v3);
}

/* Words are case-folded, punctuation separates, EOS ends; rows are the seeded table's. */
static void t_text(void) {
  rdt_tiny_cfg c = small_cfg(9);
  rdt_tiny_text *t = rdt_tiny_text_new(&c);
  enum { L = 6, D = 6 };
  float a[L * D], b[L * D], e[L * D];
  uint8_t ma[L], mb[L], me[L];
  CHECK(rdt_tiny_text_encode(t, "Put the bowl", a, ma) == 4);
  CHECK(rdt_tiny_text_encode(t, "  put, THE bowl.", b, mb) == 4);
  CHECK(!memcmp(a, b, sizeof a) && !memcmp(ma, mb, sizeof ma));
  const uint8_t want_mask[L] = {1, 1, 1, 1, 0, 0};
  CHECK(!memcmp(ma, want_mask, L));
  for (int i = 4 * D; i < L * D; i++) CHECK(a[i] == 0);
  CHECK(rdt_tiny_text_encode(t, "", e, me) == 1);   /* EOS only */
  CHECK(me[0] == 1 && me[1] == 0);
  CHECK(!memcmp(e, a + 3 * D, D * sizeof(float)));   /* the same EOS row ends every text */
  CHECK(memcmp(a, a + D, D * sizeof(float)) != 0);    /* different words, different rows */
  CHECK(rdt_tiny_text_encode(t, "the the", b, mb) == 3);
  CHECK(!memcmp(b, b + D, D * sizeof(float)));        /* same word, same row */
  CHECK(!memcmp(b, a + D, D * sizeof(float)));
  CHECK(rdt_tiny_text_encode(t, "one two three four five six", b, mb) < 0);
  CHECK(strstr(rdt_error(), "one two") != NULL);
  CHECK(rdt_tiny_text_encode(t, "one two three four five", b, mb) == 6);
  rdt_tiny_text *t2 = rdt_tiny_text_new(&c);
  CHECK(rdt_tiny_text_encode(t2, "Put the bowl", b, mb) == 4);
  CHECK(!memcmp(a, b, sizeof a));
  rdt_tiny_text_free(t);
  rdt_tiny_text_free(t2);
}

int main(void) {
  RUN(t_config);
  RUN(t_vision);
  RUN(t_text);
  return test_done();
}
