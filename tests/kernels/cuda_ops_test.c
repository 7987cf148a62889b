/* tests/kernels/cuda_ops_test.c: every op of the CUDA backend against the CPU
 * backend (the reference) on the same random inputs, forward and backward,
 * for F32, BF16 and F16 activations.
 *
 * Inputs are rounded to the CUDA activation dtype on the host first, so both
 * backends compute from identical values and only the device's arithmetic and
 * output rounding differ.  Outputs are poisoned with NaN before each op, so an
 * element the op forgot to write fails the comparison.  The error measure is
 * |cuda - cpu| / |cpu| (2-norms); bounds: 1e-5 for F32 results, 2e-2 for
 * BF16/F16 activation results (fp32 outputs such as weight gradients keep
 * 1e-5).  Every comparison prints its error, so a GPU log shows the margins.
 * Exits 77 (skipped) when no CUDA device is visible.
 */
#include <stdint.h>
#include <stdlib.h>
#include "test.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

#define TOL_F32 1e-5
#define TOL_HALF 2e-2

static k_backend *C, *G;  /* CPU reference, CUDA under test */
static double TOL;        /* bound for activation outputs at the current dtype */

/* ---------------------------------------------------------------- random inputs */
static uint64_t rng_state = 0x243F6A8885A308D3ull;

/* uniform in [0, 1) (splitmix64) */
static double urand(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* x as the CUDA backend stores an activation. */
static float act_round(float x) {
  switch (k_act_dtype(G)) {
    case RDT_BF16: return rdt_bf16_to_f32(rdt_f32_to_bf16(x));
    case RDT_F16: return rdt_f16_to_f32(rdt_f32_to_f16(x));
    default: return x;
  }
}

static float *host_rand(size_t n, double lo, double hi, int round) {
  float *x = rdt_malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    x[i] = (float)(lo + (hi - lo) * urand());
    if (round) x[i] = act_round(x[i]);
  }
  return x;
}

/* ---------------------------------------------------------------- buffer pairs */
/* The same buffer on both backends: activation dtype (f32 = 0) or F32 (f32 = 1). */
typedef struct {
  void *c, *g;
  size_t n;
  int f32;
} pair;

static pair pair_of(const float *h, size_t n, int f32) {
  pair p = {NULL, NULL, n, f32};
  p.c = k_alloc(C, (n ? n : 1) * (f32 ? 4 : k_act_size(C)));
  p.g = k_alloc(G, (n ? n : 1) * (f32 ? 4 : k_act_size(G)));
  if (f32) {
    k_upload(C, p.c, h, n * 4);
    k_upload(G, p.g, h, n * 4);
  } else {
    k_upload_act(C, p.c, h, n);
    k_upload_act(G, p.g, h, n);
  }
  return p;
}

/* Random inputs in [lo, hi). */
static pair act_in(size_t n, double lo, double hi) {
  float *h = host_rand(n, lo, hi, 1);
  pair p = pair_of(h, n, 0);
  free(h);
  return p;
}

static pair f32_in(size_t n, double lo, double hi) {
  float *h = host_rand(n, lo, hi, 0);
  pair p = pair_of(h, n, 1);
  free(h);
  return p;
}

/* Outputs, poisoned with NaN. */
static pair poisoned(size_t n, int f32) {
  float *h = rdt_malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = NAN;
  pair p = pair_of(h, n, f32);
  free(h);
  return p;
}
static pair act_out(size_t n) { return poisoned(n, 0); }
static pair f32_out(size_t n) { return poisoned(n, 1); }

static void pair_free(pair *p) {
  k_free(C, p->c);
  k_free(G, p->g);
  p->c = p->g = NULL;
}

/* Host copies of both sides (caller frees). */
static void pair_get(pair p, float **c, float **g) {
  *c = rdt_malloc((p.n ? p.n : 1) * sizeof(float));
  *g = rdt_malloc((p.n ? p.n : 1) * sizeof(float));
  if (p.f32) {
    k_download(C, *c, p.c, p.n * 4);
    k_download(G, *g, p.g, p.n * 4);
  } else {
    k_download_act(C, *c, p.c, p.n);
    k_download_act(G, *g, p.g, p.n);
  }
}

/* The CPU side of p set to the GPU side's values: an op that reads its
 * output (acc = 1, in-place) then starts from the same values on both. */
static void pair_sync(pair p) {
  float *h = rdt_malloc((p.n ? p.n : 1) * sizeof(float));
  if (p.f32) {
    k_download(G, h, p.g, p.n * 4);
    k_upload(C, p.c, h, p.n * 4);
  } else {
    k_download_act(G, h, p.g, p.n);
    k_upload_act(C, p.c, h, p.n);
  }
  free(h);
}

