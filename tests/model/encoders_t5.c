/* tests/model/encoders_t5.c: the T5 v1.1 encoder on small random-weight configs
 * against a double-precision reference written here from the definitions in
 * Hugging Face modeling_t5.py, and the relative-position buckets against a
 * table worked out by hand.
 *
 * Hand derivation of the buckets (32 buckets, max distance 128, bidirectional):
 * 16 buckets per direction, keys after the query (j - i > 0) add 16.  With
 * n = |j - i|: n < 8 is its own bucket; otherwise bucket
 * 8 + floor(8 ln(n/8) / ln(16)) = 8 + floor(2 log2(n/8)), clamped to 15.
 * 2 log2(n/8) reaches k at n = 8 * 2^(k/2): 11.31, 16, 22.63, 32, 45.25, 64,
 * 90.51, 128, so
 *   n:       0..7   8..11  12..15  16..22  23..31  32..45  46..63  64..90  91..
 *   bucket:  n      8      9       10      11      12      13      14      15
 */
#include "test.h"

#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "model/t5.h"
#include "encoders_ref.h"

enum { MAXL = 3 };

/* The hand table above. */
static int hand_bucket(int rel) {
  static const int first[] = {8, 12, 16, 23, 32, 46, 64, 91};   /* first n of buckets 8..15 */
  int n = rel < 0 ? -rel : rel, bucket = n;
  if (n >= 8) {
    bucket = 8;
    for (int k = 1; k < 8; k++)
      if (n >= first[k]) bucket = 8 + k;
  }
  return bucket + (rel > 0 ? 16 : 0);
}

typedef struct {
  int d, dkv, H, ff, V, L;
  double eps;
  double *embed, *rel, *final_ln;
  struct {
    double *ln0, *ln1, *q, *k, *v, *o, *wi0, *wi1, *wo;
  } l[MAXL];
} t5_ref;

enum { KEEP_ALL = 0, ZERO_ATTN_OUT = 1, ZERO_FFN_OUT = 2, ZERO_BOTH = 3 };

static k_backend *cpu;
static char base_dir[4096];

/* Write a random T5 encoder checkpoint + config.json; returns the folder. */
static const char *make_model(t5_ref *r, wfile *f, int layers, rdt_dtype dtype, int zero, uint64_t seed) {
  static int count;
  static char dir[4200];
  snprintf(dir, sizeof dir, "%s/m%d", base_dir, count++);
  CHECK(rdt_mkdirs(dir) == 0);
  *r = (t5_ref){.d = 32, .dkv = 8, .H = 4, .ff = 48, .V = 64, .L = layers, .eps = 1e-6};
  const int64_t d = r->d, in = r->H * r->dkv, ff = r->ff;
  wf_init(f, seed, dtype);
  r->embed = wf_mat(f, "shared.weight", r->V, d, 1.0);
  for (int i = 0; i < layers; i++) {
    char n[160];
#define NAME(s) (snprintf(n, sizeof n, "encoder.block.%d.layer.%s", i, s), n)
    r->l[i].ln0 = wf_vec(f, NAME("0.layer_norm.weight"), d, 1.0, 0.1);
    r->l[i].q = wf_mat(f, NAME("0.SelfAttention.q.weight"), in, d, 0.1);
    r->l[i].k = wf_mat(f, NAME("0.SelfAttention.k.weight"), in, d, 0.1);
    r->l[i].v = wf_mat(f, NAME("0.SelfAttention.v.weight"), in, d, 0.2);
    r->l[i].o = wf_mat(f, NAME("0.SelfAttention.o.weight"), d, in, zero & ZERO_ATTN_OUT ? 0.0 : 0.2);
    if (i == 0) r->rel = wf_mat(f, NAME("0.SelfAttention.relative_attention_bias.weight"), 32, r->H, 1.0);
    r->l[i].ln1 = wf_vec(f, NAME("1.layer_norm.weight"), d, 1.0, 0.1);
    r->l[i].wi0 = wf_mat(f, NAME("1.DenseReluDense.wi_0.weight"), ff, d, 0.25);
    r->l[i].wi1 = wf_mat(f, NAME("1.DenseReluDense.wi_1.weight"), ff, d, 0.25);
    r->l[i].wo = wf_mat(f, NAME("1.DenseReluDense.wo.weight"), d, ff, zero & ZERO_FFN_OUT ? 0.0 : 0.2);
#undef NAME
  }
  r->final_ln = wf_vec(f, "encoder.final_layer_norm.weight", d, 1.0, 0.1);
  wf_mat(f, "decoder.block.0.layer.0.SelfAttention.q.weight", in, d, 1.0);   /* ignored */
  char config[1024];
  snprintf(config, sizeof config,
           "{\"architectures\": [\"T5ForConditionalGeneration\"], \"d_model\": %d, \"d_kv\": %d, \"d_ff\": %d,\n"
           " \"num_layers\": %d, \"num_decoder_layers\": 1, \"num_heads\": %d, \"vocab_size\": %d,\n"
           " \"relative_attention_num_buckets\": 32, \"relative_attention_max_distance\": 128,\n"
           " \"layer_norm_epsilon\": 1e-06, \"feed_forward_proj\": \"gated-gelu\", \"tie_word_embeddings\": false}\n",
           r->d, r->dkv, r->ff, layers, r->H, r->V);
  CHECK(wf_save(f, dir, config) == 0);
  return dir;
}

