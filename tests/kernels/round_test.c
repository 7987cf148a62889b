/* tests/kernels/round_test.c: the CPU backend with activations rounded to
 * BF16 (k_set_act_rounding, kernels/cpu/round.c) against the plain CPU
 * backend, op by op: each activation output must equal the plain op's output
 * rounded to the nearest BF16 (core's rdt_f32_to_bf16) bitwise, with the fused
 * pairs rounded between their halves, and the F32 outputs (weight gradients,
 * rstd, lse, losses) left exactly as the plain op gives them. */
#include "kref.h"

static k_backend *R, *P;   /* rounding, plain */

static float rb(float f) { return rdt_bf16_to_f32(rdt_f32_to_bf16(f)); }

/* n floats already exactly BF16 (the inputs both backends see). */
static float *rand_bf16(size_t n, double lo, double hi) {
  float *x = kref_rand(n, lo, hi);
  for (size_t i = 0; i < n; i++) x[i] = rb(x[i]);
  return x;
}

/* An activation buffer of backend b holding x verbatim (no rounding on the way). */
static void *up(k_backend *b, const float *x, size_t n) {
  void *d = k_alloc(b, n * sizeof(float));
  k_upload(b, d, x, n * sizeof(float));
  return d;
}

/* got == round(want) element by element, bitwise. */
static int eq_rounded(const float *got, const float *want, size_t n, int round) {
  for (size_t i = 0; i < n; i++) {
    float w = round ? rb(want[i]) : want[i];
    if (memcmp(&got[i], &w, sizeof w) != 0) {
      fprintf(stderr, "  element %zu: %.9g, want %.9g\n", i, got[i], w);
      return 0;
    }
  }
  return 1;
}

