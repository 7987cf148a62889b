/* tests/model/forward_test.c: the RDT forward pass of configs/tiny.yaml against
 * an independent double-precision reference written here from the upstream
 * definitions (RDTRunner.compute_loss, RDT.forward, RDTBlock, timm Attention /
 * Mlp / RmsNorm 1.0.3, CrossAttention, TimestepEmbedder, FinalLayer), stage by
 * stage; plus initialisation, load/save and the forward/sample APIs. */
#include <stdarg.h>
#include "model_util.h"
#include "core/safetensors.h"

static rdt_model_config cfg;
static k_backend *be;

/* ================================================================ reference */

static const rdt_model *ref_m;     /* only its public name table is used */
static const float *ref_p;         /* host parameters */

/* A parameter by upstream name. */
static const float *P(const char *fmt, ...) {
  char name[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  int i = rdt_model_param_find(ref_m, name);
  if (i < 0) {
    fprintf(stderr, "no parameter %s\n", name);
    exit(2);
  }
  return ref_p + rdt_model_param(ref_m, i)->offset;
}

/* y[M, N] = x[M, K] W[N, K]^T + b */
static void linear(double *y, const double *x, const float *W, const float *b, int M, int N, int K) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = b ? b[j] : 0;
      for (int k = 0; k < K; k++) s += x[(size_t)i * K + k] * W[(size_t)j * K + k];
      y[(size_t)i * N + j] = s;
    }
}

/* timm 1.0.3 RmsNorm: x * rsqrt(var(x, unbiased) + 1e-6) * w. */
static void rmsnorm(double *y, const double *x, const float *w, int rows, int dim) {
  for (int r = 0; r < rows; r++) {
    const double *xr = x + (size_t)r * dim;
    double mean = 0, var = 0;
    for (int i = 0; i < dim; i++) mean += xr[i];
    mean /= dim;
    for (int i = 0; i < dim; i++) var += (xr[i] - mean) * (xr[i] - mean);
    var /= dim - 1;
    for (int i = 0; i < dim; i++) y[(size_t)r * dim + i] = xr[i] / sqrt(var + 1e-6) * w[i];
  }
}

static double gelu(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
static double silu(double x) { return x / (1 + exp(-x)); }

/* nn.Sequential(Linear, (act, Linear) x (n-1)) named fmt % (2 i) for layer i. */
static double *mlp(const double *x, int rows, const char *fmt, int n, int use_silu, const int *dims) {
  char w[96], b[96], layer[64];
  double *cur = rdt_malloc(sizeof(double) * rows * dims[0]);
  memcpy(cur, x, sizeof(double) * rows * dims[0]);
  for (int i = 0; i < n; i++) {
    if (i > 0)
      for (size_t k = 0; k < (size_t)rows * dims[i]; k++) cur[k] = use_silu ? silu(cur[k]) : gelu(cur[k]);
    double *y = rdt_malloc(sizeof(double) * rows * dims[i + 1]);
    snprintf(layer, sizeof layer, fmt, 2 * i);
    snprintf(w, sizeof w, "%s.weight", layer);
    snprintf(b, sizeof b, "%s.bias", layer);
    linear(y, cur, P("%s", w), P("%s", b), rows, dims[i + 1], dims[i]);
    free(cur);
    cur = y;
  }
  return cur;
}

/* softmax(q k^T * hd^-1/2, masked keys excluded) v per batch and head;
 * q [B, Tq, H], k, v [B, Tk, H], heads contiguous in H. */
static void attention(double *out, const double *q, const double *k, const double *v, const uint8_t *mask,
                      int B, int Tq, int Tk, int nh, int hd) {
  int H = nh * hd;
  double *s = rdt_malloc(sizeof(double) * Tk);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < nh; h++)
      for (int i = 0; i < Tq; i++) {
        const double *qi = q + ((size_t)b * Tq + i) * H + h * hd;
        double mx = -INFINITY, z = 0;
        for (int j = 0; j < Tk; j++) {
          const double *kj = k + ((size_t)b * Tk + j) * H + h * hd;
          double d = 0;
          for (int e = 0; e < hd; e++) d += qi[e] * kj[e];
          s[j] = mask && !mask[b * Tk + j] ? -INFINITY : d / sqrt((double)hd);
          if (s[j] > mx) mx = s[j];
        }
        for (int j = 0; j < Tk; j++) z += s[j] = exp(s[j] - mx);
        double *o = out + ((size_t)b * Tq + i) * H + h * hd;
        for (int e = 0; e < hd; e++) {
          double acc = 0;
          for (int j = 0; j < Tk; j++) acc += s[j] / z * v[((size_t)b * Tk + j) * H + h * hd + e];
          o[e] = acc;
        }
      }
  free(s);
}

