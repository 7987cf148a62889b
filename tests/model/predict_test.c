/* tests/model/predict_test.c: `rdt predict` on configs/tiny.yaml -- forward
 * agrees with the model API (t = 999 with constant inputs, and random t),
 * loss-mode gradients against central differences of loss-mode losses, sample
 * mode deterministic and equal to five forward runs combined with the
 * DPM-Solver++ update written out here, malformed inputs rejected up front.
 * Built a second time with RDT_TEST_PREDICT_CUDA (test_model_predict_cuda,
 * label cuda): --device cuda against --device cpu in fp32 and bf16; exits 77
 * (skipped) when no CUDA device is visible. */
#include <stdarg.h>
#include "model_util.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "model/rdt_internal.h"

static rdt_model_config cfg;
static k_backend *be;
static rdt_model *model;       /* the weights every run uses */
static const char *dir;
static char weights[4200];

/* Path of a file in the scratch folder. */
static const char *at(const char *name) {
  static char buf[4][4200];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* ================================================================ input files */

/* Write the inputs of a mode from a batch.  noisy: forward's noisy_action (NULL:
 * the batch's noise).  drop / rename / reshape / f32_timesteps make it malformed. */
typedef struct {
  const char *drop, *extra;
  int bad_img_shape, f32_timesteps;
} damage;

static void write_inputs(const char *path, const test_batch *tb, const char *mode, const float *noisy, damage d) {
  int B = tb->in.B, L = tb->in.L;
  int64_t lang[3] = {B, L, cfg.lang_token_dim}, mask[2] = {B, L};
  int64_t img[3] = {B, cfg.img_cond_len - d.bad_img_shape, cfg.img_token_dim};
  int64_t st[3] = {B, 1, cfg.state_token_dim}, chunk[3] = {B, cfg.pred_horizon, cfg.action_dim}, b1[1] = {B};
  float *tf = rdt_malloc(sizeof(float) * B);
  for (int i = 0; i < B; i++) tf[i] = (float)tb->t[i];
  rdt_st_writer *w = rdt_st_writer_new();
#define ADD(name, dt, nd, shape, data)                                                \
  do {                                                                                \
    if (!d.drop || strcmp(d.drop, name) != 0) rdt_st_writer_add(w, name, dt, nd, shape, data); \
  } while (0)
  ADD("lang_tokens", RDT_F32, 3, lang, tb->lang);
  ADD("lang_attn_mask", RDT_U8, 2, mask, tb->mask);
  ADD("img_tokens", RDT_F32, 3, img, tb->img);
  ADD("state_tokens", RDT_F32, 3, st, tb->state);
  ADD("action_mask", RDT_F32, 3, st, tb->amask);
  ADD("ctrl_freqs", RDT_F32, 1, b1, tb->freqs);
  int is_fwd = strcmp(mode, "forward") == 0, is_loss = strcmp(mode, "loss") == 0;
  if (is_fwd) ADD("noisy_action", RDT_F32, 3, chunk, noisy ? noisy : tb->noise);
  if (is_fwd || is_loss) {
    if (d.f32_timesteps) ADD("timesteps", RDT_F32, 1, b1, tf);
    else ADD("timesteps", RDT_I64, 1, b1, tb->t);
  }
  if (!is_fwd) ADD("noise", RDT_F32, 3, chunk, tb->noise);
  if (is_loss) ADD("action_gt", RDT_F32, 3, chunk, tb->gt);
  if (d.extra) rdt_st_writer_add(w, d.extra, RDT_F32, 1, b1, tb->freqs);
#undef ADD
  CHECK(rdt_st_writer_save(w, path) == 0);
  rdt_st_writer_free(w);
  free(tf);
}

static const damage none = {NULL, NULL, 0, 0};

/* Run predict; returns the exit code. */
static int predict(const char *mode, const char *in, const char *out, const char *extra) {
  const char *err = at("predict.err");
  int rc = test_sh("%s predict --pretrained %s --inputs %s --output %s --mode %s --threads 1 %s 2> %s", test_rdt_bin(), weights,
                   in, out, mode, extra ? extra : "", err);
  if (rc != 0) test_sh("echo 'rdt predict --mode %s %s said:' >&2; cat '%s' >&2", mode, extra ? extra : "", err);
  return rc;
}

/* An F32 output tensor copied out of a file (n elements expected). */
static float *read_output(const char *path, const char *name, size_t n) {
  rdt_st *st = rdt_st_open(path);
  CHECK_MSG(st != NULL, "%s: %s", path, rdt_error());
  if (!st) return rdt_calloc(n + 1, sizeof(float));
  const rdt_tensor *t = rdt_st_find(st, name);
  CHECK_MSG(t && t->dtype == RDT_F32 && (size_t)rdt_numel(t) == n, "%s: %s missing or wrong", path, name);
  float *x = rdt_calloc(n + 1, sizeof(float));
  if (t && (size_t)rdt_numel(t) == n) memcpy(x, t->data, n * sizeof(float));
  rdt_st_close(st);
  return x;
}

/* ================================================================ tests */

/* forward mode equals rdt_model_forward, bit for bit (same CPU code, one thread). */
static void forward_matches(test_batch *tb) {
  size_t n = (size_t)tb->in.B * cfg.pred_horizon * cfg.action_dim;
  write_inputs(at("fwd.in"), tb, "forward", NULL, none);
  CHECK(predict("forward", at("fwd.in"), at("fwd.out"), NULL) == 0);
  float *got = read_output(at("fwd.out"), "pred", n), *want = rdt_malloc(4 * n);
  CHECK(rdt_model_forward(model, &tb->in, tb->noise, tb->t, want) == 0);
  CHECK(memcmp(got, want, 4 * n) == 0);
  int finite = 1;
  for (size_t i = 0; i < n; i++) finite &= isfinite(got[i]);
  CHECK(finite);
  free(got), free(want);
}

static void t_forward(void) {
  /* t = 999 with zero-variance (constant) inputs */
  test_batch tb = random_batch(&cfg, 2, 5, 41);
  for (size_t i = 0; i < (size_t)2 * 5 * cfg.lang_token_dim; i++) tb.lang[i] = 0.25f;
  for (size_t i = 0; i < (size_t)2 * cfg.img_cond_len * cfg.img_token_dim; i++) tb.img[i] = -0.5f;
  for (int i = 0; i < 2 * cfg.state_token_dim; i++) tb.state[i] = 0.0f, tb.amask[i] = 1.0f;
  for (size_t i = 0; i < (size_t)2 * cfg.pred_horizon * cfg.action_dim; i++) tb.noise[i] = 0.0f;
  for (int i = 0; i < 2 * 5; i++) tb.mask[i] = 1;
  tb.t[0] = tb.t[1] = 999;
  forward_matches(&tb);
  free_batch(&tb);
  /* random inputs and timesteps, with a language mask; intermediates */
  tb = random_batch(&cfg, 3, 7, 42);
  forward_matches(&tb);
  CHECK(predict("forward", at("fwd.in"), at("fwd2.out"), "--intermediates") == 0);
  size_t n = (size_t)3 * cfg.img_cond_len * cfg.hidden_size;
  float *got = read_output(at("fwd2.out"), "img_cond", n), *want = rdt_malloc(4 * n);
  CHECK(rdt_model_activation(model, "img_cond", want, n) == 0);
  CHECK(memcmp(got, want, 4 * n) == 0);
  free(got), free(want);
  free(read_output(at("fwd2.out"), "lang_cond", (size_t)3 * 7 * cfg.hidden_size));
  free(read_output(at("fwd2.out"), "state_action_traj", (size_t)3 * (1 + cfg.pred_horizon) * cfg.hidden_size));
  free_batch(&tb);
}

/* loss mode: its gradients against central differences of its own loss, with
 * the weights file perturbed, for the largest-gradient element of some tensors. */
static void t_loss_grads(void) {
  test_batch tb = random_batch(&cfg, 2, 6, 43);
  write_inputs(at("loss.in"), &tb, "loss", NULL, none);
  CHECK(predict("loss", at("loss.in"), at("loss.out"), "--grads") == 0);
  float *loss = read_output(at("loss.out"), "loss", 1);
  float api;
  CHECK(rdt_model_loss(model, &tb.in, tb.gt, tb.noise, tb.t, 0, 1.0f, &api) == 0);
  CHECK(loss[0] == api);
  const char *names[5] = {"model.blocks.1.cross_attn.kv.weight", "lang_adaptor.0.weight", "model.x_pos_embed",
                          "model.blocks.0.attn.q_norm.weight", "state_adaptor.4.bias"};
  size_t total = rdt_model_numel(model);
  float *p = rdt_malloc(4 * total);
  k_download(be, p, rdt_model_params(model), 4 * total);
  char saved[4200];
  snprintf(saved, sizeof saved, "%s", weights);
  snprintf(weights, sizeof weights, "%s", at("perturbed/model.safetensors"));
  CHECK(rdt_mkdirs(at("perturbed")) == 0);
  CHECK(rdt_model_config_write(&cfg, at("perturbed/config.json")) == 0);
  for (int k = 0; k < 5; k++) {
    const rdt_param_info *t = rdt_model_param(model, rdt_model_param_find(model, names[k]));
    char gname[128];
    snprintf(gname, sizeof gname, "grad.%s", names[k]);
    float *g = read_output(at("loss.out"), gname, t->numel);
    size_t top = 0;
    for (size_t i = 1; i < t->numel; i++)
      if (fabsf(g[i]) > fabsf(g[top])) top = i;
    double l[2], h = 1e-2;
    for (int s = 0; s < 2; s++) {
      float v = (float)(p[t->offset + top] + (s ? -h : h));
      k_upload(be, rdt_model_params(model) + t->offset + top, &v, 4);
      CHECK(rdt_model_save(model, NULL, weights, RDT_F32) == 0);
      CHECK(predict("loss", at("loss.in"), at("lossp.out"), NULL) == 0);
      float *lv = read_output(at("lossp.out"), "loss", 1);
      l[s] = lv[0];
      free(lv);
    }
    k_upload(be, rdt_model_params(model) + t->offset + top, p + t->offset + top, 4);
    double fd = (l[0] - l[1]) / (2 * h), rel = fabs(fd - g[top]) / fmax(fabs(fd), fabs(g[top]));
    CHECK_MSG(rel < 1e-2, "%s[%zu]: grad %.6g, finite difference %.6g", names[k], top, g[top], fd);
    free(g);
  }
  snprintf(weights, sizeof weights, "%s", saved);
  free(loss), free(p);
  free_batch(&tb);
}

/* alphas_cumprod of squaredcos_cap_v2 in double. */
static double abar(int t) {
  double prod = 1;
  for (int i = 0; i <= t; i++) {
    double c1 = cos((i / 1000.0 + 0.008) / 1.008 * M_PI / 2), c2 = cos(((i + 1) / 1000.0 + 0.008) / 1.008 * M_PI / 2);
    double beta = 1 - c2 * c2 / (c1 * c1);
    prod *= 1 - (beta < 0.999 ? beta : 0.999);
  }
  return prod;
}

/* sample mode: deterministic, cache-independent, and equal to forward x5 with
 * DPM-Solver++(2M) from the published formulas (Lu et al. 2022, midpoint form):
 *   lambda = log(alpha / sigma), h = lambda_t - lambda_s,
 *   first order:  x' = (sigma_t / sigma_s) x - alpha_t (e^-h - 1) D0
 *   second order: ... - 0.5 alpha_t (e^-h - 1) D1, D1 = (m0 - m1) / r0, r0 = h_prev / h
 * steps 999 799 599 400 200 (orders 1 2 2 2 1), final sigma 0, times the mask. */
static void t_sample(void) {
  int B = 2;
  test_batch tb = random_batch(&cfg, B, 4, 44);
  size_t n = (size_t)B * cfg.pred_horizon * cfg.action_dim, chunk = n / B;
  write_inputs(at("sample.in"), &tb, "sample", NULL, none);
  CHECK(predict("sample", at("sample.in"), at("s1.out"), NULL) == 0);
  CHECK(predict("sample", at("sample.in"), at("s2.out"), NULL) == 0);
  CHECK(predict("sample", at("sample.in"), at("s3.out"), "--no_cache") == 0);
  float *s1 = read_output(at("s1.out"), "action_pred", n), *s2 = read_output(at("s2.out"), "action_pred", n);
  float *s3 = read_output(at("s3.out"), "action_pred", n);
  CHECK(memcmp(s1, s2, 4 * n) == 0);
  CHECK(memcmp(s1, s3, 4 * n) == 0);
  int ts[5] = {999, 799, 599, 400, 200};
  double sig[6], alpha[6], lambda[6];
  for (int k = 0; k < 5; k++) {
    double ab = abar(ts[k]);
    sig[k] = sqrt((1 - ab) / ab);
  }
  sig[5] = 0;
  for (int k = 0; k < 6; k++) {
    alpha[k] = 1 / sqrt(sig[k] * sig[k] + 1);
    lambda[k] = log(alpha[k]) - log(sig[k] * alpha[k]);   /* +inf at sigma 0 */
  }
  double *x = rdt_malloc(8 * n), *m1 = rdt_malloc(8 * n);
  float *xf = rdt_malloc(4 * n);
  for (size_t i = 0; i < n; i++) x[i] = tb.noise[i];
  for (int k = 0; k < 5; k++) {
    for (size_t i = 0; i < n; i++) xf[i] = (float)x[i];
    for (int b = 0; b < B; b++) tb.t[b] = ts[k];
    write_inputs(at("step.in"), &tb, "forward", xf, none);
    CHECK(predict("forward", at("step.in"), at("step.out"), NULL) == 0);
    float *m0 = read_output(at("step.out"), "pred", n);
    double h = lambda[k + 1] - lambda[k], st = sig[k + 1] * alpha[k + 1], ss = sig[k] * alpha[k];
    double ratio = k == 4 ? 0 : st / ss, e = alpha[k + 1] * (exp(-h) - 1);
    int order = k == 0 || k == 4 ? 1 : 2;
    double r0 = k > 0 ? (lambda[k] - lambda[k - 1]) / h : 1;
    for (size_t i = 0; i < n; i++) {
      double d1 = order == 2 ? (m0[i] - m1[i]) / r0 : 0;
      double nx = ratio * x[i] - e * m0[i] - 0.5 * e * d1;
      m1[i] = m0[i];
      x[i] = nx;
    }
    free(m0);
  }
  double *sd = rdt_malloc(8 * n);
  for (size_t i = 0; i < n; i++) {
    x[i] *= tb.amask[(i / chunk) * cfg.action_dim + i % cfg.action_dim];
    sd[i] = s1[i];
  }
  double err = test_rel_err(sd, x, n);
  CHECK_MSG(err < 1e-4, "sample vs 5 forward steps: relative error %.3g", err);
  fprintf(stderr, "  sample vs forward x5 + DPM-Solver++ in double: relative error %.3g\n", err);
  free(s1), free(s2), free(s3), free(x), free(m1), free(xf), free(sd);
  free_batch(&tb);
}

/* --cpu_bf16: every activation output (pred, action_pred, the adaptor
 * outputs) holds BF16 values exactly, differs from the plain fp32 run by
 * BF16-sized amounts, and the run is deterministic. */
static void t_cpu_bf16(void) {
  test_batch tb = random_batch(&cfg, 2, 6, 48);
  const char *modes[3] = {"forward", "sample", "loss"};
  char in[64], f32[64], r1[64], r2[64], args[96];
  for (int k = 0; k < 3; k++) {
    snprintf(in, sizeof in, "c16.%s.in", modes[k]);
    snprintf(f32, sizeof f32, "c16.%s.f32", modes[k]);
    snprintf(r1, sizeof r1, "c16.%s.r1", modes[k]);
    snprintf(r2, sizeof r2, "c16.%s.r2", modes[k]);
    write_inputs(at(in), &tb, modes[k], NULL, none);
    const char *extra = k == 2 ? "--grads --intermediates" : "--intermediates";
    snprintf(args, sizeof args, "%s --cpu_bf16", extra);
    CHECK(predict(modes[k], at(in), at(f32), extra) == 0);
    CHECK(predict(modes[k], at(in), at(r1), args) == 0);
    CHECK(predict(modes[k], at(in), at(r2), args) == 0);
    rdt_st *a = rdt_st_open(at(f32)), *b = rdt_st_open(at(r1)), *c = rdt_st_open(at(r2));
    CHECK_MSG(a && b && c, "%s", rdt_error());
    if (!a || !b || !c) continue;
    int ngrad_changed = 0;
    for (int i = 0; i < rdt_st_count(a); i++) {
      const rdt_tensor *x = rdt_st_get(a, i), *y = rdt_st_find(b, x->name), *z = rdt_st_find(c, x->name);
      CHECK_MSG(y && z, "%s missing", x->name);
      if (!y || !z) continue;
      size_t n = (size_t)rdt_numel(x);
      float *fx = rdt_malloc(4 * n), *fy = rdt_malloc(4 * n), *fz = rdt_malloc(4 * n);
      rdt_st_to_f32(x, fx), rdt_st_to_f32(y, fy), rdt_st_to_f32(z, fz);
      CHECK_MSG(memcmp(fy, fz, 4 * n) == 0, "%s %s: two --cpu_bf16 runs differ", modes[k], x->name);
      double *dx = rdt_malloc(8 * n), *dy = rdt_malloc(8 * n);
      for (size_t e = 0; e < n; e++) dx[e] = fx[e], dy[e] = fy[e];
      double err = test_rel_err(dy, dx, n);
      int is_grad = strncmp(x->name, "grad.", 5) == 0, is_loss = strcmp(x->name, "loss") == 0;
      if (is_grad) {
        ngrad_changed += err > 0;
        CHECK_MSG(err < 1e-1, "%s %s: relative error %.3g against fp32", modes[k], x->name, err);
      } else {
        CHECK_MSG(err > 1e-5 && err < 2e-2, "%s %s: relative error %.3g against fp32", modes[k], x->name, err);
      }
      if (!is_grad && !is_loss) {   /* activations: BF16 values exactly */
        size_t off = 0;
        for (size_t e = 0; e < n; e++) off += rdt_bf16_to_f32(rdt_f32_to_bf16(fy[e])) != fy[e];
        CHECK_MSG(off == 0, "%s %s: %zu values are not BF16", modes[k], x->name, off);
      }
      free(fx), free(fy), free(fz), free(dx), free(dy);
    }
    if (k == 2) CHECK(ngrad_changed > 0);
    rdt_st_close(a), rdt_st_close(b), rdt_st_close(c);
  }
  free_batch(&tb);
}

/* Every malformed input is reported at once, before the weights are read. */
static void t_malformed(void) {
  test_batch tb = random_batch(&cfg, 2, 3, 45);
  /* weights that would fail to load: the input check must come first */
  snprintf(weights, sizeof weights, "%s", at("broken/model.safetensors"));
  CHECK(rdt_mkdirs(at("broken")) == 0);
  CHECK(rdt_model_config_write(&cfg, at("broken/config.json")) == 0);
  CHECK(rdt_write_file_atomic(weights, "not a tensor file", 17) == 0);
  struct { damage d; const char *mode; const char *words[4]; } cases[] = {
    {{"ctrl_freqs", NULL, 0, 0}, "forward", {"missing ctrl_freqs", NULL}},
    {{NULL, NULL, 1, 0}, "loss", {"img_tokens has shape", NULL}},
    {{NULL, NULL, 0, 1}, "forward", {"timesteps has dtype F32", NULL}},
    {{"state_tokens", "foo", 1, 1}, "loss",
     {"missing state_tokens", "img_tokens has shape", "timesteps has dtype F32", "unexpected input foo"}},
    {{"noise", NULL, 0, 0}, "sample", {"missing noise", NULL}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    write_inputs(at("bad.in"), &tb, cases[c].mode, NULL, cases[c].d);
    unlink(at("bad.out"));
    CHECK(predict(cases[c].mode, at("bad.in"), at("bad.out"), NULL) == 1);
    CHECK(!rdt_is_file(at("bad.out")));
    char *err = rdt_read_file(at("predict.err"), NULL);
    for (int k = 0; k < 4 && cases[c].words[k]; k++)
      CHECK_MSG(err && strstr(err, cases[c].words[k]), "case %zu: '%s' not in: %s", c, cases[c].words[k],
                err ? err : "(no output)");
    CHECK_MSG(err && !strstr(err, "not a tensor file") && !strstr(err, "model.safetensors"), "%s",
              err ? err : "(no output)");
    free(err);
  }
  free_batch(&tb);
}

/* Norm-wise relative error of every tensor of a CUDA output file against the
 * CPU one; the worst over the grad.* tensors and each other output. */
static void compare_outputs(const char *cpu, const char *gpu, const char *what, double bound, double grad_bound) {
  rdt_st *a = rdt_st_open(cpu), *b = rdt_st_open(gpu);
  CHECK_MSG(a && b, "%s: %s", what, rdt_error());
  if (!a || !b) return;
  double worst_grad = -1;   /* -1: no grad.* tensors */
  char worst_name[128] = "";
  for (int i = 0; i < rdt_st_count(a); i++) {
    const rdt_tensor *x = rdt_st_get(a, i), *y = rdt_st_find(b, x->name);
    CHECK_MSG(y && rdt_numel(y) == rdt_numel(x), "%s: %s missing", what, x->name);
    if (!y || rdt_numel(y) != rdt_numel(x)) continue;
    size_t n = (size_t)rdt_numel(x);
    double *u = rdt_malloc(8 * n), *v = rdt_malloc(8 * n);
    float *f = rdt_malloc(4 * n);
    rdt_st_to_f32(x, f);
    for (size_t k = 0; k < n; k++) v[k] = f[k];
    rdt_st_to_f32(y, f);
    for (size_t k = 0; k < n; k++) u[k] = f[k];
    double e = test_rel_err(u, v, n);
    int is_grad = strncmp(x->name, "grad.", 5) == 0;
    if (is_grad) {
      if (e > worst_grad) worst_grad = e, snprintf(worst_name, sizeof worst_name, "%s", x->name);
    } else {
      fprintf(stderr, "  %-24s %-18s relative error %.3g (bound %.g)\n", what, x->name, e, bound);
    }
    CHECK_MSG(e < (is_grad ? grad_bound : bound), "%s: %s relative error %.3g", what, x->name, e);
    free(u), free(v), free(f);
  }
  if (worst_grad >= 0)
    fprintf(stderr, "  %-24s %-18s relative error %.3g (bound %.g): %s\n", what, "grad.* (worst)", worst_grad, grad_bound,
            worst_name);
  rdt_st_close(a), rdt_st_close(b);
}

/* Every mode on cuda against the cpu: fp32 activations against the plain
 * CPU (bound 1e-5), bf16 activations against the CPU rounding its
 * activations to bf16 at the same points (--cpu_bf16; the 2e-2 bound of the
 * CUDA ops, gradients included), and bf16 against the plain fp32 CPU as well:
 * that difference is BF16 storage itself, so its gradient bound is looser
 * (the norm-weight gradients, sums over every token of products of rounded
 * values, differ most). */
static void t_cuda(void) {
  test_batch tb = random_batch(&cfg, 3, 7, 46);
  const char *modes[3] = {"forward", "sample", "loss"};
  char in[64], cpu[64], cpu16[64], f32[64], bf16[64], what[64];
  for (int k = 0; k < 3; k++) {
    snprintf(in, sizeof in, "%s.in", modes[k]);
    snprintf(cpu, sizeof cpu, "%s.cpu", modes[k]);
    snprintf(cpu16, sizeof cpu16, "%s.cpu16", modes[k]);
    snprintf(f32, sizeof f32, "%s.fp32", modes[k]);
    snprintf(bf16, sizeof bf16, "%s.bf16", modes[k]);
    write_inputs(at(in), &tb, modes[k], NULL, none);
    const char *extra = k == 2 ? "--grads --intermediates" : "--intermediates";
    char args[128];
    CHECK(predict(modes[k], at(in), at(cpu), extra) == 0);
    snprintf(args, sizeof args, "%s --cpu_bf16", extra);
    CHECK(predict(modes[k], at(in), at(cpu16), args) == 0);
    snprintf(args, sizeof args, "%s --device cuda --mixed_precision no", extra);
    CHECK(predict(modes[k], at(in), at(f32), args) == 0);
    snprintf(args, sizeof args, "%s --device cuda --mixed_precision bf16", extra);
    CHECK(predict(modes[k], at(in), at(bf16), args) == 0);
    snprintf(what, sizeof what, "%s cuda fp32", modes[k]);
    compare_outputs(at(cpu), at(f32), what, 1e-5, 1e-5);
    snprintf(what, sizeof what, "%s cuda bf16", modes[k]);
    compare_outputs(at(cpu16), at(bf16), what, 2e-2, 2e-2);
    snprintf(what, sizeof what, "%s bf16 vs fp32", modes[k]);
    compare_outputs(at(cpu), at(bf16), what, 2e-2, 1e-1);
  }
  free_batch(&tb);
  /* batch 1, as a policy query (67 rows: the few-row GEMM kernel's case when
   * RDT_CUDA_SKINNY=1) */
  test_batch one = random_batch(&cfg, 1, 5, 47);
  write_inputs(at("one.in"), &one, "sample", NULL, none);
  CHECK(predict("sample", at("one.in"), at("one.cpu"), "--intermediates") == 0);
  CHECK(predict("sample", at("one.in"), at("one.cpu16"), "--intermediates --cpu_bf16") == 0);
  CHECK(predict("sample", at("one.in"), at("one.fp32"), "--intermediates --device cuda --mixed_precision no") == 0);
  CHECK(predict("sample", at("one.in"), at("one.bf16"), "--intermediates --device cuda --mixed_precision bf16") == 0);
  compare_outputs(at("one.cpu"), at("one.fp32"), "sample b1 cuda fp32", 1e-5, 1e-5);
  compare_outputs(at("one.cpu16"), at("one.bf16"), "sample b1 cuda bf16", 2e-2, 2e-2);
  free_batch(&one);
}

/* rdt_model_sample on CUDA (graphs on, the default) replays its denoising loop
 * as a recorded graph from the second call with the same sizes on: results
 * must equal the direct run bitwise, also when the inputs change between
 * replays. */
static int is_graph_used(const rdt_model *m) { return m->graph != NULL; }

static void t_cuda_graph(void) {
  k_backend *g = k_open("cuda", 0);
  CHECK_MSG(g != NULL, "%s", rdt_error());
  if (!g) return;
  rdt_model *gm = rdt_model_new(g, &cfg);
  rdt_st *w = rdt_st_open(weights);
  CHECK(w && rdt_model_load(gm, w, NULL) == 0);
  rdt_st_close(w);
  test_batch a = random_batch(&cfg, 2, 5, 71), b = random_batch(&cfg, 2, 5, 72);
  /* The control frequencies are recorded into the graph (they are part of its
   * key): keep them, change every other input. */
  memcpy(b.freqs, a.freqs, 2 * sizeof(float));
  test_batch c = random_batch(&cfg, 2, 5, 73);   /* other frequencies: another key */
  size_t n = (size_t)2 * cfg.pred_horizon * cfg.action_dim;
  float *ref[3], *out = rdt_malloc(4 * n);
  const test_batch *in[3] = {&a, &b, &c};
  setenv("RDT_CUDA_GRAPH", "0", 1);
  for (int k = 0; k < 3; k++) {
    ref[k] = rdt_malloc(4 * n);
    CHECK(rdt_model_sample(gm, &in[k]->in, in[k]->noise, ref[k]) == 0);
  }
  CHECK(!is_graph_used(gm));
  setenv("RDT_CUDA_GRAPH", "1", 1);
  /* a: direct (first with its key), b: recorded and replayed, a, b: replays; c: direct,
   * then recorded, replayed; a: direct again (the key changed back) */
  int seq[9] = {0, 1, 0, 1, 2, 2, 2, 0, 0}, used_after_b = 0;
  for (int i = 0; i < 9; i++) {
    CHECK(rdt_model_sample(gm, &in[seq[i]]->in, in[seq[i]]->noise, out) == 0);
    CHECK_MSG(memcmp(out, ref[seq[i]], 4 * n) == 0, "call %d (batch %c) differs from the direct run", i, 'a' + seq[i]);
    if (i == 1) used_after_b = is_graph_used(gm);
  }
  CHECK_MSG(used_after_b, "no graph was recorded");
  fprintf(stderr, "  graph replays equal the direct runs bitwise (%s)\n", is_graph_used(gm) ? "graph used" : "no graph");
  unsetenv("RDT_CUDA_GRAPH");
  for (int k = 0; k < 3; k++) free(ref[k]);
  free(out);
  free_batch(&a), free_batch(&b), free_batch(&c);
  rdt_model_free(gm);
  k_close(g);
}

#ifdef RDT_TEST_PREDICT_CUDA
#define CUDA_VARIANT 1
#else
#define CUDA_VARIANT 0
#endif

int main(void) {
  if (CUDA_VARIANT && !k_cuda_available()) {
    fprintf(stderr, "skipped: no CUDA device visible\n");
    return 77;
  }
  cfg = tiny_config();
  be = k_open("cpu", 1);
  if (!be) return fprintf(stderr, "%s\n", rdt_error()), 1;
  dir = test_tmpdir("model-predict");
  model = rdt_model_new(be, &cfg);
  free(random_params(model, 40));
  CHECK(rdt_mkdirs(at("w")) == 0);
  snprintf(weights, sizeof weights, "%s", at("w/model.safetensors"));
  CHECK(rdt_model_save(model, NULL, weights, RDT_F32) == 0);
  CHECK(rdt_model_config_write(&cfg, at("w/config.json")) == 0);
  if (CUDA_VARIANT) {
    RUN(t_cuda);
    RUN(t_cuda_graph);
  } else {
    RUN(t_forward);
    RUN(t_loss_grads);
    RUN(t_sample);
    RUN(t_cpu_bf16);
    RUN(t_malformed);
  }
  rdt_model_free(model);
  k_close(be);
  test_sh("rm -rf '%s'", dir);
  return test_done();
}
