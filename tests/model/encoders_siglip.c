/* tests/model/encoders_siglip.c: the SigLIP vision tower on small random-weight
 * configs against a double-precision reference written here from the
 * definitions in Hugging Face modeling_siglip.py: the patch embedding as a
 * direct strided convolution, learned positions, pre-LN layers (attention and
 * MLP each isolated by zeroing the other's output projection, then together),
 * the post-layernorm; bf16 weights streamed and resident; the constant-image
 * cache; config parsing and loader errors.
 */
#include "test.h"

#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "model/siglip.h"
#include "encoders_ref.h"

enum { MAXL = 4 };

typedef struct {
  int D, I, L, H, C, S, p;
  double eps;
  double *patch_w, *patch_b, *pos, *post_w, *post_b;
  struct {
    double *ln1w, *ln1b, *ln2w, *ln2b, *q, *k, *v, *o, *bq, *bk, *bv, *bo, *fc1, *fc2, *b1, *b2;
  } l[MAXL];
} sig_ref;

static k_backend *cpu;
static char base_dir[4096];

/* Write a random SigLIP checkpoint + config.json into a fresh folder; the
 * reference gets the stored values.  Returns the folder. */
static const char *make_model(sig_ref *r, wfile *f, int layers, rdt_dtype dtype, int zero, uint64_t seed) {
  static int count;
  static char dir[4200];
  snprintf(dir, sizeof dir, "%s/m%d", base_dir, count++);
  CHECK(rdt_mkdirs(dir) == 0);
  *r = (sig_ref){.D = 32, .I = 48, .L = layers, .H = 4, .C = 3, .S = 16, .p = 4, .eps = 1e-6};
  const int64_t D = r->D, I = r->I, T = (r->S / r->p) * (r->S / r->p);
  wf_init(f, seed, dtype);
  const int64_t pw[4] = {D, r->C, r->p, r->p};
  r->patch_w = wf_add(f, "vision_model.embeddings.patch_embedding.weight", 4, pw, 0.0, 0.2);
  r->patch_b = wf_vec(f, "vision_model.embeddings.patch_embedding.bias", D, 0.0, 0.1);
  r->pos = wf_mat(f, "vision_model.embeddings.position_embedding.weight", T, D, 0.5);
  for (int i = 0; i < layers; i++) {
    char n[160];
#define NAME(s) (snprintf(n, sizeof n, "vision_model.encoder.layers.%d.%s", i, s), n)
    r->l[i].ln1w = wf_vec(f, NAME("layer_norm1.weight"), D, 1.0, 0.1);
    r->l[i].ln1b = wf_vec(f, NAME("layer_norm1.bias"), D, 0.0, 0.1);
    r->l[i].ln2w = wf_vec(f, NAME("layer_norm2.weight"), D, 1.0, 0.1);
    r->l[i].ln2b = wf_vec(f, NAME("layer_norm2.bias"), D, 0.0, 0.1);
    r->l[i].q = wf_mat(f, NAME("self_attn.q_proj.weight"), D, D, 0.3);
    r->l[i].k = wf_mat(f, NAME("self_attn.k_proj.weight"), D, D, 0.3);
    r->l[i].v = wf_mat(f, NAME("self_attn.v_proj.weight"), D, D, 0.2);
    r->l[i].o = wf_mat(f, NAME("self_attn.out_proj.weight"), D, D, zero == ZERO_ATTN_OUT ? 0.0 : 0.2);
    r->l[i].bq = wf_vec(f, NAME("self_attn.q_proj.bias"), D, 0.0, 0.1);
    r->l[i].bk = wf_vec(f, NAME("self_attn.k_proj.bias"), D, 0.0, 0.1);
    r->l[i].bv = wf_vec(f, NAME("self_attn.v_proj.bias"), D, 0.0, 0.1);
    r->l[i].bo = wf_vec(f, NAME("self_attn.out_proj.bias"), D, 0.0, zero == ZERO_ATTN_OUT ? 0.0 : 0.1);
    r->l[i].fc1 = wf_mat(f, NAME("mlp.fc1.weight"), I, D, 0.25);
    r->l[i].b1 = wf_vec(f, NAME("mlp.fc1.bias"), I, 0.0, 0.1);
    r->l[i].fc2 = wf_mat(f, NAME("mlp.fc2.weight"), D, I, zero == ZERO_FFN_OUT ? 0.0 : 0.2);
    r->l[i].b2 = wf_vec(f, NAME("mlp.fc2.bias"), D, 0.0, zero == ZERO_FFN_OUT ? 0.0 : 0.1);
#undef NAME
  }
  r->post_w = wf_vec(f, "vision_model.post_layernorm.weight", D, 1.0, 0.1);
  r->post_b = wf_vec(f, "vision_model.post_layernorm.bias", D, 0.0, 0.1);
  wf_vec(f, "vision_model.head.probe", D, 0.0, 1.0);   /* the pooling head: present, unused */
  char config[1024];
  snprintf(config, sizeof config,
           "{\"model_type\": \"siglip\", \"text_config\": {\"hidden_size\": 8},\n"
           " \"vision_config\": {\"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d,\n"
           "  \"num_attention_heads\": %d, \"image_size\": %d, \"patch_size\": %d, \"layer_norm_eps\": 1e-06,\n"
           "  \"hidden_act\": \"gelu_pytorch_tanh\", \"model_type\": \"siglip_vision_model\"}}\n",
           r->D, r->I, layers, r->H, r->S, r->p);
  CHECK(wf_save(f, dir, config) == 0);
  return dir;
}

