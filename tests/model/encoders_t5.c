/* tests/model/encoders_t5.c: the T5 v1.1 encoder on small random-weight configs
 * against a double-precision reference written here from the definitions in
 * Hugging Face modeling_t5.py, and the relative-position buckets against a
 * table worked out by hand.
 *
 * The hand derivation of the buckets is in encoders_ref.h (t5_hand_bucket).
 */
#include "test.h"

#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "model/t5.h"
#include "encoders_ref.h"

static k_backend *cpu;
static char base_dir[4096];

/* A random T5 encoder checkpoint in a fresh folder; returns the folder. */
static const char *make_model(t5_ref *r, wfile *f, int layers, rdt_dtype dtype, int zero, uint64_t seed) {
  static int count;
  static char dir[4200];
  snprintf(dir, sizeof dir, "%s/m%d", base_dir, count++);
  CHECK(rdt_mkdirs(dir) == 0);
  CHECK(t5_ref_write(r, f, dir, layers, 64, dtype, zero, seed) == 0);
  return dir;
}

/* B sequences of T random ids; sequence b > 0 padded after T - 7b tokens. */
static void random_batch(const t5_ref *r, int B, int T, int32_t *ids, uint8_t *mask, uint64_t seed) {
  rdt_rng g;
  rdt_rng_seed(&g, seed, 2);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      int real = t < T - 7 * b;
      ids[b * T + t] = real ? (int32_t)rdt_rng_below(&g, (uint64_t)r->V) : 0;
      mask[b * T + t] = (uint8_t)real;
    }
}

/* Encode a batch with the model in dir and compare with the reference; returns the rel. error. */
static double run_case(const char *dir, const t5_ref *r, int B, int T, enc_mode mode, int use_mask,
                       float *keep_out) {
  t5 *m = t5_load(cpu, dir, mode);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  if (!m) return INFINITY;
  CHECK(t5_streamed(m) == (mode == ENC_STREAM));
  CHECK(t5_tokenizer(m) == NULL);   /* no spiece.model in the folder */
  int32_t *ids = malloc((size_t)B * T * sizeof *ids);
  uint8_t *mask = malloc((size_t)B * T);
  random_batch(r, B, T, ids, mask, (uint64_t)T * 31 + (uint64_t)B);
  size_t len = (size_t)B * T * r->d;
  float *out = malloc(len * sizeof *out);
  double *want = malloc(len * sizeof *want);
  CHECK(t5_encode(m, ids, use_mask ? mask : NULL, B, T, out) == 0);
  t5_ref_forward(r, ids, use_mask ? mask : NULL, B, T, want);
  double err = rel_err_f(out, want, len);
  if (keep_out) memcpy(keep_out, out, len * sizeof *out);
  free(ids), free(mask), free(out), free(want);
  t5_free(m);
  return err;
}

/* ---------------------------------------------------------------- relative positions */

/* The bucket of every distance in -200..200 against the hand table; a few
 * spelled out. */
