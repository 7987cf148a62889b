/* tests/kernels/ops_test.c: every forward op of the CPU backend against a
 * double-precision reference on random inputs with odd sizes, plus a few
 * hand-worked cases. */
#include "kref.h"

static k_backend *B_;

/* ---------------------------------------------------------------- linear */
static void check_linear(int M, int N, int K, int with_bias) {
  float *x = kref_rand((size_t)M * K, -1, 1), *W = kref_rand((size_t)N * K, -1, 1), *b = kref_rand(N, -1, 1);
  double *xd = kref_to_double(x, (size_t)M * K), *Wd = kref_to_double(W, (size_t)N * K), *bd = kref_to_double(b, N);
  double *ref = rdt_malloc((size_t)M * N * sizeof(double));
  kref_linear(ref, xd, Wd, with_bias ? bd : NULL, M, N, K);
  void *dx = kref_up(B_, x, (size_t)M * K), *dW = kref_up(B_, W, (size_t)N * K), *dy = k_alloc(B_, (size_t)M * N * 4);
  float *db = k_alloc(B_, (size_t)N * 4);
  k_upload(B_, db, b, (size_t)N * 4);
  k_linear(B_, dy, dx, dW, with_bias ? db : NULL, M, N, K);
  float *y = kref_down(B_, dy, (size_t)M * N);
  char what[64];
  snprintf(what, sizeof what, "linear %dx%dx%d bias=%d", M, N, K, with_bias);
  KREF_CHECK(what, y, ref, (size_t)M * N, 1e-5);
  k_free(B_, dx), k_free(B_, dW), k_free(B_, dy), k_free(B_, db);
  free(x), free(W), free(b), free(xd), free(Wd), free(bd), free(ref), free(y);
}

static void t_linear(void) {
  check_linear(1, 1, 1, 1);
  check_linear(3, 5, 7, 0);
  check_linear(3, 5, 7, 1);
  check_linear(67, 129, 65, 1);
  check_linear(130, 400, 33, 1);   /* tiled by columns */
  check_linear(800, 40, 70, 0);    /* tiled by rows */
}

/* The fused ops against references built from the double ones: Linear + GELU
 * (the pre-activation and the activation), residual sum + RmsNorm. */