/* |g - c| / |c| over n values (NaN anywhere gives NaN). */
static double rel_err(const float *g, const float *c, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)g[i] - (double)c[i];
    num += d * d;
    den += (double)c[i] * c[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static const char *dtype_now(void) { return rdt_dtype_name(k_act_dtype(G)); }

/* Compare the two sides of p within tol.  For a 16-bit activation output
 * the line also gives the share of values that are not the CPU's fp32 result
 * rounded once (ties to even) -- near 0 where the GPU rounds at the same
 * point and only the order of its fp32 sums differs; a rounding in the wrong
 * place (twice, or of an intermediate) shows as tens of percent. */
static void expect(const char *what, pair p, double tol) {
  float *c, *g;
  pair_get(p, &c, &g);
  double e = rel_err(g, c, p.n);
  char off[48] = "";
  if (!p.f32 && k_act_dtype(G) != RDT_F32 && p.n) {
    size_t k = 0;
    for (size_t i = 0; i < p.n; i++) k += g[i] != act_round(c[i]);
    snprintf(off, sizeof off, " %.2f%% not as rounded on the CPU", 100.0 * (double)k / (double)p.n);
  }
  fprintf(stderr, "    %-52s %-4s err %.2e (bound %.0e)%s\n", what, dtype_now(), e, tol, off);
  CHECK_MSG(e <= tol, "%s [%s]: relative error %.3g > %.3g", what, dtype_now(), e, tol);
  free(c);
  free(g);
}

/* An activation output: TOL; an F32 output: TOL_F32. */
static void expect_out(const char *what, pair p) { expect(what, p, p.f32 ? TOL_F32 : TOL); }

/* ---------------------------------------------------------------- matrix products */
/* The CPU backend rounding its activations to the CUDA side's 16-bit type
 * (k_set_act_rounding): an op's output there is the exact product rounded
 * once, so a CUDA output that rounds at another point (twice, say) shows as
 * many differing values.  It shares the CPU reference's host buffers. */
static k_backend *R_;
static void close_rounding_ref(void) { k_close(R_); }
static k_backend *rounding_ref(void) {
  if (!R_) {
    R_ = k_open("cpu", 0);
    if (!R_) rdt_die("cpu backend: %s", rdt_error());
    atexit(close_rounding_ref);
  }
  if (k_set_act_rounding(R_, k_act_dtype(G)) != 0) rdt_die("%s", rdt_error());
  return R_;
}

static void check_linear(int M, int N, int K, int with_bias, int offset) {
  char what[96];
  /* offset > 0 shifts x by that many elements: an unaligned operand */
  pair x = act_in((size_t)M * K + offset, -1, 1), W = act_in((size_t)N * K, -1, 1), b = f32_in(N, -1, 1);
  pair y = act_out((size_t)M * N);
  k_linear(C, y.c, k_act_at(C, x.c, offset), W.c, with_bias ? b.c : NULL, M, N, K);
  k_linear(G, y.g, k_act_at(G, x.g, offset), W.g, with_bias ? b.g : NULL, M, N, K);
  snprintf(what, sizeof what, "linear %dx%dx%d bias %d offset %d", M, N, K, with_bias, offset);
  expect_out(what, y);
  if (k_act_dtype(G) != RDT_F32) { /* rounded once, where the CPU rounding reference rounds */
    size_t n = (size_t)M * N;
    float *yr = k_alloc(C, n * 4), *yg = rdt_malloc(n * 4);
    k_linear(rounding_ref(), yr, k_act_at(C, x.c, offset), W.c, with_bias ? b.c : NULL, M, N, K);
    k_download_act(G, yg, y.g, n);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) off += yg[i] != yr[i];
    fprintf(stderr, "    %-52s %-4s %zu of %zu values not as rounded on the CPU\n", what, dtype_now(), off, n);
    CHECK_MSG(off <= n / 50, "%s [%s]: %zu of %zu values differ from the CPU's rounding of the product", what,
              dtype_now(), off, n);
    k_free(C, yr), free(yg);
  }
  pair_free(&x), pair_free(&W), pair_free(&b), pair_free(&y);
}

static void t_linear(void) {
  long before = k_counter(G, "bias_fallback");
  check_linear(1, 1, 1, 1, 0);
  check_linear(3, 5, 7, 0, 0);
  check_linear(3, 5, 7, 1, 0);
  check_linear(67, 129, 65, 1, 0);
  check_linear(130, 400, 33, 1, 3);
  check_linear(256, 512, 128, 1, 0);
  check_linear(536, 1024, 1024, 1, 0);
  fprintf(stderr, "    %ld of 6 biased products without cuBLASLt's bias epilogue\n", k_counter(G, "bias_fallback") - before);
}

/* Linear + GELU in one op: the pre-activation and the activation against the
 * CPU's two ops.  Depending on the backend's switches it runs as cuBLASLt's
 * GELU epilogue (N a multiple of 8), the few-row kernel, or two ops. */
static void check_linear_gelu(int M, int N, int K, int with_bias) {
  char what[96];
  pair x = act_in((size_t)M * K, -1, 1), W = act_in((size_t)N * K, -1, 1), b = f32_in(N, -1, 1);
  pair pre = act_out((size_t)M * N), y = act_out((size_t)M * N);
  k_linear_gelu(C, pre.c, y.c, x.c, W.c, with_bias ? b.c : NULL, M, N, K);
  k_linear_gelu(G, pre.g, y.g, x.g, W.g, with_bias ? b.g : NULL, M, N, K);
  snprintf(what, sizeof what, "linear_gelu pre %dx%dx%d bias %d", M, N, K, with_bias);
  expect_out(what, pre);
  snprintf(what, sizeof what, "linear_gelu act %dx%dx%d bias %d", M, N, K, with_bias);
  expect_out(what, y);
  pair_free(&x), pair_free(&W), pair_free(&b), pair_free(&pre), pair_free(&y);
}

static void t_linear_gelu(void) {
  long before = k_counter(G, "gelu_epilogue");
  check_linear_gelu(3, 5, 7, 1);       /* N not a multiple of 8: two ops */
  check_linear_gelu(67, 128, 64, 1);   /* the few-row kernel when it is on */
  check_linear_gelu(16, 64, 64, 0);    /* no bias */
  check_linear_gelu(130, 400, 33, 1);
  check_linear_gelu(256, 512, 128, 1);
  fprintf(stderr, "    %ld of 5 through cuBLASLt's GELU epilogue\n", k_counter(G, "gelu_epilogue") - before);
}

/* The few-row kernel (RDT_CUDA_SKINNY=1, 16-bit activations): shapes it takes
 * (M <= 128, N and K multiples of 64, aligned x) and shapes it must leave to
 * cuBLASLt; k_counter tells which ran. */
static void check_skinny(int M, int N, int K, int with_bias, int offset, int taken) {
  long before = k_counter(G, "skinny_linear");
  check_linear(M, N, K, with_bias, offset);
  long ran = k_counter(G, "skinny_linear") - before;
  CHECK_MSG(ran == (taken && k_act_dtype(G) != RDT_F32), "linear %dx%dx%d offset %d: skinny kernel ran %ld times",
            M, N, K, offset, ran);
}

static void t_skinny(void) {
  check_skinny(1, 64, 64, 1, 0, 1);
  check_skinny(16, 128, 1152, 1, 0, 1);
  check_skinny(67, 2048, 2048, 1, 0, 1);     /* RDT-1B, batch 1 */
  check_skinny(100, 192, 320, 0, 0, 1);
  check_skinny(128, 64, 128, 1, 0, 1);
  check_skinny(129, 64, 128, 1, 0, 0);       /* too many rows */
  check_skinny(67, 129, 64, 1, 0, 0);        /* N not a multiple of 64 */
  check_skinny(67, 128, 65, 1, 0, 0);        /* K not a multiple of 64 */
  check_skinny(67, 128, 128, 1, 3, 0);       /* x not 16-byte aligned */
}