/* Attention sublayer: q from x, k/v from c (c == x for self-attention), per-head
 * qk RmsNorm, output projection.  qw/kw/vw: weight row blocks [H, H]. */
static void attn_sublayer(double *out, const double *xn, const double *c, int B, int T, int Lc, const float *qw,
                          const float *qb, const float *kw, const float *kb, const float *vw, const float *vb,
                          const float *qn, const float *kn, const float *pw, const float *pb,
                          const uint8_t *mask) {
  int H = cfg.hidden_size, nh = cfg.num_heads, hd = H / nh;
  size_t nq = (size_t)B * T * H, nk = (size_t)B * Lc * H;
  double *q = rdt_malloc(8 * nq), *k = rdt_malloc(8 * nk), *v = rdt_malloc(8 * nk), *a = rdt_malloc(8 * nq);
  linear(q, xn, qw, qb, B * T, H, H);
  linear(k, c, kw, kb, B * Lc, H, H);
  linear(v, c, vw, vb, B * Lc, H, H);
  rmsnorm(q, q, qn, B * T * nh, hd);
  rmsnorm(k, k, kn, B * Lc * nh, hd);
  attention(a, q, k, v, mask, B, T, Lc, nh, hd);
  linear(out, a, pw, pb, B * T, H, H);
  free(q), free(k), free(v), free(a);
}

/* DiT timestep embedding, 256 dims: [cos(t f), sin(t f)], f_i = 1e4^(-i/128). */
static void timestep_embedding(double *out, double t) {
  for (int i = 0; i < 128; i++) {
    double f = exp(-log(10000.0) * i / 128);
    out[i] = cos(t * f);
    out[128 + i] = sin(t * f);
  }
}

/* alphas_cumprod[t] of squaredcos_cap_v2 in double (beta clipped at 0.999). */
static double abar(int64_t t) {
  double prod = 1;
  for (int64_t i = 0; i <= t; i++) {
    double c1 = cos((i / 1000.0 + 0.008) / 1.008 * M_PI / 2), c2 = cos(((i + 1) / 1000.0 + 0.008) / 1.008 * M_PI / 2);
    double beta = 1 - (c2 * c2) / (c1 * c1);
    prod *= 1 - (beta < 0.999 ? beta : 0.999);
  }
  return prod;
}

/* The reference's named stages. */
typedef struct {
  double *lang_cond, *img_cond, *sat, *t_emb, *f_emb, *x_embed, *stages[3 * 8], *final, *pred, loss;
} ref_out;

/* compute_loss of upstream RDTRunner in double (noisy action from the batch's
 * gt, noise and timesteps), keeping every stage. */