static void t_fused(void) {
  int M = 67, N = 129, K = 65, rows = 33, dim = 129;
  float *x = kref_rand((size_t)M * K, -1, 1), *W = kref_rand((size_t)N * K, -1, 1), *b = kref_rand(N, -1, 1);
  double *xd = kref_to_double(x, (size_t)M * K), *Wd = kref_to_double(W, (size_t)N * K), *bd = kref_to_double(b, N);
  double *pre = rdt_malloc((size_t)M * N * sizeof(double)), *act = rdt_malloc((size_t)M * N * sizeof(double));
  kref_linear(pre, xd, Wd, bd, M, N, K);
  for (size_t i = 0; i < (size_t)M * N; i++) act[i] = kref_gelu(pre[i]);
  void *dx = kref_up(B_, x, (size_t)M * K), *dW = kref_up(B_, W, (size_t)N * K);
  void *dpre = k_alloc(B_, (size_t)M * N * 4), *dact = k_alloc(B_, (size_t)M * N * 4);
  float *db = kref_up(B_, b, N);
  k_linear_gelu(B_, dpre, dact, dx, dW, db, M, N, K);
  float *ypre = kref_down(B_, dpre, (size_t)M * N), *yact = kref_down(B_, dact, (size_t)M * N);
  KREF_CHECK("linear_gelu pre", ypre, pre, (size_t)M * N, 1e-5);
  KREF_CHECK("linear_gelu act", yact, act, (size_t)M * N, 1e-5);
  size_t n = (size_t)rows * dim;
  float *a = kref_rand(n, -1, 1), *c = kref_rand(n, -1, 1), *w = kref_rand(dim, 0.5, 1.5);
  double *sd = rdt_malloc(n * sizeof(double)), *wd = kref_to_double(w, dim), *ref = rdt_malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) sd[i] = (double)a[i] + c[i];
  kref_rmsnorm(ref, sd, wd, rows, dim, 1e-6);
  void *da = kref_up(B_, a, n), *dc = kref_up(B_, c, n), *ds = k_alloc(B_, n * 4), *dy = k_alloc(B_, n * 4);
  float *rstd = k_alloc(B_, (size_t)rows * 4);
  k_add_rmsnorm(B_, ds, dy, rstd, da, dc, w, rows, dim, 1e-6f);
  float *s = kref_down(B_, ds, n), *y = kref_down(B_, dy, n);
  KREF_CHECK("add_rmsnorm sum", s, sd, n, 1e-7);
  KREF_CHECK("add_rmsnorm y", y, ref, n, 1e-5);
  /* two norms in one op: the sum's (ref above) and a's, with another weight */
  float *w2 = kref_rand(dim, 0.5, 1.5), *rstd2 = k_alloc(B_, (size_t)rows * 4);
  double *ad = kref_to_double(a, n), *w2d = kref_to_double(w2, dim), *ref2 = rdt_malloc(n * sizeof(double));
  kref_rmsnorm(ref2, ad, w2d, rows, dim, 1e-6);
  void *y0 = k_alloc(B_, n * 4), *y1 = k_alloc(B_, n * 4);
  k_rmsnorm_pair(B_, y0, rstd, ds, w, y1, rstd2, da, w2, rows, dim, 1e-6f);
  float *p0 = kref_down(B_, y0, n), *p1 = kref_down(B_, y1, n);
  KREF_CHECK("rmsnorm_pair y0", p0, ref, n, 1e-5);
  KREF_CHECK("rmsnorm_pair y1", p1, ref2, n, 1e-5);
  CHECK(memcmp(p0, y, n * 4) == 0);   /* bitwise k_rmsnorm's (here, of the same sum) */
  k_free(B_, y0), k_free(B_, y1), k_free(B_, rstd2);
  free(w2), free(ad), free(w2d), free(ref2), free(p0), free(p1);
  k_free(B_, dx), k_free(B_, dW), k_free(B_, dpre), k_free(B_, dact), k_free(B_, db);
  k_free(B_, da), k_free(B_, dc), k_free(B_, ds), k_free(B_, dy), k_free(B_, rstd);
  free(x), free(W), free(b), free(xd), free(Wd), free(bd), free(pre), free(act), free(ypre), free(yact);
  free(a), free(c), free(w), free(sd), free(wd), free(ref), free(s), free(y);
}

/* ---------------------------------------------------------------- norms */
static void check_rmsnorm(int rows, int dim, double offset) {
  size_t n = (size_t)rows * dim;
  float *x = kref_rand(n, -1 + offset, 1 + offset), *w = kref_rand(dim, 0.5, 1.5);
  double *xd = kref_to_double(x, n), *wd = kref_to_double(w, dim), *ref = rdt_malloc(n * sizeof(double));
  double eps = 1e-6;
  kref_rmsnorm(ref, xd, wd, rows, dim, eps);
  void *dx = kref_up(B_, x, n), *dy = k_alloc(B_, n * 4);
  float *rstd = k_alloc(B_, (size_t)rows * 4);
  k_rmsnorm(B_, dy, rstd, dx, w, rows, dim, (float)eps);
  float *y = kref_down(B_, dy, n);
  char what[80];
  snprintf(what, sizeof what, "rmsnorm %dx%d offset %g", rows, dim, offset);
  KREF_CHECK(what, y, ref, n, 1e-5);
  for (int r = 0; r < rows; r++) {   /* rstd = y / (x w) wherever x w is not tiny */
    int i = 0;
    while (i < dim - 1 && fabs(xd[(size_t)r * dim + i] * wd[i]) < 0.1) i++;
    CHECK_CLOSE(rstd[r], ref[(size_t)r * dim + i] / (xd[(size_t)r * dim + i] * wd[i]), 1e-5, 0);
  }
  k_free(B_, dx), k_free(B_, dy), k_free(B_, rstd);
  free(x), free(w), free(xd), free(wd), free(ref), free(y);
}