static void check_linear_backward(int M, int N, int K, int acc) {
  char what[96];
  pair x = act_in((size_t)M * K, -1, 1), W = act_in((size_t)N * K, -1, 1), dy = act_in((size_t)M * N, -1, 1);
  pair dx = acc ? act_in((size_t)M * K, -1, 1) : act_out((size_t)M * K);
  pair dW = f32_in((size_t)N * K, -1, 1), db = f32_in(N, -1, 1); /* accumulated into */
  k_linear_backward(C, dx.c, dW.c, db.c, dy.c, x.c, W.c, M, N, K, acc);
  k_linear_backward(G, dx.g, dW.g, db.g, dy.g, x.g, W.g, M, N, K, acc);
  snprintf(what, sizeof what, "linear_backward dx %dx%dx%d acc %d", M, N, K, acc);
  expect_out(what, dx);
  snprintf(what, sizeof what, "linear_backward dW %dx%dx%d", M, N, K);
  expect_out(what, dW);
  snprintf(what, sizeof what, "linear_backward dbias %dx%dx%d", M, N, K);
  expect_out(what, db);
  /* each gradient alone (the others NULL) */
  k_linear_backward(C, NULL, dW.c, NULL, dy.c, x.c, W.c, M, N, K, acc);
  k_linear_backward(G, NULL, dW.g, NULL, dy.g, x.g, W.g, M, N, K, acc);
  snprintf(what, sizeof what, "linear_backward dW only (2nd accumulation) %dx%dx%d", M, N, K);
  expect_out(what, dW);
  pair_free(&x), pair_free(&W), pair_free(&dy), pair_free(&dx), pair_free(&dW), pair_free(&db);
}

static void t_linear_backward(void) {
  check_linear_backward(1, 1, 1, 0);
  check_linear_backward(3, 5, 7, 1);
  check_linear_backward(67, 129, 65, 0);
  check_linear_backward(130, 400, 33, 1);
  check_linear_backward(536, 512, 256, 0);
}

/* ---------------------------------------------------------------- norms */
static void t_rmsnorm(void) {
  /* The last two: the weight gradient's column sums split into chunks (4 of
   * 250 rows; 36 of 250, as the k-norm over image tokens). */
  int dims[] = {2, 3, 64, 67, 2048, 2048, 64}, nrows[] = {50, 50, 50, 50, 50, 1000, 9000};
  for (int i = 0; i < 7; i++) {
    int dim = dims[i], rows = nrows[i];
    size_t n = (size_t)rows * dim;
    char what[96];
    pair x = act_in(n, -0.5, 1.5), w = f32_in(dim, 0.5, 1.5), y = act_out(n), rstd = f32_out(rows);
    k_rmsnorm(C, y.c, rstd.c, x.c, w.c, rows, dim, 1e-6f);
    k_rmsnorm(G, y.g, rstd.g, x.g, w.g, rows, dim, 1e-6f);
    snprintf(what, sizeof what, "rmsnorm y %dx%d", rows, dim);
    expect_out(what, y);
    snprintf(what, sizeof what, "rmsnorm rstd %dx%d", rows, dim);
    expect_out(what, rstd);
    /* backward, from the CPU's rstd on both sides */
    float *rs = rdt_malloc(rows * sizeof(float));
    k_download(C, rs, rstd.c, rows * sizeof(float));
    pair r = pair_of(rs, rows, 1), dy = act_in(n, -1, 1), dw = f32_in(dim, -1, 1);
    for (int acc = 0; acc < 2; acc++) {
      pair dx = acc ? act_in(n, -1, 1) : act_out(n);
      k_rmsnorm_backward(C, dx.c, dw.c, dy.c, x.c, w.c, r.c, rows, dim, acc);
      k_rmsnorm_backward(G, dx.g, dw.g, dy.g, x.g, w.g, r.g, rows, dim, acc);
      snprintf(what, sizeof what, "rmsnorm_backward dx %dx%d acc %d", rows, dim, acc);
      expect_out(what, dx);
      snprintf(what, sizeof what, "rmsnorm_backward dw %dx%d (accumulated)", rows, dim);
      expect_out(what, dw);
      pair_free(&dx);
    }
    free(rs);
    /* the residual sum and the norm in one op (both kernels: warp and block
     * per row).  The GPU normalises its sum rounded to the activation type,
     * so the CPU's norm is taken of that same sum. */
    pair a = act_in(n, -1, 1), s = act_out(n);
    k_add_rmsnorm(C, s.c, y.c, rstd.c, a.c, x.c, w.c, rows, dim, 1e-6f);
    k_add_rmsnorm(G, s.g, y.g, rstd.g, a.g, x.g, w.g, rows, dim, 1e-6f);
    snprintf(what, sizeof what, "add_rmsnorm sum %dx%d", rows, dim);
    expect_out(what, s);
    float *sg = rdt_malloc(n * sizeof(float));
    k_download_act(G, sg, s.g, n);
    k_upload(C, s.c, sg, n * sizeof(float));
    free(sg);
    k_rmsnorm(C, y.c, rstd.c, s.c, w.c, rows, dim, 1e-6f);
    snprintf(what, sizeof what, "add_rmsnorm y %dx%d", rows, dim);
    expect_out(what, y);
    snprintf(what, sizeof what, "add_rmsnorm rstd %dx%d", rows, dim);
    expect_out(what, rstd);
    /* on the GPU too the fused op equals k_add then k_rmsnorm, bit for bit */
    pair s2 = act_out(n), y2 = act_out(n), rstd2 = f32_out(rows);
    k_add(G, s2.g, a.g, x.g, n);
    k_rmsnorm(G, y2.g, rstd2.g, s2.g, w.g, rows, dim, 1e-6f);
    float *u = rdt_malloc(n * sizeof(float)), *v = rdt_malloc(n * sizeof(float));
    k_download_act(G, u, s.g, n), k_download_act(G, v, s2.g, n);
    CHECK_MSG(memcmp(u, v, n * sizeof(float)) == 0, "add_rmsnorm %dx%d: sum differs from k_add", rows, dim);
    k_download_act(G, u, y.g, n), k_download_act(G, v, y2.g, n);
    CHECK_MSG(memcmp(u, v, n * sizeof(float)) == 0, "add_rmsnorm %dx%d: y differs from k_add + k_rmsnorm", rows, dim);
    /* two norms in one op (the q and k norms): against the CPU, and each
     * output bitwise what k_rmsnorm gives on the GPU */
    pair w2 = f32_in(dim, 0.5, 1.5), p0 = act_out(n), p1 = act_out(n), q0 = f32_out(rows), q1 = f32_out(rows);
    k_rmsnorm_pair(C, p0.c, q0.c, x.c, w.c, p1.c, q1.c, a.c, w2.c, rows, dim, 1e-6f);
    k_rmsnorm_pair(G, p0.g, q0.g, x.g, w.g, p1.g, q1.g, a.g, w2.g, rows, dim, 1e-6f);
    snprintf(what, sizeof what, "rmsnorm_pair y0 %dx%d", rows, dim);
    expect_out(what, p0);
    snprintf(what, sizeof what, "rmsnorm_pair y1 %dx%d", rows, dim);
    expect_out(what, p1);
    snprintf(what, sizeof what, "rmsnorm_pair rstd1 %dx%d", rows, dim);
    expect_out(what, q1);
    k_rmsnorm(G, y2.g, rstd2.g, a.g, w2.g, rows, dim, 1e-6f);
    k_download_act(G, u, y2.g, n), k_download_act(G, v, p1.g, n);
    CHECK_MSG(memcmp(u, v, n * sizeof(float)) == 0, "rmsnorm_pair %dx%d: y1 differs from k_rmsnorm", rows, dim);
    k_rmsnorm(G, y2.g, rstd2.g, x.g, w.g, rows, dim, 1e-6f);
    k_download_act(G, u, y2.g, n), k_download_act(G, v, p0.g, n);
    CHECK_MSG(memcmp(u, v, n * sizeof(float)) == 0, "rmsnorm_pair %dx%d: y0 differs from k_rmsnorm", rows, dim);
    pair_free(&w2), pair_free(&p0), pair_free(&p1), pair_free(&q0), pair_free(&q1);
    free(u), free(v);
    pair_free(&a), pair_free(&s), pair_free(&s2), pair_free(&y2), pair_free(&rstd2);
    pair_free(&x), pair_free(&w), pair_free(&y), pair_free(&rstd), pair_free(&r), pair_free(&dy), pair_free(&dw);
  }
}