static ref_out reference(const test_batch *tb, int B, int L, int use_mask, const double *noisy_override) {
  ref_out r;
  int H = cfg.hidden_size, h = cfg.pred_horizon, D = cfg.action_dim, T = h + 3, Li = cfg.img_cond_len;
  size_t chunk = (size_t)h * D;
  /* adaptors */
  double *lang = rdt_malloc(8 * (size_t)B * L * cfg.lang_token_dim), *img = rdt_malloc(8 * (size_t)B * Li * cfg.img_token_dim);
  for (size_t i = 0; i < (size_t)B * L * cfg.lang_token_dim; i++) lang[i] = tb->lang[i];
  for (size_t i = 0; i < (size_t)B * Li * cfg.img_token_dim; i++) img[i] = tb->img[i];
  int ld[3] = {cfg.lang_token_dim, H, H}, id[3] = {cfg.img_token_dim, H, H}, sd[4] = {2 * D, H, H, H};
  r.lang_cond = mlp(lang, B * L, "lang_adaptor.%d", 2, 0, ld);
  r.img_cond = mlp(img, B * Li, "img_adaptor.%d", 2, 0, id);
  double *sa_in = rdt_malloc(8 * (size_t)B * (1 + h) * 2 * D);
  for (int b = 0; b < B; b++)
    for (int row = 0; row <= h; row++)
      for (int d = 0; d < D; d++) {
        double *o = sa_in + ((size_t)b * (1 + h) + row) * 2 * D;
        size_t g = b * chunk + (size_t)(row - 1) * D + d;
        double a = sqrt(abar(tb->t[b])), c = sqrt(1 - abar(tb->t[b]));
        double xt = noisy_override ? (row ? noisy_override[g] : 0) : (row ? a * tb->gt[g] + c * tb->noise[g] : 0);
        o[d] = row == 0 ? tb->state[b * D + d] : xt;
        o[D + d] = tb->amask[b * D + d];
      }
  r.sat = mlp(sa_in, B * (1 + h), "state_adaptor.%d", 3, 0, sd);
  /* timestep and control frequency embedders */
  double *tf = rdt_malloc(8 * B * 256), *ff = rdt_malloc(8 * B * 256);
  for (int b = 0; b < B; b++) timestep_embedding(tf + b * 256, (double)tb->t[b]), timestep_embedding(ff + b * 256, tb->freqs[b]);
  int ed[3] = {256, H, H};
  r.t_emb = mlp(tf, B, "model.t_embedder.mlp.%d", 2, 1, ed);
  r.f_emb = mlp(ff, B, "model.freq_embedder.mlp.%d", 2, 1, ed);
  /* tokens [t, freq, state, actions] + x_pos_embed; conditions + their pos embeds */
  double *x = r.x_embed = rdt_malloc(8 * (size_t)B * T * H);
  const float *xpos = P("model.x_pos_embed"), *lpos = P("model.lang_cond_pos_embed"), *ipos = P("model.img_cond_pos_embed");
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int i = 0; i < H; i++) {
        double v = t == 0 ? r.t_emb[b * H + i] : t == 1 ? r.f_emb[b * H + i] : r.sat[((size_t)b * (1 + h) + t - 2) * H + i];
        x[((size_t)b * T + t) * H + i] = v + xpos[t * H + i];
      }
  double *lc = rdt_malloc(8 * (size_t)B * L * H), *ic = rdt_malloc(8 * (size_t)B * Li * H);
  for (size_t i = 0; i < (size_t)B * L * H; i++) lc[i] = r.lang_cond[i] + lpos[i % ((size_t)L * H)];
  for (size_t i = 0; i < (size_t)B * Li * H; i++) ic[i] = r.img_cond[i] + ipos[i % ((size_t)Li * H)];
  /* blocks */
  size_t NH = (size_t)B * T * H, HH = (size_t)H * H;
  double *xn = rdt_malloc(8 * NH), *y = rdt_malloc(8 * NH), *cur = rdt_malloc(8 * NH);
  memcpy(cur, x, 8 * NH);
  for (int i = 0; i < cfg.depth; i++) {
    const float *qkv = P("model.blocks.%d.attn.qkv.weight", i), *qkvb = P("model.blocks.%d.attn.qkv.bias", i);
    rmsnorm(xn, cur, P("model.blocks.%d.norm1.weight", i), B * T, H);
    attn_sublayer(y, xn, xn, B, T, T, qkv, qkvb, qkv + HH, qkvb + H, qkv + 2 * HH, qkvb + 2 * H,
                  P("model.blocks.%d.attn.q_norm.weight", i), P("model.blocks.%d.attn.k_norm.weight", i),
                  P("model.blocks.%d.attn.proj.weight", i), P("model.blocks.%d.attn.proj.bias", i), NULL);
    for (size_t k = 0; k < NH; k++) cur[k] += y[k];
    r.stages[3 * i] = rdt_malloc(8 * NH), memcpy(r.stages[3 * i], cur, 8 * NH);
    const float *kv = P("model.blocks.%d.cross_attn.kv.weight", i), *kvb = P("model.blocks.%d.cross_attn.kv.bias", i);
    rmsnorm(xn, cur, P("model.blocks.%d.norm2.weight", i), B * T, H);
    attn_sublayer(y, xn, i % 2 ? ic : lc, B, T, i % 2 ? Li : L, P("model.blocks.%d.cross_attn.q.weight", i),
                  P("model.blocks.%d.cross_attn.q.bias", i), kv, kvb, kv + HH, kvb + H,
                  P("model.blocks.%d.cross_attn.q_norm.weight", i), P("model.blocks.%d.cross_attn.k_norm.weight", i),
                  P("model.blocks.%d.cross_attn.proj.weight", i), P("model.blocks.%d.cross_attn.proj.bias", i),
                  i % 2 == 0 && use_mask ? tb->mask : NULL);
    for (size_t k = 0; k < NH; k++) cur[k] += y[k];
    r.stages[3 * i + 1] = rdt_malloc(8 * NH), memcpy(r.stages[3 * i + 1], cur, 8 * NH);
    rmsnorm(xn, cur, P("model.blocks.%d.norm3.weight", i), B * T, H);
    linear(y, xn, P("model.blocks.%d.ffn.fc1.weight", i), P("model.blocks.%d.ffn.fc1.bias", i), B * T, H, H);
    for (size_t k = 0; k < NH; k++) y[k] = gelu(y[k]);
    linear(xn, y, P("model.blocks.%d.ffn.fc2.weight", i), P("model.blocks.%d.ffn.fc2.bias", i), B * T, H, H);
    for (size_t k = 0; k < NH; k++) cur[k] += xn[k];
    r.stages[3 * i + 2] = rdt_malloc(8 * NH), memcpy(r.stages[3 * i + 2], cur, 8 * NH);
  }
  /* final layer and the action tokens */
  rmsnorm(xn, cur, P("model.final_layer.norm_final.weight"), B * T, H);
  linear(y, xn, P("model.final_layer.ffn_final.fc1.weight"), P("model.final_layer.ffn_final.fc1.bias"), B * T, H, H);
  for (size_t k = 0; k < NH; k++) y[k] = gelu(y[k]);
  r.final = rdt_malloc(8 * (size_t)B * T * D);
  linear(r.final, y, P("model.final_layer.ffn_final.fc2.weight"), P("model.final_layer.ffn_final.fc2.bias"), B * T, D, H);
  r.pred = rdt_malloc(8 * B * chunk);
  r.loss = 0;
  for (int b = 0; b < B; b++)
    for (size_t k = 0; k < chunk; k++) {
      r.pred[b * chunk + k] = r.final[((size_t)b * T + 3) * D + k];
      double d = r.pred[b * chunk + k] - tb->gt[b * chunk + k];
      r.loss += d * d / (B * chunk);
    }
  free(lang), free(img), free(sa_in), free(tf), free(ff), free(lc), free(ic), free(xn), free(y), free(cur);
  return r;
}