static void t_rmsnorm(void) {
  int dims[] = {2, 3, 67, 129, 1024};
  for (int i = 0; i < 5; i++) {
    check_rmsnorm(1, dims[i], 0);
    check_rmsnorm(3, dims[i], 0);
  }
  check_rmsnorm(67, 129, 5.0);   /* large mean: only the centred variance is small */
  /* Hand case: x = [1, 2, 3]: mean 2, unbiased variance (1 + 0 + 1) / 2 = 1, so
   * with eps = 0 and w = 1, y = x (a mean-square norm would divide by sqrt(14/3)). */
  float x[3] = {1, 2, 3}, w[3] = {1, 1, 1}, y[3], rs;
  k_rmsnorm(B_, y, &rs, x, w, 1, 3, 0.0f);
  for (int i = 0; i < 3; i++) CHECK_NEAR(y[i], x[i], 1e-6);
  CHECK_NEAR(rs, 1.0, 1e-6);
}

static void t_rmsnorm_meansq(void) {
  int rows = 5, dim = 131;
  size_t n = (size_t)rows * dim;
  float *x = kref_rand(n, -2, 2), *w = kref_rand(dim, -1, 1), *y = rdt_malloc(n * 4);
  double *ref = rdt_malloc(n * sizeof(double));
  for (int r = 0; r < rows; r++) {
    double ms = 0;
    for (int i = 0; i < dim; i++) ms += (double)x[r * dim + i] * x[r * dim + i];
    ms /= dim;
    for (int i = 0; i < dim; i++) ref[r * dim + i] = x[r * dim + i] / sqrt(ms + 1e-6) * w[i];
  }
  k_rmsnorm_meansq(B_, y, x, w, rows, dim, 1e-6f);
  KREF_CHECK("rmsnorm_meansq", y, ref, n, 1e-5);
  /* Hand case: x = [3, 4]: mean square 12.5, y = x / sqrt(12.5). */
  float xh[2] = {3, 4}, wh[2] = {1, 2}, yh[2];
  k_rmsnorm_meansq(B_, yh, xh, wh, 1, 2, 0.0f);
  CHECK_NEAR(yh[0], 3 / sqrt(12.5), 1e-6);
  CHECK_NEAR(yh[1], 8 / sqrt(12.5), 1e-6);
  free(x), free(w), free(y), free(ref);
}

static void t_layernorm(void) {
  int rows = 4, dim = 67;
  size_t n = (size_t)rows * dim;
  float *x = kref_rand(n, 1, 3), *w = kref_rand(dim, -1, 1), *bias = kref_rand(dim, -1, 1), *y = rdt_malloc(n * 4);
  double *ref = rdt_malloc(n * sizeof(double));
  for (int r = 0; r < rows; r++) {
    double mu = 0, var = 0;
    for (int i = 0; i < dim; i++) mu += x[r * dim + i];
    mu /= dim;
    for (int i = 0; i < dim; i++) var += (x[r * dim + i] - mu) * (x[r * dim + i] - mu);
    var /= dim;   /* LayerNorm: biased variance */
    for (int i = 0; i < dim; i++) ref[r * dim + i] = (x[r * dim + i] - mu) / sqrt(var + 1e-6) * w[i] + bias[i];
  }
  k_layernorm(B_, y, x, w, bias, rows, dim, 1e-6f);
  KREF_CHECK("layernorm", y, ref, n, 1e-5);
  free(x), free(w), free(bias), free(y), free(ref);
}

/* ---------------------------------------------------------------- activations */
static void check_act(const char *name, void (*op)(k_backend *, void *, const void *, size_t),
                      double (*ref)(double), size_t n, double lo, double hi) {
  float *x = kref_rand(n, lo, hi), *y = rdt_malloc(n * 4);
  op(B_, y, x, n);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double r = ref(x[i]);
    if (!(fabs(y[i] - r) <= 1e-5 * fabs(r) + 1e-30)) {   /* float u carries ~|u| ulp */
      if (!bad++) fprintf(stderr, "%s(%.9g) = %.9g, want %.9g\n", name, x[i], y[i], r);
    }
  }
  CHECK_MSG(bad == 0, "%s: %d of %zu elements off", name, bad, n);
  free(x), free(y);
}