/* The reference tower on n images [n, C, S, S] -> out [n, T, D]. */
static void ref_forward(const sig_ref *r, const float *img, int n, double *out) {
  const int D = r->D, I = r->I, G = r->S / r->p, T = G * G, hd = D / r->H, rows = n * T;
  double *x = calloc((size_t)rows * D, sizeof *x), *h = malloc((size_t)rows * D * sizeof *h);
  double *q = malloc((size_t)rows * D * sizeof *q), *k = malloc((size_t)rows * D * sizeof *k);
  double *v = malloc((size_t)rows * D * sizeof *v), *a = malloc((size_t)rows * D * sizeof *a);
  double *m = malloc((size_t)rows * I * sizeof *m);
  /* Conv2d(kernel p, stride p, valid) evaluated directly, plus the position embedding */
  for (int b = 0; b < n; b++)
    for (int py = 0; py < G; py++)
      for (int px = 0; px < G; px++)
        for (int d = 0; d < D; d++) {
          double s = r->patch_b[d];
          for (int c = 0; c < r->C; c++)
            for (int ky = 0; ky < r->p; ky++)
              for (int kx = 0; kx < r->p; kx++)
                s += r->patch_w[((d * r->C + c) * r->p + ky) * r->p + kx] *
                     img[(((size_t)b * r->C + c) * r->S + py * r->p + ky) * r->S + px * r->p + kx];
          int t = py * G + px;
          x[((size_t)b * T + t) * D + d] = s + r->pos[(size_t)t * D + d];
        }
  for (int l = 0; l < r->L; l++) {
    ref_layernorm(h, x, r->l[l].ln1w, r->l[l].ln1b, rows, D, r->eps);
    ref_linear(q, h, r->l[l].q, r->l[l].bq, rows, D, D);
    ref_linear(k, h, r->l[l].k, r->l[l].bk, rows, D, D);
    ref_linear(v, h, r->l[l].v, r->l[l].bv, rows, D, D);
    ref_attention(a, q, k, v, NULL, NULL, n, T, r->H, hd, 1.0 / sqrt((double)hd));
    ref_linear(h, a, r->l[l].o, r->l[l].bo, rows, D, D);
    for (size_t i = 0; i < (size_t)rows * D; i++) x[i] += h[i];
    ref_layernorm(h, x, r->l[l].ln2w, r->l[l].ln2b, rows, D, r->eps);
    ref_linear(m, h, r->l[l].fc1, r->l[l].b1, rows, I, D);
    for (size_t i = 0; i < (size_t)rows * I; i++) m[i] = ref_gelu(m[i]);
    ref_linear(h, m, r->l[l].fc2, r->l[l].b2, rows, D, I);
    for (size_t i = 0; i < (size_t)rows * D; i++) x[i] += h[i];
  }
  ref_layernorm(out, x, r->post_w, r->post_b, rows, D, r->eps);
  free(x), free(h), free(q), free(k), free(v), free(a), free(m);
}

/* n random images (uniform in [-1, 1], as the processor's output range). */
static float *random_images(int n, const sig_ref *r, uint64_t seed) {
  size_t len = (size_t)n * r->C * r->S * r->S;
  float *img = malloc(len * sizeof *img);
  rdt_rng g;
  rdt_rng_seed(&g, seed, 1);
  for (size_t i = 0; i < len; i++) img[i] = (float)(2.0 * rdt_rng_uniform(&g) - 1.0);
  return img;
}