static void free_ref(ref_out *r) {
  free(r->lang_cond), free(r->img_cond), free(r->sat), free(r->t_emb), free(r->f_emb), free(r->x_embed);
  for (int i = 0; i < 3 * cfg.depth; i++) free(r->stages[i]);
  free(r->final), free(r->pred);
}

/* ‖model − ref‖ / ‖ref‖ of a named activation. */
static double stage_err(rdt_model *m, const char *name, const double *ref) {
  size_t n = rdt_model_activation_numel(m, name);
  CHECK_MSG(n > 0, "activation %s missing", name);
  if (!n) return 1;
  float *got = rdt_malloc(n * sizeof(float));
  double *g = rdt_malloc(n * sizeof(double));
  CHECK(rdt_model_activation(m, name, got, n) == 0);
  for (size_t i = 0; i < n; i++) g[i] = got[i];
  double e = test_rel_err(g, ref, n);
  free(got), free(g);
  return e;
}

/* ================================================================ tests */

/* Every stage of the training forward pass, with a language mask. */
static void t_stages(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  CHECK(m != NULL);
  float *p = random_params(m, 1);
  ref_m = m, ref_p = p;
  int B = 2, L = 7;
  test_batch tb = random_batch(&cfg, B, L, 2);
  float loss = 0;
  CHECK(rdt_model_loss(m, &tb.in, tb.gt, tb.noise, tb.t, 1, 1.0f, &loss) == 0);
  ref_out r = reference(&tb, B, L, 1, NULL);
  struct { const char *name; const double *ref; } st[] = {
    {"lang_cond", r.lang_cond}, {"img_cond", r.img_cond}, {"state_action_traj", r.sat}, {"t_emb", r.t_emb},
    {"freq_emb", r.f_emb}, {"x_embed", r.x_embed}, {"final", r.final}, {"pred", r.pred}};
  double worst = 0;
  for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
    double e = stage_err(m, st[i].name, st[i].ref);
    CHECK_MSG(e < 1e-4, "%s: relative error %.3g", st[i].name, e);
    worst = fmax(worst, e);
  }
  const char *sub[3] = {"attn", "cross", "ffn"};
  char name[64];
  for (int i = 0; i < cfg.depth; i++)
    for (int k = 0; k < 3; k++) {
      snprintf(name, sizeof name, "block.%d.%s", i, sub[k]);
      double e = stage_err(m, name, r.stages[3 * i + k]);
      CHECK_MSG(e < 1e-4, "%s: relative error %.3g", name, e);
      worst = fmax(worst, e);
    }
  fprintf(stderr, "  worst stage relative error %.3g\n", worst);
  CHECK_CLOSE(loss, r.loss, 1e-5, 0);
  fprintf(stderr, "  loss %.7f (reference %.7f)\n", loss, r.loss);
  /* the mask matters: the reference without it differs */
  ref_out r2 = reference(&tb, B, L, 0, NULL);
  CHECK(test_rel_err(r2.pred, r.pred, (size_t)B * cfg.pred_horizon * cfg.action_dim) > 1e-3);
  free_ref(&r), free_ref(&r2);
  free_batch(&tb);
  free(p);
  rdt_model_free(m);
}