static void t_activations(void) {
  size_t sizes[] = {1, 3, 67, 1000};
  for (int i = 0; i < 4; i++) {
    check_act("gelu", k_gelu, kref_gelu, sizes[i], -6, 6);
    check_act("silu", k_silu, kref_silu, sizes[i], -10, 10);
  }
  check_act("gelu", k_gelu, kref_gelu, 1001, -30, 30);
  check_act("silu", k_silu, kref_silu, 1001, -80, 80);
  float x[4] = {0, 100, -100, 1}, y[4];
  k_gelu(B_, y, x, 4);
  CHECK(y[0] == 0 && y[1] == 100 && fabs(y[2]) < 1e-30);
  CHECK_NEAR(y[3], 0.8411919906082768, 1e-6);   /* 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) */
}

static void t_softmax(void) {
  int rows = 5, cols = 67;
  size_t n = (size_t)rows * cols;
  float *x = kref_rand(n, -40, 40), *y = rdt_malloc(n * 4);   /* wide range: needs the max shift */
  double *ref = rdt_malloc(n * sizeof(double));
  for (int r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < cols; i++) mx = fmax(mx, x[r * cols + i]);
    for (int i = 0; i < cols; i++) s += exp(x[r * cols + i] - mx);
    for (int i = 0; i < cols; i++) ref[r * cols + i] = exp(x[r * cols + i] - mx) / s;
  }
  k_softmax(B_, y, x, rows, cols);
  KREF_CHECK("softmax", y, ref, n, 1e-5);
  for (int r = 0; r < rows; r++) {   /* each row: elementwise relative to its own values */
    for (int i = 0; i < cols; i++) CHECK_CLOSE(y[r * cols + i], ref[r * cols + i], 1e-5, 1e-30);
  }
  free(x), free(y), free(ref);
}

/* ---------------------------------------------------------------- attention */
static void check_attention(int B, int Tq, int Tk, int nh, int hd, int masked, int with_bias) {
  size_t nq = (size_t)B * Tq * nh * hd, nk = (size_t)B * Tk * nh * hd, nl = (size_t)B * nh * Tq;
  float *q = kref_rand(nq, -2, 2), *k = kref_rand(nk, -2, 2), *v = kref_rand(nk, -1, 1);
  float *bias = kref_rand((size_t)nh * Tq * Tk, -3, 3);
  uint8_t *mask = rdt_malloc((size_t)B * Tk);
  for (int i = 0; i < B * Tk; i++) mask[i] = kref_uniform() > -0.4;   /* ~70% attend */
  if (B > 1) memset(mask + Tk, 0, (size_t)Tk);                        /* batch 1: every key masked */
  double *qd = kref_to_double(q, nq), *kd = kref_to_double(k, nk), *vd = kref_to_double(v, nk);
  double *bd = kref_to_double(bias, (size_t)nh * Tq * Tk);
  double *ref = rdt_malloc(nq * sizeof(double)), *lref = rdt_malloc(nl * sizeof(double));
  double scale = 1.0 / sqrt(hd);
  kref_attention(ref, lref, qd, kd, vd, masked ? mask : NULL, with_bias ? bd : NULL, B, Tq, Tk, nh, hd, scale);
  float *out = rdt_malloc(nq * 4), *lse = rdt_malloc(nl * 4);
  k_attention(B_, out, lse, q, k, v, masked ? mask : NULL, with_bias ? bias : NULL, B, Tq, Tk, nh, hd,
              (float)scale);
  char what[96];
  snprintf(what, sizeof what, "attention B%d Tq%d Tk%d nh%d hd%d mask%d bias%d", B, Tq, Tk, nh, hd, masked,
           with_bias);
  KREF_CHECK(what, out, ref, nq, 1e-5);
  int lse_bad = 0;
  for (size_t i = 0; i < nl; i++) {
    if (isinf(lref[i]) ? lse[i] != lref[i] : !(fabs(lse[i] - lref[i]) <= 1e-5 * fmax(1, fabs(lref[i])))) lse_bad++;
  }
  CHECK_MSG(lse_bad == 0, "%s: %d lse values off", what, lse_bad);
  if (masked && B > 1) {   /* the fully masked batch: zeros and lse = -inf */
    int nz = 0;
    for (size_t i = (size_t)Tq * nh * hd; i < 2 * (size_t)Tq * nh * hd; i++) nz += out[i] != 0.0f;
    CHECK(nz == 0);
    CHECK(lse[(size_t)nh * Tq] == -INFINITY);
  }
  free(q), free(k), free(v), free(bias), free(mask), free(qd), free(kd), free(vd), free(bd);
  free(ref), free(lref), free(out), free(lse);
}