static void t_mode(void) {
  CHECK(k_act_rounding(R) == RDT_BF16);
  CHECK(k_act_rounding(P) == RDT_F32);
  CHECK(k_act_dtype(R) == RDT_F32 && k_act_size(R) == 4);   /* storage stays F32 */
  CHECK(k_set_act_rounding(R, RDT_I32) == -1);
  CHECK(strstr(rdt_error(), "BF16") != NULL);
  CHECK(k_act_rounding(R) == RDT_BF16);   /* a refused change leaves the mode */
  /* uploads round; raw uploads do not */
  float x[4] = {1.0f + 1.0f / 512, 3.14159265f, -1e-3f, 65504.5f}, y[4];
  void *d = k_alloc(R, sizeof x);
  k_upload_act(R, d, x, 4);
  k_download_act(R, y, d, 4);
  CHECK(eq_rounded(y, x, 4, 1));
  CHECK(y[0] == 1.0f);   /* 1 + 2^-9 is a tie: to even */
  k_f32_to_act(R, d, x, 4);
  k_download(R, y, d, sizeof y);
  CHECK(eq_rounded(y, x, 4, 1));
  k_upload(R, d, x, sizeof x);
  k_download(R, y, d, sizeof y);
  CHECK(memcmp(x, y, sizeof x) == 0);
  k_free(R, d);
  /* the weight compute copy is a rounded copy, refreshed rounded */
  float w[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, wc[5];
  void *c = k_weight_copy(R, w, 5);
  CHECK(c != (void *)w);
  memcpy(wc, c, sizeof wc);
  CHECK(eq_rounded(wc, w, 5, 1));
  w[2] = 7.77f;
  k_weight_refresh(R, c, w, 5);
  memcpy(wc, c, sizeof wc);
  CHECK(eq_rounded(wc, w, 5, 1));
  k_weight_copy_free(R, c, w);
  CHECK(k_weight_copy(P, w, 5) == (void *)w);
  /* F32 turns it off, BF16 back on */
  k_backend *o = kref_open_cpu(1);
  CHECK(k_set_act_rounding(o, RDT_BF16) == 0);
  CHECK(k_set_act_rounding(o, RDT_F32) == 0);
  CHECK(k_weight_copy(o, w, 5) == (void *)w);
  k_close(o);
}

/* Linear, Linear + GELU and the Linear backward (dx accumulating). */
static void t_linear(void) {
  const int M = 7, N = 13, K = 19;
  float *x = rand_bf16((size_t)M * K, -1, 1), *W = rand_bf16((size_t)N * K, -1, 1), *bias = kref_rand(N, -1, 1);
  float *dy = rand_bf16((size_t)M * N, -1, 1), *dx0 = rand_bf16((size_t)M * K, -1, 1);
  float yr[7 * 13], yp[7 * 13], gr[7 * 13], pre[7 * 13], dxr[7 * 19], dxp[7 * 19];
  float dWr[13 * 19] = {0}, dWp[13 * 19] = {0}, dbr[13] = {0}, dbp[13] = {0};
  void *xr = up(R, x, (size_t)M * K), *Wr = up(R, W, (size_t)N * K), *xp = up(P, x, (size_t)M * K), *Wp = up(P, W, (size_t)N * K);
  void *y1 = k_alloc(R, sizeof yr), *y2 = k_alloc(P, sizeof yp), *g1 = k_alloc(R, sizeof gr);
  k_linear(R, y1, xr, Wr, bias, M, N, K);
  k_linear(P, y2, xp, Wp, bias, M, N, K);
  k_download(R, yr, y1, sizeof yr), k_download(P, yp, y2, sizeof yp);
  CHECK(eq_rounded(yr, yp, (size_t)M * N, 1));
  /* GELU of the rounded pre-activation, rounded */
  k_linear_gelu(R, y1, g1, xr, Wr, bias, M, N, K);
  k_download(R, pre, y1, sizeof pre), k_download(R, gr, g1, sizeof gr);
  CHECK(eq_rounded(pre, yp, (size_t)M * N, 1));
  void *prep = up(P, pre, (size_t)M * N);
  k_gelu(P, y2, prep, (size_t)M * N);
  k_download(P, yp, y2, sizeof yp);
  CHECK(eq_rounded(gr, yp, (size_t)M * N, 1));
  /* backward: dx = round(dx0 + dy W); dW, dbias F32 and unrounded */
  void *dyr = up(R, dy, (size_t)M * N), *dyp = up(P, dy, (size_t)M * N);
  void *d1 = up(R, dx0, (size_t)M * K), *d2 = up(P, dx0, (size_t)M * K);
  k_linear_backward(R, d1, dWr, dbr, dyr, xr, Wr, M, N, K, 1);
  k_linear_backward(P, d2, dWp, dbp, dyp, xp, Wp, M, N, K, 1);
  k_download(R, dxr, d1, sizeof dxr), k_download(P, dxp, d2, sizeof dxp);
  CHECK(eq_rounded(dxr, dxp, (size_t)M * K, 1));
  CHECK(eq_rounded(dWr, dWp, (size_t)N * K, 0));
  CHECK(eq_rounded(dbr, dbp, N, 0));
  int changed = 0;   /* the rounding did something */
  for (int i = 0; i < M * K; i++) changed += dxr[i] != dxp[i];
  CHECK(changed > M * K / 2);
  void *bufs_r[] = {xr, Wr, y1, g1, dyr, d1}, *bufs_p[] = {xp, Wp, y2, prep, dyp, d2};
  for (int i = 0; i < 6; i++) k_free(R, bufs_r[i]), k_free(P, bufs_p[i]);
  free(x), free(W), free(bias), free(dy), free(dx0);
}

/* Residual add + RmsNorm: the norm reads the rounded sum. */
static void t_norms(void) {
  const int rows = 5, dim = 24;
  size_t n = (size_t)rows * dim;
  float *a = rand_bf16(n, -2, 2), *c = rand_bf16(n, -2, 2), *w = kref_rand(dim, 0.5, 1.5);
  float sr[120], yr[120], sp[120], yp[120], rstd_r[5], rstd_p[5];
  void *ar = up(R, a, n), *cr = up(R, c, n), *s1 = k_alloc(R, n * 4), *y1 = k_alloc(R, n * 4);
  void *ap = up(P, a, n), *cp = up(P, c, n), *s2 = k_alloc(P, n * 4), *y2 = k_alloc(P, n * 4);
  k_add_rmsnorm(R, s1, y1, rstd_r, ar, cr, w, rows, dim, 1e-6f);
  k_add(P, s2, ap, cp, n);
  k_download(P, sp, s2, sizeof sp);
  for (size_t i = 0; i < n; i++) sp[i] = rb(sp[i]);
  k_upload(P, s2, sp, sizeof sp);
  k_rmsnorm(P, y2, rstd_p, s2, w, rows, dim, 1e-6f);
  k_download(R, sr, s1, sizeof sr), k_download(R, yr, y1, sizeof yr), k_download(P, yp, y2, sizeof yp);
  CHECK(eq_rounded(sr, sp, n, 0));
  CHECK(eq_rounded(yr, yp, n, 1));
  CHECK(eq_rounded(rstd_r, rstd_p, rows, 0));
  /* backward into an accumulating dx; the weight gradient unrounded */
  float *dy = rand_bf16(n, -1, 1), *dx0 = rand_bf16(n, -1, 1), dxr[120], dxp[120], dwr[24] = {0}, dwp[24] = {0};
  void *dyr = up(R, dy, n), *dyp = up(P, dy, n), *d1 = up(R, dx0, n), *d2 = up(P, dx0, n);
  k_rmsnorm_backward(R, d1, dwr, dyr, s1, w, rstd_r, rows, dim, 1);
  k_rmsnorm_backward(P, d2, dwp, dyp, s2, w, rstd_p, rows, dim, 1);
  k_download(R, dxr, d1, sizeof dxr), k_download(P, dxp, d2, sizeof dxp);
  CHECK(eq_rounded(dxr, dxp, n, 1));
  CHECK(eq_rounded(dwr, dwp, dim, 0));
  void *br[] = {ar, cr, s1, y1, dyr, d1}, *bp[] = {ap, cp, s2, y2, dyp, d2};
  for (int i = 0; i < 6; i++) k_free(R, br[i]), k_free(P, bp[i]);
  free(a), free(c), free(w), free(dy), free(dx0);
}

/* Attention forward and backward; lse unrounded. */
static void t_attention(void) {
  const int B = 2, Tq = 5, Tk = 9, nh = 2, hd = 16;
  size_t nq = (size_t)B * Tq * nh * hd, nk = (size_t)B * Tk * nh * hd, nl = (size_t)B * nh * Tq;
  float *q = rand_bf16(nq, -1, 1), *k = rand_bf16(nk, -1, 1), *v = rand_bf16(nk, -1, 1), *dout = rand_bf16(nq, -1, 1);
  float *lr = rdt_malloc(nl * 4), *lp = rdt_malloc(nl * 4);
  float *orr = rdt_malloc(nq * 4), *op = rdt_malloc(nq * 4), *gr = rdt_malloc(nk * 4), *gp = rdt_malloc(nk * 4);
  void *qr = up(R, q, nq), *kr = up(R, k, nk), *vr = up(R, v, nk), *dor = up(R, dout, nq);
  void *qp = up(P, q, nq), *kp = up(P, k, nk), *vp = up(P, v, nk), *dop = up(P, dout, nq);
  void *o1 = k_alloc(R, nq * 4), *o2 = k_alloc(P, nq * 4);
  float scale = 0.25f;
  k_attention(R, o1, lr, qr, kr, vr, NULL, NULL, B, Tq, Tk, nh, hd, scale);
  k_attention(P, o2, lp, qp, kp, vp, NULL, NULL, B, Tq, Tk, nh, hd, scale);
  k_download(R, orr, o1, nq * 4), k_download(P, op, o2, nq * 4);
  CHECK(eq_rounded(orr, op, nq, 1));
  CHECK(eq_rounded(lr, lp, nl, 0));
  /* the backward reads the output; give both the same (rounded) one */
  k_upload(P, o2, orr, nq * 4);
  void *dq1 = k_alloc(R, nq * 4), *dk1 = k_alloc(R, nk * 4), *dv1 = k_alloc(R, nk * 4);
  void *dq2 = k_alloc(P, nq * 4), *dk2 = k_alloc(P, nk * 4), *dv2 = k_alloc(P, nk * 4);
  k_attention_backward(R, dq1, dk1, dv1, dor, qr, kr, vr, o1, lr, NULL, B, Tq, Tk, nh, hd, scale);
  k_attention_backward(P, dq2, dk2, dv2, dop, qp, kp, vp, o2, lr, NULL, B, Tq, Tk, nh, hd, scale);
  k_download(R, orr, dq1, nq * 4), k_download(P, op, dq2, nq * 4);
  CHECK(eq_rounded(orr, op, nq, 1));
  k_download(R, gr, dk1, nk * 4), k_download(P, gp, dk2, nk * 4);
  CHECK(eq_rounded(gr, gp, nk, 1));
  k_download(R, gr, dv1, nk * 4), k_download(P, gp, dv2, nk * 4);
  CHECK(eq_rounded(gr, gp, nk, 1));
  void *br[] = {qr, kr, vr, dor, o1, dq1, dk1, dv1}, *bp[] = {qp, kp, vp, dop, o2, dq2, dk2, dv2};
  for (int i = 0; i < 8; i++) k_free(R, br[i]), k_free(P, bp[i]);
  free(q), free(k), free(v), free(dout), free(lr), free(lp), free(orr), free(op), free(gr), free(gp);
}

/* Element-wise ops, layout, embeddings, the loss and the fused optimizer step. */
static void t_elementwise(void) {
  const size_t n = 96;
  float *a = rand_bf16(n, -3, 3), *c = rand_bf16(n, -3, 3), *pos = kref_rand(n, -1, 1);
  float gr[96], gp[96];
  void *ar = up(R, a, n), *cr = up(R, c, n), *y1 = k_alloc(R, n * 4);
  void *ap = up(P, a, n), *cp = up(P, c, n), *y2 = k_alloc(P, n * 4);
#define SAME(call_r, call_p, out_r, out_p, count)                                  \
  do {                                                                             \
    call_r;                                                                        \
    call_p;                                                                        \
    k_download(R, gr, out_r, (count) * 4), k_download(P, gp, out_p, (count) * 4); \
    CHECK_MSG(eq_rounded(gr, gp, count, 1), "%s", #call_r);                        \
  } while (0)
  SAME(k_add(R, y1, ar, cr, n), k_add(P, y2, ap, cp, n), y1, y2, n);
  SAME(k_mul(R, y1, ar, cr, n), k_mul(P, y2, ap, cp, n), y1, y2, n);
  SAME(k_gelu(R, y1, ar, n), k_gelu(P, y2, ap, n), y1, y2, n);
  SAME(k_silu(R, y1, ar, n), k_silu(P, y2, ap, n), y1, y2, n);
  SAME(k_gelu_backward(R, y1, cr, ar, n, 0), k_gelu_backward(P, y2, cp, ap, n, 0), y1, y2, n);
  SAME(k_silu_backward(R, y1, cr, ar, n, 0), k_silu_backward(P, y2, cp, ap, n, 0), y1, y2, n);
  SAME(k_softmax(R, y1, ar, 8, 12), k_softmax(P, y2, ap, 8, 12), y1, y2, n);
  float al[2] = {0.3f, -1.7f}, cl[2] = {0.9f, 0.1f};
  SAME(k_mix(R, y1, ar, cr, al, cl, 2, n / 2), k_mix(P, y2, ap, cp, al, cl, 2, n / 2), y1, y2, n);
  float t[3] = {0.f, 17.f, 999.f};
  SAME(k_timestep_embed(R, y1, t, 3, 32), k_timestep_embed(P, y2, t, 3, 32), y1, y2, n);
  /* in-place ops: both start from the same (rounded) y */
  k_upload(R, y1, c, n * 4), k_upload(P, y2, c, n * 4);
  SAME(k_axpby(R, y1, 0.7f, ar, 1.3f, n), k_axpby(P, y2, 0.7f, ap, 1.3f, n), y1, y2, n);
  k_upload(P, y2, gr, n * 4);
  SAME(k_add_inplace(R, y1, ar, n), k_add_inplace(P, y2, ap, n), y1, y2, n);
  k_upload(P, y2, gr, n * 4);
  SAME(k_add_pos(R, y1, pos, 2, 3, 16), k_add_pos(P, y2, pos, 2, 3, 16), y1, y2, n);
  k_upload(P, y2, gr, n * 4);
  SAME(k_mul_rowvec(R, y1, cr, 2, 3, 16), k_mul_rowvec(P, y2, cp, 2, 3, 16), y1, y2, n);
  /* copy2d: a plain copy moves rounded values; an accumulating one rounds the
   * strided block it touches and nothing else */
  k_upload(P, y2, gr, n * 4);
  SAME(k_copy2d(R, y1, 12, ar, 8, 6, 5, 1), k_copy2d(P, y2, 12, ap, 8, 6, 5, 1), y1, y2, n);
  k_upload(R, y1, pos, n * 4);   /* unrounded values outside the block stay as they are */
  k_copy2d(R, y1, 12, ar, 8, 6, 5, 1);
  k_download(R, gr, y1, n * 4);
  CHECK(gr[5] == pos[5] && gr[95] == pos[95]);
  CHECK(gr[0] == rb(pos[0] + a[0]));
  /* the loss: dpred rounded, the loss itself F32 and equal */
  float l1 = k_mse_loss(R, y1, ar, cr, n, 1.0f), l2 = k_mse_loss(P, y2, ap, cp, n, 1.0f);
  CHECK(l1 == l2);
  k_download(R, gr, y1, n * 4), k_download(P, gp, y2, n * 4);
  CHECK(eq_rounded(gr, gp, n, 1));
  /* the fused optimizer step refreshes the compute copy rounded; F32 state exact */
  float p1[96], p2[96], m1[96] = {0}, m2[96] = {0}, v1[96] = {0}, v2[96] = {0}, e1[96], e2[96];
  memcpy(p1, pos, sizeof p1), memcpy(p2, pos, sizeof p2), memcpy(e1, pos, sizeof e1), memcpy(e2, pos, sizeof e2);
  void *w1 = k_weight_copy(R, p1, n);
  float *w2 = k_alloc(P, n * 4);
  k_adamw_ema(R, p1, a, m1, v1, e1, w1, n, 0.5f, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 0.99f);
  k_adamw_ema(P, p2, a, m2, v2, e2, w2, n, 0.5f, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 0.99f);
  CHECK(memcmp(p1, p2, sizeof p1) == 0 && memcmp(m1, m2, sizeof m1) == 0 && memcmp(v1, v2, sizeof v1) == 0 &&
        memcmp(e1, e2, sizeof e1) == 0);
  k_download(R, gr, w1, n * 4);
  CHECK(eq_rounded(gr, p2, n, 1));
  k_weight_copy_free(R, w1, p1);
  k_free(P, w2);
#undef SAME
  void *br[] = {ar, cr, y1}, *bp[] = {ap, cp, y2};
  for (int i = 0; i < 3; i++) k_free(R, br[i]), k_free(P, bp[i]);
  free(a), free(c), free(pos);
}

int main(void) {
  kref_seed(31);
  R = kref_open_cpu(2);
  P = kref_open_cpu(2);
  if (k_set_act_rounding(R, RDT_BF16) != 0) {
    fprintf(stderr, "k_set_act_rounding: %s\n", rdt_error());
    return 1;
  }
  RUN(t_mode);
  RUN(t_linear);
  RUN(t_norms);
  RUN(t_attention);
  RUN(t_elementwise);
  k_close(R);
  k_close(P);
  return test_done();
}