/* Load the folder, encode n images, compare with the reference; returns the rel. error. */
static double run_case(const char *dir, const sig_ref *r, const float *img, int n, enc_mode mode,
                       float *keep_out) {
  siglip *m = siglip_load(cpu, dir, mode);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  if (!m) return INFINITY;
  const int T = siglip_tokens(m);
  CHECK(T == (r->S / r->p) * (r->S / r->p));
  CHECK(siglip_streamed(m) == (mode == ENC_STREAM));
  size_t len = (size_t)n * T * r->D;
  float *out = malloc(len * sizeof *out);
  double *want = malloc(len * sizeof *want);
  siglip_encode(m, img, n, out);
  ref_forward(r, img, n, want);
  double err = rel_err_f(out, want, len);
  if (keep_out) memcpy(keep_out, out, len * sizeof *out);
  free(out), free(want);
  siglip_free(m);
  return err;
}

/* A random F32 tower of `layers` layers (one sublayer silenced as `zero` says)
 * on n images against the reference. */
static void check_tower(int layers, int zero, uint64_t seed, int n, double tol) {
  sig_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, layers, RDT_F32, zero, seed);
  float *img = random_images(n, &r, seed + 100);
  double err = run_case(dir, &r, img, n, ENC_RESIDENT, NULL);
  CHECK_MSG(err < tol, "%d layers: rel err %g", layers, err);
  free(img);
  wf_free(&f);
}

/* Patch embedding (a direct strided convolution in the reference) + positions
 * + post-layernorm, no encoder layers. */
static void t_patch_embedding_post_ln(void) { check_tower(0, KEEP_ALL, 11, 2, 1e-5); }

/* One layer with the MLP silenced: pre-LN attention with biases and hd^-0.5. */
static void t_attention_sublayer(void) { check_tower(1, ZERO_FFN_OUT, 12, 2, 1e-5); }

/* One layer with the attention silenced: pre-LN fc1 -> GELU-tanh -> fc2. */
static void t_mlp_sublayer(void) { check_tower(1, ZERO_ATTN_OUT, 13, 2, 1e-5); }

/* The whole tower, three layers, a batch of three. */
static void t_full_tower(void) { check_tower(3, KEEP_ALL, 14, 3, 2e-5); }

/* bf16 weights: streamed from the file and resident give the same numbers. */
static void t_bf16_streamed(void) {
  sig_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 2, RDT_BF16, KEEP_ALL, 15);
  float *img = random_images(2, &r, 9);
  size_t len = (size_t)2 * 16 * r.D;
  float *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b);
  double e1 = run_case(dir, &r, img, 2, ENC_RESIDENT, a);
  double e2 = run_case(dir, &r, img, 2, ENC_STREAM, b);
  CHECK_MSG(e1 < 2e-5 && e2 < 2e-5, "rel err %g %g", e1, e2);
  CHECK(memcmp(a, b, len * sizeof *a) == 0);
  free(a), free(b), free(img);
  wf_free(&f);
}

/* Constant-colour images are encoded once and then served from the cache. */
static void t_background_cache(void) {
  sig_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 1, RDT_F32, KEEP_ALL, 16);
  const int n = 5, per = r.C * r.S * r.S, T = 16;
  float *img = random_images(n, &r, 10);
  const float grey = (127.0f / 255.0f - 0.5f) / 0.5f, other[3] = {0.25f, -0.5f, 0.75f};
  for (int c = 0; c < r.C; c++)
    for (int i = 0; i < r.S * r.S; i++) {
      img[0 * per + c * r.S * r.S + i] = grey;   /* images 0 and 2: the RDT background */
      img[2 * per + c * r.S * r.S + i] = grey;
      img[3 * per + c * r.S * r.S + i] = other[c];   /* image 3: another constant colour */
    }
  siglip *m = siglip_load(cpu, dir, ENC_RESIDENT);
  CHECK(m != NULL);
  if (!m) return;
  size_t len = (size_t)n * T * r.D;
  float *out = malloc(len * sizeof *out);
  double *want = malloc(len * sizeof *want);
  ref_forward(&r, img, n, want);
  siglip_encode(m, img, n, out);
  CHECK_MSG(rel_err_f(out, want, len) < 1e-5, "rel err %g", rel_err_f(out, want, len));
  CHECK(siglip_cache_hits(m) == 1);   /* image 2 */
  siglip_encode(m, img + 3 * per, 1, out);   /* image 3 again: cached since the first call */
  CHECK(siglip_cache_hits(m) == 2);
  CHECK(rel_err_f(out, want + (size_t)3 * T * r.D, (size_t)T * r.D) < 1e-5);
  siglip_encode(m, img, 1, out);   /* the grey again: re-encoded (one-entry cache), then cached */
  siglip_encode(m, img, 1, out);
  CHECK(siglip_cache_hits(m) == 3);
  CHECK(rel_err_f(out, want, (size_t)T * r.D) < 1e-5);
  siglip_free(m);
  free(out), free(want), free(img);
  wf_free(&f);
}