static void t_bucket_table(void) {
  for (int rel = -200; rel <= 200; rel++)
    CHECK_MSG(t5_bucket(rel, 32, 128) == t5_hand_bucket(rel), "relative position %d: %d, hand %d", rel,
              t5_bucket(rel, 32, 128), t5_hand_bucket(rel));
  static const int cases[][2] = {{0, 0},    {-1, 1},   {1, 17},   {-7, 7},   {7, 23},    {-8, 8},
                                 {-11, 8},  {-12, 9},  {15, 25},  {16, 26},  {-22, 10},  {-23, 11},
                                 {31, 27},  {32, 28},  {-45, 12}, {-46, 13}, {63, 29},   {64, 30},
                                 {-90, 14}, {-91, 15}, {127, 31}, {128, 31}, {-200, 15}, {200, 31}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    CHECK_MSG(t5_bucket(cases[i][0], 32, 128) == cases[i][1], "relative position %d", cases[i][0]);
}

/* The bias matrix at hand-worked (head, query, key) positions, with a table
 * whose entry (bucket, head) is 100 bucket + head. */
static void t_position_bias(void) {
  const int H = 3, L = 130;
  float table[32 * 3];
  for (int b = 0; b < 32; b++)
    for (int h = 0; h < H; h++) table[b * H + h] = (float)(100 * b + h);
  float *bias = malloc((size_t)H * L * L * sizeof *bias);
  t5_position_bias(table, H, 32, 128, L, bias);
#define BIAS(h, i, j) bias[((size_t)(h) * L + (i)) * L + (j)]
  CHECK(BIAS(0, 0, 0) == 0.0f);            /* same position: bucket 0 */
  CHECK(BIAS(1, 0, 3) == 1901.0f);         /* key 3 after: 16 + 3 */
  CHECK(BIAS(2, 3, 0) == 302.0f);          /* key 3 before: 3 */
  CHECK(BIAS(0, 5, 21) == 2600.0f);        /* +16: 16 + 10 */
  CHECK(BIAS(1, 40, 10) == 1101.0f);       /* -30: 11 */
  CHECK(BIAS(2, 0, 129) == 3102.0f);       /* +129: clamped, 16 + 15 */
  CHECK(BIAS(0, 129, 0) == 1500.0f);       /* -129: 15 */
  CHECK(BIAS(1, 100, 36) == 1401.0f);      /* -64: 14 */
  CHECK(BIAS(2, 64, 127) == 2902.0f);      /* +63: 16 + 13 */
#undef BIAS
  free(bias);
}

/* ---------------------------------------------------------------- layers */

/* A random F32 encoder of `layers` blocks (sublayers silenced as `zero` says)
 * on B x T ids, padded and masked or not, against the reference. */
static void check_encoder(int layers, int zero, uint64_t seed, int B, int T, int use_mask, double tol) {
  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, layers, RDT_F32, zero, seed);
  double err = run_case(dir, &r, B, T, ENC_RESIDENT, use_mask, NULL);
  CHECK_MSG(err < tol, "%d blocks, %d x %d, mask %d: rel err %g", layers, B, T, use_mask, err);
  wf_free(&f);
}

/* Both sublayers silenced: final T5 LayerNorm of the embedding rows. */
static void t_embedding_t5_layernorm(void) { check_encoder(1, ZERO_BOTH, 21, 2, 9, 1, 1e-5); }

/* The feed-forward silenced: attention without scaling, with the relative
 * bias (distances up to 39, buckets 0..12 and 16..28), with and without a
 * padding mask. */
static void t_attention_relative_bias(void) {
  check_encoder(1, ZERO_FFN_OUT, 22, 2, 40, 1, 1e-5);
  check_encoder(1, ZERO_FFN_OUT, 22, 1, 40, 0, 1e-5);
}

/* The attention silenced: T5 LayerNorm, gated GELU-tanh feed-forward. */
static void t_gated_gelu_ffn(void) { check_encoder(1, ZERO_ATTN_OUT, 23, 2, 12, 1, 1e-5); }

/* Three blocks sharing block 0's bias, batch of three with padding. */
static void t_full_encoder(void) { check_encoder(3, KEEP_ALL, 24, 3, 33, 1, 2e-5); }

/* bf16 weights: streamed layer by layer and resident agree exactly. */
static void t_bf16_streamed(void) {
  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 2, RDT_BF16, KEEP_ALL, 25);
  size_t len = (size_t)2 * 20 * r.d;
  float *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b);
  double e1 = run_case(dir, &r, 2, 20, ENC_RESIDENT, 1, a);
  double e2 = run_case(dir, &r, 2, 20, ENC_STREAM, 1, b);
  CHECK_MSG(e1 < 2e-5 && e2 < 2e-5, "rel err %g %g", e1, e2);
  CHECK(memcmp(a, b, len * sizeof *a) == 0);
  free(a), free(b);
  wf_free(&f);
}