/* rdt_model_forward (inference plan, no language mask) at given noisy actions. */
static void t_forward_api(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  float *p = random_params(m, 3);
  ref_m = m, ref_p = p;
  int B = 3, L = 5;
  test_batch tb = random_batch(&cfg, B, L, 4);
  tb.in.lang_mask = NULL;
  size_t n = (size_t)B * cfg.pred_horizon * cfg.action_dim;
  double *noisy = rdt_malloc(8 * n);
  for (size_t i = 0; i < n; i++) noisy[i] = tb.noise[i];
  float *pred = rdt_malloc(4 * n);
  CHECK(rdt_model_forward(m, &tb.in, tb.noise, tb.t, pred) == 0);
  ref_out r = reference(&tb, B, L, 0, noisy);
  double *g = rdt_malloc(8 * n);
  for (size_t i = 0; i < n; i++) g[i] = pred[i];
  double e = test_rel_err(g, r.pred, n);
  CHECK_MSG(e < 1e-4, "forward: relative error %.3g", e);
  /* bad inputs fail cleanly */
  int64_t bad_t[3] = {0, 1000, 5};
  CHECK(rdt_model_forward(m, &tb.in, tb.noise, bad_t, pred) == -1);
  tb.in.L = cfg.max_lang_cond_len + 1;
  CHECK(rdt_model_forward(m, &tb.in, tb.noise, tb.t, pred) == -1);
  free_ref(&r), free(noisy), free(pred), free(g), free(p);
  free_batch(&tb);
  rdt_model_free(m);
}

/* Image tokens handed over in a backend buffer (rdt_batch.img_tokens_dev, the
 * SigLIP-on-GPU path of rdt train) give bitwise the loss and gradients of the
 * same tokens from host memory. */