/* The reference encoder: ids [B, T] (mask [B, T] or NULL) -> out [B, T, d]. */
static void ref_forward(const t5_ref *r, const int32_t *ids, const uint8_t *mask, int B, int T, double *out) {
  const int d = r->d, in = r->H * r->dkv, ff = r->ff, rows = B * T;
  double *x = malloc((size_t)rows * d * sizeof *x), *h = malloc((size_t)rows * d * sizeof *h);
  double *q = malloc((size_t)rows * in * sizeof *q), *k = malloc((size_t)rows * in * sizeof *k);
  double *v = malloc((size_t)rows * in * sizeof *v), *a = malloc((size_t)rows * in * sizeof *a);
  double *g0 = malloc((size_t)rows * ff * sizeof *g0), *g1 = malloc((size_t)rows * ff * sizeof *g1);
  double *bias = malloc((size_t)r->H * T * T * sizeof *bias);
  for (int h_ = 0; h_ < r->H; h_++)
    for (int i = 0; i < T; i++)
      for (int j = 0; j < T; j++) bias[((size_t)h_ * T + i) * T + j] = r->rel[hand_bucket(j - i) * r->H + h_];
  for (int t = 0; t < rows; t++) memcpy(x + (size_t)t * d, r->embed + (size_t)ids[t] * d, (size_t)d * sizeof *x);
  for (int l = 0; l < r->L; l++) {
    ref_t5_layernorm(h, x, r->l[l].ln0, rows, d, r->eps);
    ref_linear(q, h, r->l[l].q, NULL, rows, in, d);
    ref_linear(k, h, r->l[l].k, NULL, rows, in, d);
    ref_linear(v, h, r->l[l].v, NULL, rows, in, d);
    ref_attention(a, q, k, v, mask, bias, B, T, r->H, r->dkv, 1.0);   /* no 1/sqrt(d) in T5 */
    ref_linear(h, a, r->l[l].o, NULL, rows, d, in);
    for (size_t i = 0; i < (size_t)rows * d; i++) x[i] += h[i];
    ref_t5_layernorm(h, x, r->l[l].ln1, rows, d, r->eps);
    ref_linear(g0, h, r->l[l].wi0, NULL, rows, ff, d);
    ref_linear(g1, h, r->l[l].wi1, NULL, rows, ff, d);
    for (size_t i = 0; i < (size_t)rows * ff; i++) g0[i] = ref_gelu(g0[i]) * g1[i];
    ref_linear(h, g0, r->l[l].wo, NULL, rows, d, ff);
    for (size_t i = 0; i < (size_t)rows * d; i++) x[i] += h[i];
  }
  ref_t5_layernorm(out, x, r->final_ln, rows, d, r->eps);
  free(x), free(h), free(q), free(k), free(v), free(a), free(g0), free(g1), free(bias);
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
  ref_forward(r, ids, use_mask ? mask : NULL, B, T, want);
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
    CHECK_MSG(t5_bucket(rel, 32, 128) == hand_bucket(rel), "relative position %d: %d, hand %d", rel,
              t5_bucket(rel, 32, 128), hand_bucket(rel));
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

/* Both sublayers silenced: final T5 LayerNorm of the embedding rows. */
static void t_embedding_t5_layernorm(void) {
  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 1, RDT_F32, ZERO_BOTH, 21);
  double err = run_case(dir, &r, 2, 9, ENC_RESIDENT, 1, NULL);
  CHECK_MSG(err < 1e-5, "rel err %g", err);
  wf_free(&f);
}

/* The feed-forward silenced: attention without scaling, with the relative
 * bias (distances up to 39, buckets 0..12 and 16..28) and a padding mask. */
static void t_attention_relative_bias(void) {
  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 1, RDT_F32, ZERO_FFN_OUT, 22);
  double err = run_case(dir, &r, 2, 40, ENC_RESIDENT, 1, NULL);
  CHECK_MSG(err < 1e-5, "rel err %g", err);
  err = run_case(dir, &r, 1, 40, ENC_RESIDENT, 0, NULL);
  CHECK_MSG(err < 1e-5, "rel err %g (no mask)", err);
  wf_free(&f);
}

/* The attention silenced: T5 LayerNorm, gated GELU-tanh feed-forward. */
static void t_gated_gelu_ffn(void) {
  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 1, RDT_F32, ZERO_ATTN_OUT, 23);
  double err = run_case(dir, &r, 2, 12, ENC_RESIDENT, 1, NULL);
  CHECK_MSG(err < 1e-5, "rel err %g", err);
  wf_free(&f);
}

/* Three blocks sharing block 0's bias, batch of three with padding. */
static void t_full_encoder(void) {
  t5_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 3, RDT_F32, KEEP_ALL, 24);
  double err = run_case(dir, &r, 3, 33, ENC_RESIDENT, 1, NULL);
  CHECK_MSG(err < 2e-5, "rel err %g", err);
  wf_free(&f);
}

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
  k_close(cpu);
  if (!test_failures_) rdt_rmtree(base_dir);
  return test_done();
}