static void t_other_norms(void) {
  int dims[] = {64, 72, 1152, 4096}, rows = 20;
  for (int i = 0; i < 4; i++) {
    int dim = dims[i];
    size_t n = (size_t)rows * dim;
    char what[96];
    pair x = act_in(n, -0.5, 1.5), w = f32_in(dim, 0.5, 1.5), bias = f32_in(dim, -1, 1), y = act_out(n);
    k_rmsnorm_meansq(C, y.c, x.c, w.c, rows, dim, 1e-6f);
    k_rmsnorm_meansq(G, y.g, x.g, w.g, rows, dim, 1e-6f);
    snprintf(what, sizeof what, "rmsnorm_meansq %dx%d", rows, dim);
    expect_out(what, y);
    k_layernorm(C, y.c, x.c, w.c, bias.c, rows, dim, 1e-6f);
    k_layernorm(G, y.g, x.g, w.g, bias.g, rows, dim, 1e-6f);
    snprintf(what, sizeof what, "layernorm %dx%d", rows, dim);
    expect_out(what, y);
    pair_free(&x), pair_free(&w), pair_free(&bias), pair_free(&y);
  }
}

/* ---------------------------------------------------------------- activations */
static void t_activations(void) {
  size_t n = 1037;
  pair x = act_in(n, -5, 5), dy = act_in(n, -1, 1), y = act_out(n);
  k_gelu(C, y.c, x.c, n), k_gelu(G, y.g, x.g, n);
  expect_out("gelu", y);
  k_silu(C, y.c, x.c, n), k_silu(G, y.g, x.g, n);
  expect_out("silu", y);
  for (int acc = 0; acc < 2; acc++) {
    pair dx = acc ? act_in(n, -1, 1) : act_out(n);
    k_gelu_backward(C, dx.c, dy.c, x.c, n, acc), k_gelu_backward(G, dx.g, dy.g, x.g, n, acc);
    expect_out(acc ? "gelu_backward acc 1" : "gelu_backward acc 0", dx);
    if (acc) pair_sync(dx);
    k_silu_backward(C, dx.c, dy.c, x.c, n, acc), k_silu_backward(G, dx.g, dy.g, x.g, n, acc);
    expect_out(acc ? "silu_backward acc 1 (onto gelu's)" : "silu_backward acc 0", dx);
    pair_free(&dx);
  }
  pair_free(&x), pair_free(&dy), pair_free(&y);
}

static void t_softmax(void) {
  int cols[] = {1, 7, 77, 1030}, rows = 33;
  for (int i = 0; i < 4; i++) {
    size_t n = (size_t)rows * cols[i];
    char what[64];
    pair x = act_in(n, -8, 8), y = act_out(n);
    k_softmax(C, y.c, x.c, rows, cols[i]), k_softmax(G, y.g, x.g, rows, cols[i]);
    snprintf(what, sizeof what, "softmax %dx%d", rows, cols[i]);
    expect_out(what, y);
    pair_free(&x), pair_free(&y);
  }
}

/* ---------------------------------------------------------------- attention */
typedef struct {
  int B, Tq, Tk, nh, hd;
  int mask;   /* 0 none, 1 random keys masked and the last batch fully masked */
  int bias;   /* additive bias (forward only) */
  int offset; /* q, k, v start this many elements into their buffers (unaligned rows) */
} attn_case;

/* lse: rows the CPU gives -inf must be -inf on the GPU; the rest compared. */
static void expect_lse(const char *what, pair lse) {
  float *c, *g;
  pair_get(lse, &c, &g);
  size_t k = 0;
  for (size_t i = 0; i < lse.n; i++) {
    if (c[i] == -INFINITY) {
      CHECK_MSG(g[i] == -INFINITY, "%s: row %zu fully masked on the CPU, lse %g on the GPU", what, i, g[i]);
    } else {
      c[k] = c[i], g[k] = g[i], k++;
    }
  }
  double e = rel_err(g, c, k);
  fprintf(stderr, "    %-52s %-4s err %.2e (bound %.0e)\n", what, dtype_now(), e, TOL_F32);
  CHECK_MSG(e <= TOL_F32, "%s [%s]: relative error %.3g > %.3g", what, dtype_now(), e, TOL_F32);
  free(c);
  free(g);
}