static void t_img_tokens_dev(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  float *p = random_params(m, 5);
  int B = 2, L = 4;
  test_batch tb = random_batch(&cfg, B, L, 9);
  size_t n = rdt_model_numel(m), ni = (size_t)B * cfg.img_cond_len * cfg.img_token_dim;
  float loss[2], *grads[2];
  void *dev = k_alloc(be, ni * k_act_size(be));
  k_upload_act(be, dev, tb.img, ni);
  for (int k = 0; k < 2; k++) {
    rdt_batch in = tb.in;
    if (k == 1) in.img_tokens = NULL, in.img_tokens_dev = dev;
    rdt_model_zero_grad(m);
    CHECK(rdt_model_loss(m, &in, tb.gt, tb.noise, tb.t, 1, 1.0f, &loss[k]) == 0);
    grads[k] = rdt_malloc(n * sizeof(float));
    k_download(be, grads[k], rdt_model_grads(m), n * sizeof(float));
  }
  CHECK_MSG(loss[0] == loss[1], "loss %.9g (host tokens) vs %.9g (device tokens)", loss[0], loss[1]);
  CHECK(memcmp(grads[0], grads[1], n * sizeof(float)) == 0);
  rdt_batch none = tb.in;
  none.img_tokens = NULL;   /* neither: refused */
  CHECK(rdt_model_loss(m, &none, tb.gt, tb.noise, tb.t, 0, 1.0f, &loss[0]) == -1);
  k_free(be, dev);
  free(grads[0]), free(grads[1]), free(p);
  free_batch(&tb);
  rdt_model_free(m);
}

/* 1-D MAE sincos of position pos into out[dim]: [sin(pos w_i), cos(pos w_i)], w_i = 1e4^(-2i/dim). */
static void mae_sincos(double *out, int dim, double pos) {
  for (int i = 0; i < dim / 2; i++) {
    out[i] = sin(pos * pow(10000.0, -2.0 * i / dim));
    out[dim / 2 + i] = cos(pos * pow(10000.0, -2.0 * i / dim));
  }
}

/* Upstream initialize_weights: position embeddings from the sincos formulas,
 * unit norms, zero biases and final projection, xavier / N(0, 0.02) /
 * PyTorch-default bounds, deterministic per seed. */