/* Config parsing, unsupported variants, bad ids, missing tensors. */
static void t_config_and_errors(void) {
  t5_config c;
  const char *xxl = "{\"d_model\": 4096, \"d_kv\": 64, \"d_ff\": 10240, \"num_layers\": 24, \"num_heads\": 64,"
                    " \"feed_forward_proj\": \"gated-gelu\", \"vocab_size\": 32128}";
  rdt_json *j = rdt_json_parse(xxl, strlen(xxl));
  CHECK(j && t5_config_from_json(j, &c) == 0);
  CHECK(c.d_model == 4096 && c.num_heads * c.d_kv == 4096 && c.num_buckets == 32 && c.max_distance == 128 &&
        c.act == T5_GATED_GELU && fabsf(c.eps - 1e-6f) < 1e-12f);
  rdt_json_free(j);
  const char *relu = "{\"d_model\": 512}";   /* original T5: feed_forward_proj defaults to relu */
  j = rdt_json_parse(relu, strlen(relu));
  CHECK(j && t5_config_from_json(j, &c) < 0 && strstr(rdt_error(), "relu"));
  rdt_json_free(j);

  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 1, RDT_F32, KEEP_ALL, 26);
  t5 *m = t5_load(cpu, dir, ENC_RESIDENT);
  CHECK(m != NULL);
  if (m) {
    int32_t ids[2] = {3, 64};   /* 64 is outside the vocabulary of 64 */
    float out[2 * 32];
    CHECK(t5_encode(m, ids, NULL, 1, 2, out) < 0 && strstr(rdt_error(), "64"));
    float *emb;
    int len;
    CHECK(t5_encode_text(m, "hello", 16, &emb, &len) < 0 && strstr(rdt_error(), "spiece.model"));
    t5_free(m);
  }
  rdt_st *st = rdt_st_open(dir);
  t5_config wrong = {32, 8, 48, 2, 4, 32, 128, 64, 1e-6f, T5_GATED_GELU};   /* one block more */
  CHECK(st && t5_new(cpu, &wrong, st, ENC_RESIDENT) == NULL);
  CHECK_MSG(strstr(rdt_error(), "encoder.block.1.layer.0.layer_norm.weight") != NULL, "%s", rdt_error());
  rdt_st_close(st);
  wf_free(&f);
}

/* A random folder at a given config loads back with that config and encodes finitely. */
static void t_write_random(void) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/random", base_dir);
  t5_config c = {24, 6, 40, 2, 4, 16, 64, 50, 1e-5f, T5_GATED_SILU};
  CHECK(t5_write_random(&c, dir, RDT_BF16, 3) == 0);
  t5 *m = t5_load(cpu, dir, ENC_STREAM);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  if (!m) return;
  const t5_config *g = t5_cfg(m);
  CHECK(g->d_model == 24 && g->d_kv == 6 && g->d_ff == 40 && g->num_layers == 2 && g->num_heads == 4 &&
        g->num_buckets == 16 && g->max_distance == 64 && g->vocab_size == 50 && g->act == T5_GATED_SILU);
  int32_t ids[7] = {0, 5, 49, 3, 3, 1, 0};
  float out[7 * 24];
  CHECK(t5_encode(m, ids, NULL, 1, 7, out) == 0);
  int finite = 1;
  for (int i = 0; i < 7 * 24; i++) finite &= isfinite(out[i]) != 0;
  CHECK(finite);
  t5_free(m);
}

int main(void) {
  cpu = k_open("cpu", 1);
  if (!cpu) {
    fprintf(stderr, "cpu backend: %s\n", rdt_error());
    return 1;
  }
  snprintf(base_dir, sizeof base_dir, "%s", test_tmpdir("t5"));
  RUN(t_bucket_table);
  RUN(t_position_bias);
  RUN(t_embedding_t5_layernorm);
  RUN(t_attention_relative_bias);
  RUN(t_gated_gelu_ffn);
  RUN(t_full_encoder);
  RUN(t_bf16_streamed);
  RUN(t_config_and_errors);
  RUN(t_write_random);
  k_close(cpu);
  if (!test_failures_) rdt_rmtree(base_dir);
  return test_done();
}