static void check_attention(attn_case a) {
  size_t nq = (size_t)a.B * a.Tq * a.nh * a.hd, nk = (size_t)a.B * a.Tk * a.nh * a.hd;
  size_t nrow = (size_t)a.B * a.nh * a.Tq;
  float scale = 1.0f / sqrtf((float)a.hd);
  char what[128], tag[80];
  snprintf(tag, sizeof tag, "B%d Tq%d Tk%d nh%d hd%d mask%d bias%d off%d", a.B, a.Tq, a.Tk, a.nh, a.hd, a.mask,
           a.bias, a.offset);

  pair q = act_in(nq + a.offset, -2, 2), k = act_in(nk + a.offset, -2, 2), v = act_in(nk + a.offset, -1, 1);
  const void *qc = k_act_at(C, q.c, a.offset), *kc = k_act_at(C, k.c, a.offset), *vc = k_act_at(C, v.c, a.offset);
  const void *qg = k_act_at(G, q.g, a.offset), *kg = k_act_at(G, k.g, a.offset), *vg = k_act_at(G, v.g, a.offset);
  pair bias = f32_in((size_t)a.nh * a.Tq * a.Tk, -1, 1);
  uint8_t *m = rdt_malloc((size_t)a.B * a.Tk);
  for (int b = 0; b < a.B; b++)
    for (int j = 0; j < a.Tk; j++) m[(size_t)b * a.Tk + j] = a.mask && (b == a.B - 1 || urand() < 0.3) ? 0 : 1;
  if (a.mask && a.B > 1) m[0] = 1; /* batch 0 keeps at least one key */
  uint8_t *mc = k_alloc(C, (size_t)a.B * a.Tk), *mg = k_alloc(G, (size_t)a.B * a.Tk);
  k_upload(C, mc, m, (size_t)a.B * a.Tk), k_upload(G, mg, m, (size_t)a.B * a.Tk);
  const uint8_t *mask_c = a.mask ? mc : NULL, *mask_g = a.mask ? mg : NULL;

  pair out = act_out(nq), lse = f32_out(nrow);
  k_attention(C, out.c, lse.c, qc, kc, vc, mask_c, a.bias ? bias.c : NULL, a.B, a.Tq, a.Tk, a.nh, a.hd, scale);
  k_attention(G, out.g, lse.g, qg, kg, vg, mask_g, a.bias ? bias.g : NULL, a.B, a.Tq, a.Tk, a.nh, a.hd, scale);
  snprintf(what, sizeof what, "attention out %s", tag);
  expect_out(what, out);
  snprintf(what, sizeof what, "attention lse %s", tag);
  expect_lse(what, lse);

  if (!a.bias) {
    /* Backward from identical out (the GPU's, as stored) and lse (the CPU's). */
    float *oc, *og, *lc, *lg;
    pair_get(out, &oc, &og);
    pair_get(lse, &lc, &lg);
    pair o = pair_of(og, nq, 0), l = pair_of(lc, nrow, 1), dout = act_in(nq, -1, 1);
    pair dq = act_out(nq), dk = act_out(nk), dv = act_out(nk);
    k_attention_backward(C, dq.c, dk.c, dv.c, dout.c, qc, kc, vc, o.c, l.c, mask_c, a.B, a.Tq, a.Tk, a.nh, a.hd,
                         scale);
    k_attention_backward(G, dq.g, dk.g, dv.g, dout.g, qg, kg, vg, o.g, l.g, mask_g, a.B, a.Tq, a.Tk, a.nh, a.hd,
                         scale);
    snprintf(what, sizeof what, "attention_backward dq %s", tag);
    expect_out(what, dq);
    snprintf(what, sizeof what, "attention_backward dk %s", tag);
    expect_out(what, dk);
    snprintf(what, sizeof what, "attention_backward dv %s", tag);
    expect_out(what, dv);
    /* deterministic: a second run gives the same bits (dq: the split-key path sums ranges) */
    float *dk1 = rdt_malloc(nk * sizeof(float)), *dk2 = rdt_malloc(nk * sizeof(float));
    float *dq1 = rdt_malloc(nq * sizeof(float)), *dq2 = rdt_malloc(nq * sizeof(float));
    k_download_act(G, dk1, dk.g, nk);
    k_download_act(G, dq1, dq.g, nq);
    k_attention_backward(G, dq.g, dk.g, dv.g, dout.g, qg, kg, vg, o.g, l.g, mask_g, a.B, a.Tq, a.Tk, a.nh, a.hd,
                         scale);
    k_download_act(G, dk2, dk.g, nk);
    k_download_act(G, dq2, dq.g, nq);
    CHECK_MSG(memcmp(dk1, dk2, nk * sizeof(float)) == 0, "attention_backward %s: dk is not deterministic", tag);
    CHECK_MSG(memcmp(dq1, dq2, nq * sizeof(float)) == 0, "attention_backward %s: dq is not deterministic", tag);
    free(oc), free(og), free(lc), free(lg), free(dk1), free(dk2), free(dq1), free(dq2);
    pair_free(&o), pair_free(&l), pair_free(&dout), pair_free(&dq), pair_free(&dk), pair_free(&dv);
  }
  k_free(C, mc), k_free(G, mg), free(m);
  pair_free(&q), pair_free(&k), pair_free(&v), pair_free(&bias), pair_free(&out), pair_free(&lse);
}