static void t_attention(void) {
  check_attention(1, 1, 1, 1, 1, 0, 0);
  check_attention(2, 67, 67, 3, 32, 0, 0);     /* self-attention shape */
  check_attention(3, 5, 129, 2, 64, 1, 0);     /* cross-attention, batch 1 fully masked */
  check_attention(2, 7, 9, 2, 8, 1, 1);        /* T5-style bias with a mask */
  check_attention(1, 130, 3, 1, 3, 0, 1);      /* two query blocks */
  check_attention(2, 3, 1030, 2, 5, 1, 0);     /* long keys, odd head size */
}

/* ---------------------------------------------------------------- element-wise and layout */
static void t_elementwise(void) {
  size_t n = 70001;   /* three chunks, odd tail */
  float *a = kref_rand(n, -3, 3), *c = kref_rand(n, -3, 3), *y = rdt_malloc(n * 4);
  double *ref = rdt_malloc(n * sizeof(double));
  k_add(B_, y, a, c, n);
  for (size_t i = 0; i < n; i++) ref[i] = (double)a[i] + c[i];
  KREF_CHECK("add", y, ref, n, 1e-7);
  k_add_inplace(B_, y, a, n);
  for (size_t i = 0; i < n; i++) ref[i] += a[i];
  KREF_CHECK("add_inplace", y, ref, n, 1e-6);
  k_mul(B_, y, a, c, n);
  for (size_t i = 0; i < n; i++) ref[i] = (double)a[i] * c[i];
  KREF_CHECK("mul", y, ref, n, 1e-7);
  k_axpby(B_, y, 0.5f, a, -2.0f, n);
  for (size_t i = 0; i < n; i++) ref[i] = 0.5 * a[i] - 2.0 * ((double)a[i] * c[i]);
  KREF_CHECK("axpby", y, ref, n, 1e-6);
  for (size_t i = 0; i < n; i++) y[i] = NAN;
  k_axpby(B_, y, 3.0f, a, 0.0f, n);   /* beta 0: y is not read */
  for (size_t i = 0; i < n; i++) ref[i] = 3.0 * a[i];
  KREF_CHECK("axpby beta=0", y, ref, n, 1e-7);
  int Bn = 3;
  size_t per = n / Bn;
  float ka[3] = {0.5f, -1.0f, 2.0f}, kc[3] = {0.25f, 3.0f, -0.5f};
  k_mix(B_, y, a, c, ka, kc, Bn, per);
  for (size_t i = 0; i < (size_t)Bn * per; i++) ref[i] = ka[i / per] * (double)a[i] + kc[i / per] * (double)c[i];
  KREF_CHECK("mix", y, ref, (size_t)Bn * per, 1e-6);
  free(a), free(c), free(y), free(ref);
}

