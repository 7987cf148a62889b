/* tests/kernels/threads_test.c: every op gives bitwise the same result with
 * 1, 2 and 3 threads (sizes chosen so that each op splits into many tasks),
 * and the same result when run twice. */
#include "kref.h"

/* One output of the suite: a name and its floats. */
typedef struct {
  const char *name;
  float *data;
  size_t n;
} result;

#define MAXR 32
typedef struct {
  result r[MAXR];
  int count;
} results;

static float *add_result(results *rs, const char *name, size_t n) {
  RDT_ASSERT(rs->count < MAXR);
  result *r = &rs->r[rs->count++];
  r->name = name;
  r->n = n;
  r->data = rdt_calloc(n, sizeof(float));
  return r->data;
}

/* Fixed inputs (same seed every time) through every op on backend b. */
static void run_suite(k_backend *b, results *rs) {
  kref_seed(42);
  int M = 700, N = 300, K = 260;                  /* linear: several tiles each way */
  float *x = kref_rand((size_t)M * K, -1, 1), *W = kref_rand((size_t)N * K, -1, 1), *bias = kref_rand(N, -1, 1);
  float *dy = kref_rand((size_t)M * N, -1, 1);
  float *y = add_result(rs, "linear", (size_t)M * N);
  k_linear(b, y, x, W, bias, M, N, K);
  float *dx = add_result(rs, "linear dx", (size_t)M * K), *dW = add_result(rs, "linear dW", (size_t)N * K);
  float *db = add_result(rs, "linear db", N);
  k_linear_backward(b, dx, dW, db, dy, x, W, M, N, K, 0);

  int rows = 3000, dim = 67;                      /* norms: many row chunks */
  size_t n = (size_t)rows * dim;
  float *xn = kref_rand(n, -2, 2), *w = kref_rand(dim, 0.5, 1.5), *bn = kref_rand(dim, -1, 1);
  float *dyn = kref_rand(n, -1, 1), *rstd = add_result(rs, "rmsnorm rstd", rows);
  k_rmsnorm(b, add_result(rs, "rmsnorm", n), rstd, xn, w, rows, dim, 1e-6f);
  k_rmsnorm_backward(b, add_result(rs, "rmsnorm dx", n), add_result(rs, "rmsnorm dw", dim), dyn, xn, w, rstd, rows,
                     dim, 0);
  k_rmsnorm_meansq(b, add_result(rs, "meansq", n), xn, w, rows, dim, 1e-6f);
  k_layernorm(b, add_result(rs, "layernorm", n), xn, w, bn, rows, dim, 1e-6f);
  k_softmax(b, add_result(rs, "softmax", n), xn, rows, dim);
  k_gelu(b, add_result(rs, "gelu", n), xn, n);
  k_gelu_backward(b, add_result(rs, "gelu dx", n), dyn, xn, n, 0);
  k_silu(b, add_result(rs, "silu", n), xn, n);
  k_silu_backward(b, add_result(rs, "silu dx", n), dyn, xn, n, 0);
  float *sum = add_result(rs, "add", n);
  k_add(b, sum, xn, dyn, n);
  k_axpby(b, sum, 0.3f, xn, 0.7f, n);
  float ka[3] = {0.1f, 0.2f, 0.3f}, kc[3] = {0.9f, 0.8f, 0.7f};
  k_mix(b, add_result(rs, "mix", n), xn, dyn, ka, kc, 3, n / 3);
  float *pos = kref_rand((size_t)1000 * dim, -1, 1);
  float *withpos = add_result(rs, "add_pos", n);
  k_copy2d(b, withpos, dim, xn, dim, rows, dim, 0);
  k_add_pos(b, withpos, pos, 3, 1000, dim);
  k_add_pos_backward(b, add_result(rs, "add_pos dpos", (size_t)1000 * dim), dyn, 3, 1000, dim);
  float *loss = add_result(rs, "mse", 1);
  loss[0] = k_mse_loss(b, add_result(rs, "mse grad", n), xn, dyn, n, 1.0f);
  float *ss = add_result(rs, "sumsq", 2);
  double s = k_sumsq(b, xn, n);
  memcpy(ss, &s, sizeof s);

  int B = 2, Tq = 200, Tk = 150, nh = 3, hd = 16;  /* attention: two query blocks */
  size_t nq = (size_t)B * Tq * nh * hd, nk = (size_t)B * Tk * nh * hd;
  float *q = kref_rand(nq, -1, 1), *k = kref_rand(nk, -1, 1), *v = kref_rand(nk, -1, 1), *dout = kref_rand(nq, -1, 1);
  uint8_t *mask = rdt_malloc((size_t)B * Tk);
  for (int i = 0; i < B * Tk; i++) mask[i] = i % 7 != 3;
  float *out = add_result(rs, "attention", nq), *lse = add_result(rs, "attention lse", (size_t)B * nh * Tq);
  k_attention(b, out, lse, q, k, v, mask, NULL, B, Tq, Tk, nh, hd, 0.25f);
  k_attention_backward(b, add_result(rs, "attention dq", nq), add_result(rs, "attention dk", nk),
                       add_result(rs, "attention dv", nk), dout, q, k, v, out, lse, mask, B, Tq, Tk, nh, hd, 0.25f);

  float *p = add_result(rs, "adamw", n), *m = add_result(rs, "adamw m", n), *vv = add_result(rs, "adamw v", n);
  memcpy(p, xn, n * 4);
  k_adamw(b, p, dyn, m, vv, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
  float *e = add_result(rs, "ema", n);
  memcpy(e, xn, n * 4);
  k_ema(b, e, p, n, 0.99f);
  free(x), free(W), free(bias), free(dy), free(xn), free(w), free(bn), free(dyn), free(pos);
  free(q), free(k), free(v), free(dout), free(mask);
}

static void free_results(results *rs) {
  for (int i = 0; i < rs->count; i++) free(rs->r[i].data);
  rs->count = 0;
}

static void compare(const results *a, const results *b, int threads) {
  CHECK(a->count == b->count);
  for (int i = 0; i < a->count && i < b->count; i++)
    CHECK_MSG(memcmp(a->r[i].data, b->r[i].data, a->r[i].n * sizeof(float)) == 0,
              "%s differs between 1 and %d threads", a->r[i].name, threads);
}

static void t_thread_invariance(void) {
  results base = {0}, other = {0};
  k_backend *b1 = k_open("cpu", 1);
  CHECK(b1 && k_threads(b1) == 1);
  run_suite(b1, &base);
  k_close(b1);
  int counts[] = {2, 3, 1};   /* the last rerun of 1 thread checks plain repeatability */
  for (int c = 0; c < 3; c++) {
    k_backend *b = k_open("cpu", counts[c]);
    CHECK(k_threads(b) == counts[c]);
    run_suite(b, &other);
    compare(&base, &other, counts[c]);
    free_results(&other);
    k_close(b);
  }
  free_results(&base);
}

/* Many tiny parallel loops in a row: every task runs exactly once per loop.
 * dbias of a 1-row linear backward is 4 tasks of 64 columns each; adding
 * dy = 1 twenty thousand times must give exactly 20000 everywhere. */
static void t_pool_stress(void) {
  k_backend *b = k_open("cpu", 3);
  int N = 256, K = 1, iters = 20000;
  float dy[256], x[1] = {1}, W[256], *dbias = rdt_calloc(N, sizeof(float));
  for (int i = 0; i < N; i++) dy[i] = 1.0f, W[i] = 0.0f;
  for (int it = 0; it < iters; it++) k_linear_backward(b, NULL, NULL, dbias, dy, x, W, 1, N, K, 0);
  int bad = 0;
  for (int i = 0; i < N; i++) bad += dbias[i] != (float)iters;
  CHECK_MSG(bad == 0, "%d of %d columns wrong (first %g)", bad, N, dbias[0]);
  free(dbias);
  k_close(b);
}

int main(void) {
  RUN(t_thread_invariance);
  RUN(t_pool_stress);
  return test_done();
}