static void t_attention(void) {
  attn_case cases[] = {
      {2, 67, 67, 4, 64, 0, 0, 0},    /* RDT-1B self-attention */
      {2, 67, 300, 3, 32, 1, 0, 0},   /* RDT-170M cross-attention, masked language keys */
      {2, 67, 50, 4, 16, 1, 0, 0},    /* configs/tiny.yaml head dim */
      {1, 40, 45, 2, 72, 0, 1, 0},    /* SigLIP head dim, with a bias */
      {2, 50, 77, 2, 72, 0, 0, 0},    /* SigLIP head dim without a bias: tensor cores at 80 */
      {2, 33, 100, 3, 72, 1, 0, 3},   /* ... masked, rows not 16-byte aligned */
      {2, 9, 1000, 2, 128, 1, 0, 0},  /* long keys, hd 128 */
      {1, 67, 4374, 2, 64, 0, 0, 0},  /* image cross-attention length (keys split over blocks) */
      {1, 1, 3, 1, 32, 0, 0, 0},      /* one query, three keys (with one key every gradient but dv is 0) */
      {3, 33, 31, 2, 64, 0, 1, 0},    /* T5-style bias, odd sizes */
      {2, 40, 200, 2, 64, 1, 0, 3},   /* rows not 16-byte aligned */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_attention(cases[i]);
}

/* The tensor-core attention's opt-in paths, at sizes the emulation runs
 * quickly, with the switches of the section (main) set: RDT_CUDA_ATTN_DQ_SPLIT
 * (dq over key ranges; the emulated device has 132 SMs, so every case below
 * splits, the last range short), RDT_CUDA_ATTN_WARPS=5 (80 query rows per
 * block) and RDT_CUDA_ATTN_PREFETCH=1 (K/V tiles prefetched into registers;
 * rows not 16-byte aligned take the synchronous loads).  k_counter shows that
 * each path ran exactly when its switch is on. */
static void t_attention_paths(void) {
  attn_case cases[] = {
      {2, 20, 300, 2, 64, 1, 0, 0}, /* keys in ranges 128, 128, 44; masked keys, batch 1 fully masked */
      {1, 67, 230, 2, 32, 0, 0, 0}, /* RDT's 67 queries: one 5-warp block; forward split 128 + 102 */
      {2, 33, 200, 3, 72, 1, 0, 3}, /* SigLIP's head dim (split dq only), rows not 16-byte aligned */
      {2, 50, 160, 2, 64, 1, 0, 3}, /* rows not 16-byte aligned: no prefetch; ranges 96 + 64 */
      {2, 100, 150, 2, 64, 0, 0, 0}, /* two query blocks of any width (the second partly empty); ranges 96 + 54 */
  };
  const char *e;
  int split = (e = getenv("RDT_CUDA_ATTN_DQ_SPLIT")) && atoi(e) > 0;
  int wide = (e = getenv("RDT_CUDA_ATTN_WARPS")) && atoi(e) == 5;
  int prefetch = (e = getenv("RDT_CUDA_ATTN_PREFETCH")) && strcmp(e, "1") == 0;
  long n_split = k_counter(G, "attn_dq_split"), n_wide = k_counter(G, "attn_wide");
  long n_prefetch = k_counter(G, "attn_prefetch");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_attention(cases[i]);
  n_split = k_counter(G, "attn_dq_split") - n_split, n_wide = k_counter(G, "attn_wide") - n_wide;
  n_prefetch = k_counter(G, "attn_prefetch") - n_prefetch;
  fprintf(stderr, "    launches: split dq %ld, 5-warp %ld, prefetching %ld\n", n_split, n_wide, n_prefetch);
  /* each case runs the forward once and the backward twice; the hd 72 case
   * takes neither 5 warps nor prefetch */
  int nc = (int)(sizeof cases / sizeof cases[0]);
  CHECK_MSG(n_split == (split ? 2 * nc : 0), "split dq ran %ld times (switch %d)", n_split, split);
  CHECK_MSG(n_wide == (wide ? 3 * (nc - 1) : 0), "5-warp kernels ran %ld times (switch %d)", n_wide, wide);
  CHECK_MSG(n_prefetch == (prefetch ? 3 * (nc - 1) : 0), "prefetching kernels ran %ld times (switch %d)", n_prefetch,
            prefetch);
}

/* ---------------------------------------------------------------- element-wise and layout */
static void t_elementwise(void) {
  size_t n = 1037;
  pair a = act_in(n, -2, 2), c = act_in(n, -2, 2), y = act_out(n);
  k_add(C, y.c, a.c, c.c, n), k_add(G, y.g, a.g, c.g, n);
  expect_out("add", y);
  k_mul(C, y.c, a.c, c.c, n), k_mul(G, y.g, a.g, c.g, n);
  expect_out("mul", y);
  pair_sync(y);
  k_add_inplace(C, y.c, a.c, n), k_add_inplace(G, y.g, a.g, n);
  expect_out("add_inplace", y);
  pair_sync(y);
  k_axpby(C, y.c, 0.7f, c.c, -1.3f, n), k_axpby(G, y.g, 0.7f, c.g, -1.3f, n);
  expect_out("axpby", y);
  pair_free(&a), pair_free(&c), pair_free(&y);

  int Bs[] = {3, 130}; /* 130 crosses the per-launch chunk of host values */
  for (int i = 0; i < 2; i++) {
    int B = Bs[i];
    size_t per = i ? 5 : 211, m = (size_t)B * per;
    float *ca = host_rand(B, -2, 2, 0), *cc = host_rand(B, -2, 2, 0);
    pair x = act_in(m, -1, 1), z = act_in(m, -1, 1), out = act_out(m);
    k_mix(C, out.c, x.c, z.c, ca, cc, B, per), k_mix(G, out.g, x.g, z.g, ca, cc, B, per);
    char what[64];
    snprintf(what, sizeof what, "mix B%d per%zu", B, per);
    expect_out(what, out);
    pair_free(&x), pair_free(&z), pair_free(&out), free(ca), free(cc);
  }

  int B = 3, rows = 64, dim = 37;
  pair ym = act_in((size_t)B * rows * dim, -1, 1), mv = act_in((size_t)B * dim, -1, 1);
  k_mul_rowvec(C, ym.c, mv.c, B, rows, dim), k_mul_rowvec(G, ym.g, mv.g, B, rows, dim);
  expect_out("mul_rowvec", ym);
  pair_free(&ym), pair_free(&mv);
}

static void t_layout(void) {
  int rows = 17, cols = 23, src_ld = 40, dst_ld = 31;
  pair src = act_in((size_t)rows * src_ld, -1, 1), dst = act_in((size_t)rows * dst_ld, -1, 1);
  k_copy2d(C, dst.c, dst_ld, src.c, src_ld, rows, cols, 0), k_copy2d(G, dst.g, dst_ld, src.g, src_ld, rows, cols, 0);
  expect_out("copy2d acc 0 (rest of dst untouched)", dst);
  k_copy2d(C, dst.c, dst_ld, src.c, src_ld, rows, cols, 1), k_copy2d(G, dst.g, dst_ld, src.g, src_ld, rows, cols, 1);
  expect_out("copy2d acc 1", dst);
  pair_free(&src), pair_free(&dst);

  int B = 3, T = 67, dim = 48;
  size_t n = (size_t)B * T * dim;
  pair y = act_in(n, -1, 1), pos = f32_in((size_t)T * dim, -1, 1), dy = act_in(n, -1, 1);
  k_add_pos(C, y.c, pos.c, B, T, dim), k_add_pos(G, y.g, pos.g, B, T, dim);
  expect_out("add_pos", y);
  k_add_pos_backward(C, pos.c, dy.c, B, T, dim), k_add_pos_backward(G, pos.g, dy.g, B, T, dim);
  expect_out("add_pos_backward (accumulated)", pos);
  pair_free(&y), pair_free(&pos), pair_free(&dy);

  int ns[] = {3, 130}, dims[] = {7, 256};
  for (int i = 0; i < 2; i++) {
    float *t = host_rand(ns[i], 0, 999, 0);
    t[0] = 999.0f;
    pair e = act_out((size_t)ns[i] * dims[i]);
    k_timestep_embed(C, e.c, t, ns[i], dims[i]), k_timestep_embed(G, e.g, t, ns[i], dims[i]);
    char what[64];
    snprintf(what, sizeof what, "timestep_embed n%d dim%d", ns[i], dims[i]);
    expect_out(what, e);
    pair_free(&e), free(t);
  }
}

/* ---------------------------------------------------------------- loss and optimizer */
static void t_loss(void) {
  size_t n = 64 * 128 * 3 + 5;
  pair pred = act_in(n, -1, 1), target = act_in(n, -1, 1), d = act_out(n);
  float lc = k_mse_loss(C, d.c, pred.c, target.c, n, 0.5f);
  float lg = k_mse_loss(G, d.g, pred.g, target.g, n, 0.5f);
  fprintf(stderr, "    %-52s %-4s cpu %.8g cuda %.8g\n", "mse_loss", dtype_now(), lc, lg);
  CHECK_CLOSE(lg, lc, TOL_F32, 0);
  expect_out("mse_loss dpred", d);
  CHECK_CLOSE(k_mse_loss(G, NULL, pred.g, target.g, n, 1.0f), lc, TOL_F32, 0);
  pair_free(&pred), pair_free(&target), pair_free(&d);
}

static void t_optimizer(void) {
  size_t n = 4099;
  pair p = f32_in(n, -1, 1), m = f32_in(n, -0.01, 0.01), v = f32_in(n, 0, 1e-4), ema = f32_in(n, -1, 1);
  for (int step = 1; step <= 3; step++) {
    pair g = f32_in(n, -1, 1);
    k_adamw(C, p.c, g.c, m.c, v.c, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
    k_adamw(G, p.g, g.g, m.g, v.g, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
    k_ema(C, ema.c, p.c, n, 0.99f), k_ema(G, ema.g, p.g, n, 0.99f);
    pair_free(&g);
  }
  expect_out("adamw p (3 steps)", p);
  expect_out("adamw m", m);
  expect_out("adamw v", v);
  expect_out("ema", ema);
  k_scale_f32(C, p.c, n, -0.37f), k_scale_f32(G, p.g, n, -0.37f);
  expect_out("scale_f32", p);
  double sc = k_sumsq(C, p.c, n), sg = k_sumsq(G, p.g, n);
  fprintf(stderr, "    %-52s %-4s cpu %.12g cuda %.12g\n", "sumsq", dtype_now(), sc, sg);
  CHECK_CLOSE(sg, sc, 1e-6, 0);
  /* the fused step: clipping scale, AdamW, EMA (a copy at decay 0), compute copy */
  pair wc = act_out(n);
  for (int step = 1; step <= 2; step++) {
    pair g = f32_in(n, -1, 1);
    float decay = step == 1 ? 0.f : 0.99f;
    k_adamw_ema(C, p.c, g.c, m.c, v.c, ema.c, wc.c, n, 0.37f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step, decay);
    k_adamw_ema(G, p.g, g.g, m.g, v.g, ema.g, wc.g, n, 0.37f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step, decay);
    expect_out("adamw_ema: gradient left unscaled", g);
    pair_free(&g);
  }
  expect_out("adamw_ema p (2 steps)", p);
  expect_out("adamw_ema m", m);
  expect_out("adamw_ema v", v);
  expect_out("adamw_ema ema", ema);
  expect_out("adamw_ema compute copy", wc);
  pair_free(&p), pair_free(&m), pair_free(&v), pair_free(&ema), pair_free(&wc);
}

/* ---------------------------------------------------------------- conversions and memory */
/* Device conversions round exactly like core's host conversions. */
static void t_conversions(void) {
  size_t n = 5000;
  float *h = host_rand(n, -70000, 70000, 0);
  for (size_t i = 0; i < 100; i++) h[i] = (float)((i % 2 ? -1.0 : 1.0) * ldexp(1.0 + urand(), -(int)i));
  float *w = k_alloc(G, n * 4), *back = k_alloc(G, n * 4), *got = rdt_malloc(n * 4);
  void *a = k_alloc(G, n * k_act_size(G));
  k_upload(G, w, h, n * 4);
  k_f32_to_act(G, a, w, n);
  k_download_act(G, got, a, n);
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &(float){act_round(h[i])}, 4) != 0;
  CHECK_MSG(bad == 0, "f32_to_act: %zu of %zu values differ from host rounding", bad, n);
  float *h2 = rdt_malloc(n * 4);
  k_act_to_f32(G, back, a, n);
  k_download(G, h2, back, n * 4);
  CHECK(memcmp(h2, got, n * 4) == 0);
  /* weight copies follow the master after refresh */
  void *wc = k_weight_copy(G, w, n);
  k_scale_f32(G, w, n, 0.5f);
  k_weight_refresh(G, wc, w, n);
  k_download_act(G, got, wc, n);
  bad = 0;
  for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &(float){act_round(h[i] * 0.5f)}, 4) != 0;
  CHECK_MSG(bad == 0, "weight_refresh: %zu of %zu values differ", bad, n);
  k_weight_copy_free(G, wc, w);
  k_free(G, w), k_free(G, back), k_free(G, a), free(h), free(h2), free(got);
}

static void t_memory(void) {
  size_t before = k_bytes_in_use(G), n = 1000003;
  unsigned char *p = k_alloc(G, n), *q = k_alloc(G, n), *h = rdt_malloc(n);
  CHECK(k_bytes_in_use(G) >= before + 2 * n);
  CHECK(((uintptr_t)p & 255) == 0 && ((uintptr_t)q & 255) == 0);
  memset(h, 0xAB, n);
  k_download(G, h, p, n);
  size_t nonzero = 0;
  for (size_t i = 0; i < n; i++) nonzero += h[i] != 0;
  CHECK_MSG(nonzero == 0, "k_alloc: %zu bytes not zero", nonzero);
  for (size_t i = 0; i < n; i++) h[i] = (unsigned char)(i * 7 + 1);
  k_upload(G, p, h, n);
  k_copy(G, q, p, n);
  k_memset0(G, p, n / 2);
  unsigned char *h2 = rdt_malloc(n);
  k_download(G, h2, q, n);
  CHECK(memcmp(h, h2, n) == 0);
  k_download(G, h2, p, n);
  size_t wrong = 0;
  for (size_t i = 0; i < n; i++) wrong += h2[i] != (i < n / 2 ? 0 : h[i]);
  CHECK_MSG(wrong == 0, "memset0: %zu bytes wrong", wrong);
  k_free(G, p), k_free(G, q);
  CHECK(k_bytes_in_use(G) == before);
  k_sync(G);
  free(h), free(h2);
}

/* ---------------------------------------------------------------- main */
/* RDT_TEST_ONLY=t_a,t_b (tests/test.h) runs only those groups, for the slow host emulation. */
static void run_all(void) {
  RUN(t_linear);
  RUN(t_linear_gelu);
  RUN(t_linear_backward);
  RUN(t_rmsnorm);
  RUN(t_other_norms);
  RUN(t_activations);
  RUN(t_softmax);
  RUN(t_attention);
  RUN(t_elementwise);
  RUN(t_layout);
  RUN(t_loss);
  RUN(t_optimizer);
  RUN(t_conversions);
}

static const rdt_dtype TYPES[3] = {RDT_F32, RDT_BF16, RDT_F16};

/* Activations of type TYPES[i] on the CUDA side, their bound, a header line. */
static void use_dtype(int i, const char *section) {
  CHECK(k_set_act_dtype(G, TYPES[i]) == 0);
  TOL = TYPES[i] == RDT_F32 ? TOL_F32 : TOL_HALF;
  fprintf(stderr, "-- activations %s%s\n", rdt_dtype_name(TYPES[i]), section);
}

/* A fresh CUDA backend (it reads its switches from the environment at open). */
static void reopen(void) {
  k_close(G);
  G = k_open("cuda", 0);
}

int main(void) {
  if (!k_cuda_available()) {
    fprintf(stderr, "skipped: no CUDA device visible\n");
    return 77;
  }
  C = k_open("cpu", 0);
  G = k_open("cuda", 0);
  if (!C || !G) {
    fprintf(stderr, "cannot open a backend: %s\n", rdt_error());
    return 1;
  }
  fprintf(stderr, "%s against %s\n", k_name(G), k_name(C));
  CHECK(k_act_dtype(G) == RDT_BF16); /* the CUDA default */
  RUN(t_memory);
  for (int i = 0; i < 3; i++) {
    use_dtype(i, "");
    run_all();
  }
  /* The alternative paths: the bias added by a separate kernel instead of the
   * GEMM epilogue, and 16-bit attention on CUDA cores instead of tensor cores. */
  setenv("RDT_CUDA_BIAS_EPILOGUE", "0", 1);
  setenv("RDT_CUDA_ATTN_TC", "0", 1);
  reopen();
  for (int i = 0; i < 3; i++) {
    use_dtype(i, ", bias without the epilogue, attention without tensor cores");
    RUN(t_linear);
    if (TYPES[i] != RDT_F32) RUN(t_attention);
  }
  /* The few-row GEMM kernel (opt-in). */
  unsetenv("RDT_CUDA_BIAS_EPILOGUE");
  unsetenv("RDT_CUDA_ATTN_TC");
  setenv("RDT_CUDA_SKINNY", "1", 1);
  reopen();
  for (int i = 0; i < 3; i++) {
    use_dtype(i, ", few-row products by the skinny kernel");
    RUN(t_skinny);
    RUN(t_linear_gelu);
  }
  /* cuBLASLt's GELU epilogue (opt-in) */
  unsetenv("RDT_CUDA_SKINNY");
  setenv("RDT_CUDA_GELU_EPILOGUE", "1", 1);
  reopen();
  for (int i = 0; i < 3; i++) {
    use_dtype(i, ", linear + GELU through cuBLASLt's GELU epilogue");
    RUN(t_linear_gelu);
  }
  unsetenv("RDT_CUDA_GELU_EPILOGUE");
  /* The tensor-core attention's opt-in paths, in four combinations (16-bit
   * activations: the F32 attention runs on the CUDA cores). */
  static const char *const ATTN_PATHS[4][3] = {
      /* RDT_CUDA_ATTN_DQ_SPLIT, RDT_CUDA_ATTN_WARPS, RDT_CUDA_ATTN_PREFETCH */
      {"1", "5", "1"}, {"1", "2", "0"}, {"0", "5", "0"}, {"0", "2", "1"}};
  for (int c = 0; c < 4; c++) {
    char section[128];
    setenv("RDT_CUDA_ATTN_DQ_SPLIT", ATTN_PATHS[c][0], 1);
    setenv("RDT_CUDA_ATTN_WARPS", ATTN_PATHS[c][1], 1);
    setenv("RDT_CUDA_ATTN_PREFETCH", ATTN_PATHS[c][2], 1);
    reopen();
    snprintf(section, sizeof section, ", attention: dq split %s, %s warps, prefetch %s", ATTN_PATHS[c][0],
             ATTN_PATHS[c][1], ATTN_PATHS[c][2]);
    for (int i = 1; i < 3; i++) {
      use_dtype(i, section);
      RUN(t_attention_paths);
    }
  }
  k_close(G);
  k_close(C);
  return test_done();
}