static void t_layout(void) {
  int Bn = 3, rows = 5, dim = 7;
  size_t n = (size_t)Bn * rows * dim;
  float *y = kref_rand(n, -1, 1), *m = kref_rand((size_t)Bn * dim, -1, 1), *y0 = rdt_malloc(n * 4);
  memcpy(y0, y, n * 4);
  k_mul_rowvec(B_, y, m, Bn, rows, dim);
  int bad = 0;
  for (int b = 0; b < Bn; b++)
    for (int r = 0; r < rows; r++)
      for (int d = 0; d < dim; d++) {
        size_t i = ((size_t)b * rows + r) * dim + d;
        bad += y[i] != y0[i] * m[b * dim + d];
      }
  CHECK(bad == 0);
  /* copy2d: a 4 x 3 window of a [6, 10] matrix into a [5, 8] one, then accumulate. */
  float src[60], dst[40], want[40];
  for (int i = 0; i < 60; i++) src[i] = (float)i;
  for (int i = 0; i < 40; i++) dst[i] = want[i] = -1.0f;
  k_copy2d(B_, dst + 8 + 2, 8, src + 10 + 5, 10, 4, 3, 0);
  for (int r = 0; r < 4; r++)
    for (int cc = 0; cc < 3; cc++) want[(1 + r) * 8 + 2 + cc] = (float)((1 + r) * 10 + 5 + cc);
  CHECK(memcmp(dst, want, sizeof dst) == 0);
  k_copy2d(B_, dst + 8 + 2, 8, src + 10 + 5, 10, 4, 3, 1);
  for (int r = 0; r < 4; r++)
    for (int cc = 0; cc < 3; cc++) want[(1 + r) * 8 + 2 + cc] *= 2;
  CHECK(memcmp(dst, want, sizeof dst) == 0);
  /* add_pos: y[b, t, :] += pos[t, :] */
  float *pos = kref_rand((size_t)rows * dim, -1, 1);
  memcpy(y0, y, n * 4);
  k_add_pos(B_, y, pos, Bn, rows, dim);
  bad = 0;
  for (size_t i = 0; i < n; i++) bad += y[i] != y0[i] + pos[i % ((size_t)rows * dim)];
  CHECK(bad == 0);
  free(y), free(m), free(y0), free(pos);
}

static void t_timestep_embed(void) {
  int n = 4, dim = 9, half = 4;   /* odd dim: a zero last column */
  float t[4] = {0, 1, 500, 999}, out[36];
  k_timestep_embed(B_, out, t, n, dim);
  for (int i = 0; i < half; i++) {   /* t = 0: cos 0 = 1, sin 0 = 0 */
    CHECK(out[i] == 1.0f);
    CHECK(out[half + i] == 0.0f);
  }
  CHECK_NEAR(out[9 + 0], 0.5403023058681398, 1e-7);     /* t = 1, f_0 = 1: cos 1 */
  CHECK_NEAR(out[9 + half], 0.8414709848078965, 1e-7);  /* sin 1 */
  for (int r = 0; r < n; r++) {
    CHECK(out[r * dim + dim - 1] == 0.0f);
    for (int i = 0; i < half; i++) {
      double f = exp(-log(10000.0) * i / half), a = t[r] * f;
      /* float32 arguments up to 999 carry ~6e-5 rounding, as upstream's do */
      CHECK_NEAR(out[r * dim + i], cos(a), 2e-4);
      CHECK_NEAR(out[r * dim + half + i], sin(a), 2e-4);
    }
  }
  float big[2 * 128], t1 = 3.0f;   /* dim 256: f_i = 1e4^(-i/128) */
  k_timestep_embed(B_, big, &t1, 1, 256);
  CHECK_NEAR(big[64], cos(3.0 * pow(1e4, -0.5)), 1e-6);   /* i = 64: f = 1e-2 */
  CHECK_NEAR(big[128 + 64], sin(0.03), 1e-6);
}

static void t_mse(void) {
  size_t n = 70001;
  float *p = kref_rand(n, -2, 2), *t = kref_rand(n, -2, 2), *d = rdt_malloc(n * 4);
  double s = 0, *ref = rdt_malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    double e = (double)p[i] - t[i];
    s += e * e;
    ref[i] = 0.5 * 2 * e / (double)n;
  }
  float loss = k_mse_loss(B_, d, p, t, n, 0.5f);
  CHECK_CLOSE(loss, s / n, 1e-6, 0);
  KREF_CHECK("mse grad", d, ref, n, 1e-6);
  CHECK_CLOSE(k_mse_loss(B_, NULL, p, t, 1, 1.0f), ((double)p[0] - t[0]) * ((double)p[0] - t[0]), 1e-6, 0);
  free(p), free(t), free(d), free(ref);
}

int main(void) {
  kref_seed(1);
  B_ = kref_open_cpu(2);
  RUN(t_linear);
  RUN(t_rmsnorm);
  RUN(t_rmsnorm_meansq);
  RUN(t_layernorm);
  RUN(t_activations);
  RUN(t_softmax);
  RUN(t_attention);
  RUN(t_elementwise);
  RUN(t_layout);
  RUN(t_timestep_embed);
  RUN(t_mse);
  RUN(t_fused);
  k_close(B_);
  return test_done();
}