/* Config parsing (nested or flat, HF defaults) and loader errors. */
static void t_config_and_errors(void) {
  siglip_config c;
  const char *flat = "{\"hidden_size\": 1152, \"image_size\": 384, \"patch_size\": 14, "
                     "\"intermediate_size\": 4304, \"num_attention_heads\": 16, \"num_hidden_layers\": 27}";
  rdt_json *j = rdt_json_parse(flat, strlen(flat));
  CHECK(j && siglip_config_from_json(j, &c) == 0);
  CHECK(c.hidden_size == 1152 && c.num_layers == 27 && c.num_channels == 3 && fabsf(c.eps - 1e-6f) < 1e-12f);
  CHECK((c.image_size / c.patch_size) * (c.image_size / c.patch_size) == 729);
  rdt_json_free(j);
  const char *defaults = "{\"vision_config\": {}}";
  j = rdt_json_parse(defaults, strlen(defaults));
  CHECK(j && siglip_config_from_json(j, &c) == 0);
  CHECK(c.hidden_size == 768 && c.intermediate_size == 3072 && c.num_heads == 12 && c.patch_size == 16 &&
        c.image_size == 224);
  rdt_json_free(j);
  const char *erf = "{\"hidden_act\": \"gelu\"}";
  j = rdt_json_parse(erf, strlen(erf));
  CHECK(j && siglip_config_from_json(j, &c) < 0 && strstr(rdt_error(), "gelu"));
  rdt_json_free(j);

  sig_ref r;
  wfile f;
  const char *dir = make_model(&r, &f, 1, RDT_F32, KEEP_ALL, 17);
  rdt_st *st = rdt_st_open(dir);
  CHECK(st != NULL);
  siglip_config wrong = {32, 48, 2, 4, 3, 16, 4, 1e-6f};   /* one layer more than the file */
  CHECK(siglip_new(cpu, &wrong, st, ENC_RESIDENT) == NULL);
  CHECK_MSG(strstr(rdt_error(), "vision_model.encoder.layers.1.layer_norm1.weight") != NULL, "%s", rdt_error());
  wrong.num_layers = 1, wrong.intermediate_size = 40;
  CHECK(siglip_new(cpu, &wrong, st, ENC_RESIDENT) == NULL && strstr(rdt_error(), "shape") != NULL);
  rdt_st_close(st);
  CHECK(siglip_load(cpu, "/nonexistent/siglip", ENC_AUTO) == NULL);
  wf_free(&f);
}

/* A random folder at a given config loads back with that config and encodes finitely. */
static void t_write_random(void) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/random", base_dir);
  siglip_config c = {48, 40, 2, 3, 3, 28, 7, 1e-5f};
  CHECK(siglip_write_random(&c, dir, RDT_BF16, 3) == 0);
  siglip *m = siglip_load(cpu, dir, ENC_AUTO);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  if (!m) return;
  const siglip_config *g = siglip_cfg(m);
  CHECK(g->hidden_size == 48 && g->intermediate_size == 40 && g->num_layers == 2 && g->num_heads == 3 &&
        g->image_size == 28 && g->patch_size == 7 && g->eps == 1e-5f && siglip_tokens(m) == 16);
  float img[3 * 28 * 28], out[16 * 48];
  for (int i = 0; i < 3 * 28 * 28; i++) img[i] = (float)(i % 17) / 8.0f - 1.0f;
  siglip_encode(m, img, 1, out);
  int finite = 1;
  for (int i = 0; i < 16 * 48; i++) finite &= isfinite(out[i]) != 0;
  CHECK(finite);
  siglip_free(m);
}

int main(void) {
  cpu = k_open("cpu", 1);
  if (!cpu) {
    fprintf(stderr, "cpu backend: %s\n", rdt_error());
    return 1;
  }
  snprintf(base_dir, sizeof base_dir, "%s", test_tmpdir("siglip"));
  RUN(t_patch_embedding_post_ln);
  RUN(t_attention_sublayer);
  RUN(t_mlp_sublayer);
  RUN(t_full_tower);
  RUN(t_bf16_streamed);
  RUN(t_background_cache);
  RUN(t_config_and_errors);
  RUN(t_write_random);
  k_close(cpu);
  if (!test_failures_) rdt_rmtree(base_dir);
  return test_done();
}
