/* tests/kernels/optim_test.c: AdamW and EMA against hand-worked steps, gradient
 * norms and scaling against double sums, weight copies. */
#include "kref.h"

static k_backend *B_;

/* Two AdamW steps worked by hand (lr 0.1, betas 0.9 / 0.999, eps 1e-8, wd 0.01),
 * p0 = 1, m0 = v0 = 0:
 * step 1, g = 0.5:  p = 1 (1 - 0.1 * 0.01) = 0.999;  m = 0.1 * 0.5 = 0.05;
 *   v = 0.001 * 0.25 = 0.00025;  bias corrections 1 - 0.9 = 0.1, 1 - 0.999 = 0.001;
 *   denom = sqrt(0.00025) / sqrt(0.001) + 1e-8 = 0.5 + 1e-8;  step size 0.1 / 0.1 = 1;
 *   p = 0.999 - 0.05 / 0.50000001 = 0.89900000200.
 * step 2, g = -0.25:  p = 0.899000002 * 0.999 = 0.898101001998;
 *   m = 0.9 * 0.05 + 0.1 * (-0.25) = 0.02;  v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225;
 *   bias corrections 1 - 0.81 = 0.19, 1 - 0.998001 = 0.001999;
 *   denom = sqrt(0.00031225 / 0.001999) + 1e-8 = 0.39522539070;  step size 0.1 / 0.19;
 *   p = 0.898101001998 - (0.1 / 0.19) 0.02 / 0.3952253907 = 0.87146729871.
 * The betas reach the op as floats: 1 - 0.999f is 1.2e-5 away from 0.001 in
 * relative terms, which bounds how closely m and v can match. */
static void t_adamw_hand(void) {
  float p[3] = {1, 1, 1}, m[3] = {0}, v[3] = {0}, g[3];
  for (int i = 0; i < 3; i++) g[i] = 0.5f;
  k_adamw(B_, p, g, m, v, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
  CHECK_NEAR(p[0], 0.899000002, 1e-7);
  CHECK_CLOSE(m[1], 0.05, 1e-6, 0);
  CHECK_CLOSE(v[2], 0.00025, 2e-5, 0);
  for (int i = 0; i < 3; i++) g[i] = -0.25f;
  k_adamw(B_, p, g, m, v, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 2);
  CHECK_NEAR(p[0], 0.87146729871, 2e-7);
  CHECK_NEAR(p[2], 0.87146729871, 2e-7);
  CHECK_CLOSE(m[0], 0.02, 1e-6, 0);
  CHECK_CLOSE(v[0], 0.00031225, 2e-5, 0);
  /* zero gradient and zero decay: p unchanged, m and v decay only */
  float q = 2.0f, gz = 0.0f, mq = 0.1f, vq = 0.0f;
  k_adamw(B_, &q, &gz, &mq, &vq, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 5);
  CHECK_NEAR(mq, 0.09, 1e-8);
  CHECK(vq == 0.0f);
  CHECK(q < 2.0f);   /* m > 0 still moves p down */
}

/* Many elements with random state against the formulas in double. */
static void t_adamw_vector(void) {
  size_t n = 100003;
  float *p = kref_rand(n, -1, 1), *g = kref_rand(n, -1, 1), *m = kref_rand(n, -0.1, 0.1), *v = kref_rand(n, 0, 0.01);
  double *pd = kref_to_double(p, n), *md = kref_to_double(m, n), *vd = kref_to_double(v, n);
  double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  int step = 7;
  k_adamw(B_, p, g, m, v, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, step);
  double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
  for (size_t i = 0; i < n; i++) {
    pd[i] *= 1 - lr * wd;
    md[i] = b1 * md[i] + (1 - b1) * g[i];
    vd[i] = b2 * vd[i] + (1 - b2) * (double)g[i] * g[i];
    pd[i] -= lr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
  }
  KREF_CHECK("adamw p", p, pd, n, 1e-6);
  KREF_CHECK("adamw m", m, md, n, 1e-6);
  KREF_CHECK("adamw v", v, vd, n, 2e-5);   /* 1 - 0.999f: see above */
  free(p), free(g), free(m), free(v), free(pd), free(md), free(vd);
}

/* EMA by hand: ema 1, p 3, decay 0.75: 0.75 * 1 + 0.25 * 3 = 1.5; again: 0.75 * 1.5 + 0.25 * 3 = 1.875. */
static void t_ema(void) {
  float e[2] = {1, 1}, p[2] = {3, 3};
  k_ema(B_, e, p, 2, 0.75f);
  CHECK(e[0] == 1.5f && e[1] == 1.5f);
  k_ema(B_, e, p, 2, 0.75f);
  CHECK(e[0] == 1.875f);
  k_ema(B_, e, p, 2, 0.0f);   /* decay 0: copy */
  CHECK(e[1] == 3.0f);
  size_t n = 70001;
  float *a = kref_rand(n, -1, 1), *b = kref_rand(n, -1, 1);
  double *ref = rdt_malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) ref[i] = 0.999 * a[i] + (1 - 0.999) * (double)b[i];
  k_ema(B_, a, b, n, 0.999f);
  KREF_CHECK("ema", a, ref, n, 1e-6);
  free(a), free(b), free(ref);
}