static void t_init(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  size_t n = rdt_model_numel(m);
  float *a = rdt_malloc(4 * n), *b2 = rdt_malloc(4 * n);
  rdt_model_init(m, 42);
  k_download(be, a, rdt_model_params(m), 4 * n);
  rdt_model_init(m, 42);
  k_download(be, b2, rdt_model_params(m), 4 * n);
  CHECK(memcmp(a, b2, 4 * n) == 0);
  rdt_model_init(m, 43);
  k_download(be, b2, rdt_model_params(m), 4 * n);
  CHECK(memcmp(a, b2, 4 * n) != 0);
  ref_m = m, ref_p = a;
  int H = cfg.hidden_size, h2 = H / 2;
  double want[4096], tmp[4096];
  /* x_pos_embed: [modality sincos (H/2) | position-in-modality sincos (H/2)] */
  const float *xp = P("model.x_pos_embed");
  double err = 0;
  for (int t = 0; t < cfg.pred_horizon + 3; t++) {
    mae_sincos(want, h2, t < 3 ? t : 3);
    mae_sincos(tmp, h2, t < 3 ? 0 : t - 3);
    for (int i = 0; i < h2; i++) want[h2 + i] = tmp[i];
    for (int i = 0; i < H; i++) err = fmax(err, fabs(xp[t * H + i] - want[i]));
  }
  CHECK_MSG(err < 1e-6, "x_pos_embed max error %.3g", err);
  /* lang: ("lang", -len): no position information, mae_sincos(0) = [0..0, 1..1] */
  const float *lp = P("model.lang_cond_pos_embed");
  err = 0;
  for (int t = 0; t < cfg.max_lang_cond_len; t++)
    for (int i = 0; i < H; i++) err = fmax(err, fabs(lp[t * H + i] - (i < h2 ? 0 : 1)));
  CHECK_MSG(err == 0, "lang_cond_pos_embed max error %.3g", err);
  /* image: ("image", (history, cameras, -tokens)): [mae_sincos(history) | mae_sincos(camera)] */
  const float *ip = P("model.img_cond_pos_embed");
  err = 0;
  for (int t = 0; t < cfg.img_cond_len; t++) {
    int frame = t / (cfg.num_cameras * cfg.img_tokens_per_image), cam = (t / cfg.img_tokens_per_image) % cfg.num_cameras;
    mae_sincos(want, h2, frame);
    mae_sincos(tmp, h2, cam);
    for (int i = 0; i < h2; i++) want[h2 + i] = tmp[i];
    for (int i = 0; i < H; i++) err = fmax(err, fabs(ip[t * H + i] - want[i]));
  }
  CHECK_MSG(err < 1e-6, "img_cond_pos_embed max error %.3g", err);
  /* the rest by kind */
  for (int k = 0; k < rdt_model_param_count(m); k++) {
    const rdt_param_info *t = rdt_model_param(m, k);
    const float *x = a + t->offset;
    double mx = 0, ss = 0;
    for (size_t i = 0; i < t->numel; i++) mx = fmax(mx, fabs(x[i])), ss += (double)x[i] * x[i];
    double sd = sqrt(ss / t->numel);
    int inside = strncmp(t->name, "model.", 6) == 0, bias = strstr(t->name, ".bias") != NULL;
    if (strstr(t->name, "pos_embed")) continue;
    if (t->ndim == 1 && strstr(t->name, "norm")) {
      for (size_t i = 0; i < t->numel; i++) CHECK_MSG(x[i] == 1.0f, "%s not ones", t->name);
    } else if (inside && (bias || strstr(t->name, "ffn_final.fc2"))) {
      CHECK_MSG(mx == 0, "%s not zero", t->name);
    } else if (strstr(t->name, "embedder")) {
      CHECK_MSG(fabs(sd - 0.02) < 0.002, "%s: std %.4f, want 0.02", t->name, sd);
    } else if (inside) {
      double bound = sqrt(6.0 / (t->shape[0] + t->shape[1]));
      CHECK_MSG(mx <= bound && mx > 0.95 * bound && fabs(sd - bound / sqrt(3)) < 0.05 * bound,
                "%s: xavier bound %.4f, max %.4f, std %.4f", t->name, bound, mx, sd);
    } else {
      const rdt_param_info *w = bias ? rdt_model_param(m, k - 1) : t;
      double bound = 1 / sqrt((double)w->shape[1]);
      CHECK_MSG(mx <= bound && mx > 0.8 * bound, "%s: bound %.4f, max %.4f", t->name, bound, mx);
    }
  }
  free(a), free(b2);
  rdt_model_free(m);
}