static void t_sumsq_scale(void) {
  size_t n = 200001;
  float *x = kref_rand(n, -1, 1);
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  CHECK_CLOSE(k_sumsq(B_, x, n), s, 1e-12, 0);
  float ones[3] = {1, 2, 3};
  CHECK(k_sumsq(B_, ones, 3) == 14.0);
  CHECK(k_sumsq(B_, ones, 0) == 0.0);
  k_scale_f32(B_, x, n, 0.5f);
  double s2 = 0;
  for (size_t i = 0; i < n; i++) s2 += (double)x[i] * x[i];
  CHECK_CLOSE(s2, 0.25 * s, 1e-12, 0);
  free(x);
}

/* The fused step equals scale + AdamW + EMA (or copy) + refresh, bit for bit,
 * and leaves the gradient unscaled; three steps: decay 0 (copy), then 0.99,
 * with and without clipping, with and without a separate compute copy. */
static void t_adamw_ema_fused(void) {
  size_t n = 50021, bytes = n * sizeof(float);
  float *p = kref_rand(n, -1, 1), *m = kref_rand(n, -0.1, 0.1), *v = kref_rand(n, 0, 0.01), *e = kref_rand(n, -1, 1);
  float *p2 = rdt_malloc(bytes), *m2 = rdt_malloc(bytes), *v2 = rdt_malloc(bytes), *e2 = rdt_malloc(bytes);
  float *wc = kref_rand(n, -1, 1), *gs = rdt_malloc(bytes);
  memcpy(p2, p, bytes), memcpy(m2, m, bytes), memcpy(v2, v, bytes), memcpy(e2, e, bytes);
  const float scales[3] = {0.37f, 1.0f, 0.81f}, decays[3] = {0.0f, 0.99f, 0.99f};
  for (int step = 1; step <= 3; step++) {
    float *g = kref_rand(n, -2, 2);
    memcpy(gs, g, bytes);
    k_scale_f32(B_, gs, n, scales[step - 1]);
    k_adamw(B_, p2, gs, m2, v2, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
    k_ema(B_, e2, p2, n, decays[step - 1]);   /* decay 0: a copy for these finite values */
    float *g0 = rdt_malloc(bytes);
    memcpy(g0, g, bytes);
    k_adamw_ema(B_, p, g, m, v, e, step == 2 ? NULL : wc, n, scales[step - 1], 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f,
                step, decays[step - 1]);
    CHECK_MSG(memcmp(p, p2, bytes) == 0 && memcmp(m, m2, bytes) == 0 && memcmp(v, v2, bytes) == 0,
              "step %d: fused AdamW differs from the separate ops", step);
    CHECK_MSG(memcmp(e, e2, bytes) == 0, "step %d: fused EMA differs", step);
    CHECK_MSG(memcmp(g, g0, bytes) == 0, "step %d: the gradient buffer changed", step);
    if (step != 2) CHECK_MSG(memcmp(wc, p, bytes) == 0, "step %d: compute copy not refreshed", step);
    free(g), free(g0);
  }
  free(p), free(m), free(v), free(e), free(p2), free(m2), free(v2), free(e2), free(wc), free(gs);
}

static void t_weights(void) {
  float *w = k_alloc(B_, 16 * sizeof(float)), src[16];
  for (int i = 0; i < 16; i++) src[i] = (float)i;
  void *wc = k_weight_copy(B_, w, 16);
  CHECK(wc == (void *)w);   /* CPU, F32: the master itself */
  k_weight_refresh(B_, wc, w, 16);   /* same buffer: no-op */
  float *other = k_alloc(B_, 16 * sizeof(float));
  k_upload(B_, w, src, sizeof src);
  k_weight_refresh(B_, other, w, 16);
  CHECK(memcmp(other, src, sizeof src) == 0);
  k_weight_copy_free(B_, wc, w);   /* must not free w */
  CHECK(w[15] == 15.0f);
  k_free(B_, other);
  k_free(B_, w);
}

int main(void) {
  kref_seed(3);
  B_ = kref_open_cpu(2);
  RUN(t_adamw_hand);
  RUN(t_adamw_vector);
  RUN(t_ema);
  RUN(t_adamw_ema_fused);
  RUN(t_sumsq_scale);
  RUN(t_weights);
  k_close(B_);
  return test_done();
}