/* Save F32/BF16 and load back; strict loading lists every problem. */
static void t_load_save(void) {
  rdt_model *m = rdt_model_new(be, &cfg), *m2 = rdt_model_new(be, &cfg);
  float *p = random_params(m, 5);
  size_t n = rdt_model_numel(m);
  const char *dir = test_tmpdir("model-io");
  char f32[4200], bf16[4200], bad[4200];
  snprintf(f32, sizeof f32, "%s/f32.safetensors", dir);
  snprintf(bf16, sizeof bf16, "%s/bf16.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
  CHECK(rdt_model_save(m, NULL, f32, RDT_F32) == 0);
  CHECK(rdt_model_save(m, NULL, bf16, RDT_BF16) == 0);
  float *q = rdt_malloc(4 * n);
  rdt_st *st = rdt_st_open(f32);
  CHECK(st && rdt_st_count(st) == rdt_model_param_count(m));
  CHECK(rdt_model_load(m2, st, NULL) == 0);
  k_download(be, q, rdt_model_params(m2), 4 * n);
  CHECK(memcmp(p, q, 4 * n) == 0);
  rdt_st_close(st);
  st = rdt_st_open(bf16);
  CHECK(st && rdt_model_load(m2, st, NULL) == 0);
  k_download(be, q, rdt_model_params(m2), 4 * n);
  size_t bad_bits = 0;
  for (size_t i = 0; i < n; i++) bad_bits += q[i] != rdt_bf16_to_f32(rdt_f32_to_bf16(p[i]));
  CHECK(bad_bits == 0);
  rdt_st_close(st);
  /* a file with one tensor missing, one renamed (unexpected) and one reshaped */
  rdt_st_writer *w = rdt_st_writer_new();
  for (int i = 0; i < rdt_model_param_count(m); i++) {
    const rdt_param_info *t = rdt_model_param(m, i);
    if (strcmp(t->name, "model.blocks.1.norm2.weight") == 0) continue;
    int64_t shape[3] = {t->shape[0], t->shape[1], t->shape[2]};
    const char *name = strcmp(t->name, "img_adaptor.2.bias") == 0 ? "img_adaptor.3.bias" : t->name;
    if (strcmp(t->name, "state_adaptor.0.weight") == 0) shape[0] = t->shape[1], shape[1] = t->shape[0];
    rdt_st_writer_add(w, name, RDT_F32, t->ndim, shape, p + t->offset);
  }
  CHECK(rdt_st_writer_save(w, bad) == 0);
  rdt_st_writer_free(w);
  st = rdt_st_open(bad);
  CHECK(st && rdt_model_load(m2, st, NULL) == -1);
  const char *e = rdt_error();
  CHECK_MSG(strstr(e, "model.blocks.1.norm2.weight") && strstr(e, "img_adaptor.3.bias") &&
            strstr(e, "img_adaptor.2.bias") && strstr(e, "state_adaptor.0.weight"), "%s", e);
  rdt_st_close(st);
  free(p), free(q);
  rdt_model_free(m), rdt_model_free(m2);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* Sampling: caching conditions or not gives bit-identical actions; a batch of
 * two equals two batches of one; the action mask zeroes masked dims. */
static void t_sample(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  float *p = random_params(m, 6);
  int B = 2, L = 6;
  test_batch tb = random_batch(&cfg, B, L, 7);
  size_t chunk = (size_t)cfg.pred_horizon * cfg.action_dim;
  float *a1 = rdt_malloc(4 * B * chunk), *a2 = rdt_malloc(4 * B * chunk), *a3 = rdt_malloc(4 * B * chunk);
  CHECK(rdt_model_sample(m, &tb.in, tb.noise, a1) == 0);
  rdt_model_set_cond_cache(m, 0);
  CHECK(rdt_model_sample(m, &tb.in, tb.noise, a2) == 0);
  CHECK(memcmp(a1, a2, 4 * B * chunk) == 0);
  rdt_model_set_cond_cache(m, 1);
  for (int b = 0; b < B; b++) {
    rdt_batch one = {.B = 1, .L = L, .lang_tokens = tb.lang + (size_t)b * L * cfg.lang_token_dim,
                     .lang_mask = tb.mask + b * L, .img_tokens = tb.img + (size_t)b * cfg.img_cond_len * cfg.img_token_dim,
                     .state_tokens = tb.state + b * cfg.state_token_dim, .action_mask = tb.amask + b * cfg.action_dim,
                     .ctrl_freqs = tb.freqs + b};
    CHECK(rdt_model_sample(m, &one, tb.noise + b * chunk, a3 + b * chunk) == 0);
  }
  double err = 0, nz = 0;
  for (size_t i = 0; i < B * chunk; i++) {
    err = fmax(err, fabs(a1[i] - a3[i]));
    int dim = i % cfg.action_dim, b = (int)(i / chunk);
    if (tb.amask[b * cfg.action_dim + dim] == 0) CHECK(a1[i] == 0);
    else nz += fabs(a1[i]);
  }
  CHECK_MSG(err < 1e-5, "batch of 2 vs 2 x 1: %.3g", err);
  CHECK(nz > 0);
  free(a1), free(a2), free(a3), free(p);
  free_batch(&tb);
  rdt_model_free(m);
}

int main(void) {
  cfg = tiny_config();
  be = k_open("cpu", 1);
  if (!be) {
    fprintf(stderr, "cpu backend: %s\n", rdt_error());
    return 1;
  }
  RUN(t_stages);
  RUN(t_forward_api);
  RUN(t_img_tokens_dev);
  RUN(t_init);
  RUN(t_load_save);
  RUN(t_sample);
  k_close(be);
  return test_done();
}
