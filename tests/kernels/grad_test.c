/* tests/kernels/grad_test.c: every backward op of the CPU backend against
 * central finite differences of a double-precision reference forward.
 *
 * For an op y = f(x) and a random upstream gradient dy, the loss is
 * L(x) = sum dy * f(x), evaluated in double, and dL/dx_i is estimated by
 * (L(x + h e_i) - L(x - h e_i)) / 2h with h = 1e-5 (truncation ~h^2, rounding
 * ~1e-11), so the estimate is good to far better than float precision. */
#include "kref.h"

static k_backend *B_;

typedef double (*loss_fn)(void *ctx);

/* Compare grad (from the kernel) with finite differences of L in x[i], for all
 * i when n <= 200, else for 200 random i.  acc0: what the kernel's output held
 * before accumulating (NULL: it overwrote). */
static void check_fd(const char *what, loss_fn L, void *ctx, double *x, size_t n, const float *grad,
                     const float *acc0, double tol) {
  size_t count = n <= 200 ? n : 200;
  float *got = rdt_malloc(count * sizeof(float));
  double *want = rdt_malloc(count * sizeof(double));
  for (size_t s = 0; s < count; s++) {
    size_t i = n <= 200 ? s : (size_t)((kref_uniform() + 1.0) * 0.5 * (double)n) % n;
    double keep = x[i], h = 1e-5;
    x[i] = keep + h;
    double up = L(ctx);
    x[i] = keep - h;
    double down = L(ctx);
    x[i] = keep;
    want[s] = (up - down) / (2 * h) + (acc0 ? acc0[i] : 0.0);
    got[s] = grad[i];
  }
  double e = kref_err(got, want, count);
  CHECK_MSG(e <= tol, "%s: error %.3g > %.3g", what, e, tol);
  free(got), free(want);
}

/* ---------------------------------------------------------------- rmsnorm */
typedef struct {
  double *x, *w, *dy, *y;
  int rows, dim;
} rms_ctx;

static double rms_loss(void *arg) {
  rms_ctx *c = arg;
  kref_rmsnorm(c->y, c->x, c->w, c->rows, c->dim, 1e-6);
  return kref_dot(c->dy, c->y, (size_t)c->rows * c->dim);
}

static void check_rmsnorm_grad(int rows, int dim, double offset, int acc) {
  size_t n = (size_t)rows * dim;
  float *x = kref_rand(n, -1 + offset, 1 + offset), *w = kref_rand(dim, 0.5, 1.5), *dy = kref_rand(n, -1, 1);
  float *y = rdt_malloc(n * 4), *rstd = rdt_malloc((size_t)rows * 4);
  float *dx = kref_rand(n, -1, 1), *dx0 = rdt_malloc(n * 4), *dw = kref_rand(dim, -1, 1), *dw0 = rdt_malloc(dim * 4);
  memcpy(dx0, dx, n * 4);
  memcpy(dw0, dw, (size_t)dim * 4);
  k_rmsnorm(B_, y, rstd, x, w, rows, dim, 1e-6f);
  k_rmsnorm_backward(B_, dx, dw, dy, x, w, rstd, rows, dim, acc);
  rms_ctx c = {kref_to_double(x, n), kref_to_double(w, dim), kref_to_double(dy, n), rdt_malloc(n * 8), rows, dim};
  char what[80];
  snprintf(what, sizeof what, "rmsnorm dx %dx%d acc %d", rows, dim, acc);
  check_fd(what, rms_loss, &c, c.x, n, dx, acc ? dx0 : NULL, 2e-5);
  snprintf(what, sizeof what, "rmsnorm dw %dx%d", rows, dim);
  check_fd(what, rms_loss, &c, c.w, (size_t)dim, dw, dw0, 2e-5);   /* dw always accumulates */
  free(x), free(w), free(dy), free(y), free(rstd), free(dx), free(dx0), free(dw), free(dw0);
  free(c.x), free(c.w), free(c.dy), free(c.y);
}

static void t_rmsnorm_backward(void) {
  check_rmsnorm_grad(1, 2, 0, 0);
  check_rmsnorm_grad(3, 5, 0, 0);
  check_rmsnorm_grad(3, 67, 0, 1);
  check_rmsnorm_grad(2, 129, 3.0, 0);   /* large mean: the centring matters */
  check_rmsnorm_grad(700, 64, 0, 0);    /* several row chunks for dw */
  /* dx only (dw NULL) must give the same dx */
  float x[6] = {1, -2, 0.5f, 3, 1, 2}, w[3] = {1, 2, 3}, dy[6] = {1, 0, -1, 0.5f, 0.5f, 2}, y[6], rs[2], a[6], b[6];
  float dw[3] = {0};
  k_rmsnorm(B_, y, rs, x, w, 2, 3, 1e-6f);
  k_rmsnorm_backward(B_, a, dw, dy, x, w, rs, 2, 3, 0);
  k_rmsnorm_backward(B_, b, NULL, dy, x, w, rs, 2, 3, 0);
  CHECK(memcmp(a, b, sizeof a) == 0);
}

/* ---------------------------------------------------------------- linear */
typedef struct {
  double *x, *W, *b, *dy, *y;
  int M, N, K;
} lin_ctx;

static double lin_loss(void *arg) {
  lin_ctx *c = arg;
  kref_linear(c->y, c->x, c->W, c->b, c->M, c->N, c->K);
  return kref_dot(c->dy, c->y, (size_t)c->M * c->N);
}

static void check_linear_grad(int M, int N, int K, int acc) {
  size_t nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N;
  float *x = kref_rand(nx, -1, 1), *W = kref_rand(nw, -1, 1), *b = kref_rand(N, -1, 1), *dy = kref_rand(ny, -1, 1);
  float *dx = kref_rand(nx, -1, 1), *dW = kref_rand(nw, -1, 1), *db = kref_rand(N, -1, 1);
  float *dx0 = rdt_malloc(nx * 4), *dW0 = rdt_malloc(nw * 4), *db0 = rdt_malloc((size_t)N * 4);
  memcpy(dx0, dx, nx * 4), memcpy(dW0, dW, nw * 4), memcpy(db0, db, (size_t)N * 4);
  k_linear_backward(B_, dx, dW, db, dy, x, W, M, N, K, acc);
  lin_ctx c = {kref_to_double(x, nx), kref_to_double(W, nw), kref_to_double(b, N), kref_to_double(dy, ny),
               rdt_malloc(ny * 8), M, N, K};
  char what[80];
  snprintf(what, sizeof what, "linear dx %dx%dx%d acc %d", M, N, K, acc);
  check_fd(what, lin_loss, &c, c.x, nx, dx, acc ? dx0 : NULL, 1e-5);
  snprintf(what, sizeof what, "linear dW %dx%dx%d", M, N, K);
  check_fd(what, lin_loss, &c, c.W, nw, dW, dW0, 1e-5);
  snprintf(what, sizeof what, "linear db %dx%dx%d", M, N, K);
  check_fd(what, lin_loss, &c, c.b, (size_t)N, db, db0, 1e-5);
  /* NULL outputs are skipped, the others unchanged */
  float *dx2 = rdt_malloc(nx * 4);
  memcpy(dx2, dx0, nx * 4);
  k_linear_backward(B_, dx2, NULL, NULL, dy, x, W, M, N, K, acc);
  CHECK(memcmp(dx2, dx, nx * 4) == 0);
  free(x), free(W), free(b), free(dy), free(dx), free(dW), free(db), free(dx0), free(dW0), free(db0), free(dx2);
  free(c.x), free(c.W), free(c.b), free(c.dy), free(c.y);
}

static void t_linear_backward(void) {
  check_linear_grad(1, 1, 1, 0);
  check_linear_grad(3, 5, 7, 0);
  check_linear_grad(3, 5, 7, 1);
  check_linear_grad(67, 33, 17, 1);
  check_linear_grad(800, 20, 200, 0);   /* tiled: rows of dx, columns of dW */
}

/* ---------------------------------------------------------------- activations */
typedef struct {
  double *x, *dy;
  size_t n;
  double (*f)(double);
} act_ctx;

static double act_loss(void *arg) {
  act_ctx *c = arg;
  double s = 0;
  for (size_t i = 0; i < c->n; i++) s += c->dy[i] * c->f(c->x[i]);
  return s;
}

static void check_act_grad(const char *name, void (*bwd)(k_backend *, void *, const void *, const void *, size_t, int),
                           double (*f)(double), size_t n, double lo, double hi, int acc) {
  float *x = kref_rand(n, lo, hi), *dy = kref_rand(n, -1, 1), *dx = kref_rand(n, -1, 1), *dx0 = rdt_malloc(n * 4);
  memcpy(dx0, dx, n * 4);
  bwd(B_, dx, dy, x, n, acc);
  act_ctx c = {kref_to_double(x, n), kref_to_double(dy, n), n, f};
  char what[64];
  snprintf(what, sizeof what, "%s backward n=%zu acc %d", name, n, acc);
  check_fd(what, act_loss, &c, c.x, n, dx, acc ? dx0 : NULL, 1e-5);
  free(x), free(dy), free(dx), free(dx0), free(c.x), free(c.dy);
}

static void t_activation_backward(void) {
  check_act_grad("gelu", k_gelu_backward, kref_gelu, 1, -3, 3, 0);
  check_act_grad("gelu", k_gelu_backward, kref_gelu, 67, -6, 6, 0);
  check_act_grad("gelu", k_gelu_backward, kref_gelu, 129, -6, 6, 1);
  check_act_grad("silu", k_silu_backward, kref_silu, 3, -8, 8, 0);
  check_act_grad("silu", k_silu_backward, kref_silu, 129, -8, 8, 1);
}

/* ---------------------------------------------------------------- attention */
typedef struct {
  double *q, *k, *v, *dy, *out;
  const uint8_t *mask;
  int B, Tq, Tk, nh, hd;
} attn_ctx;

static double attn_loss(void *arg) {
  attn_ctx *c = arg;
  kref_attention(c->out, NULL, c->q, c->k, c->v, c->mask, NULL, c->B, c->Tq, c->Tk, c->nh, c->hd,
                 1.0 / sqrt(c->hd));
  return kref_dot(c->dy, c->out, (size_t)c->B * c->Tq * c->nh * c->hd);
}

static void check_attention_grad(int B, int Tq, int Tk, int nh, int hd, int masked) {
  size_t nq = (size_t)B * Tq * nh * hd, nk = (size_t)B * Tk * nh * hd;
  float *q = kref_rand(nq, -1.5, 1.5), *k = kref_rand(nk, -1.5, 1.5), *v = kref_rand(nk, -1, 1);
  float *dy = kref_rand(nq, -1, 1), *out = rdt_malloc(nq * 4), *lse = rdt_malloc((size_t)B * nh * Tq * 4);
  float *dq = kref_rand(nq, -1, 1), *dk = kref_rand(nk, -1, 1), *dv = kref_rand(nk, -1, 1);   /* overwritten */
  uint8_t *mask = rdt_malloc((size_t)B * Tk);
  for (int i = 0; i < B * Tk; i++) mask[i] = kref_uniform() > -0.5;
  mask[0] = 1;
  if (B > 1) memset(mask + Tk, 0, (size_t)Tk);   /* batch 1: no key to attend */
  const uint8_t *m = masked ? mask : NULL;
  float scale = 1.0f / sqrtf((float)hd);
  k_attention(B_, out, lse, q, k, v, m, NULL, B, Tq, Tk, nh, hd, scale);
  k_attention_backward(B_, dq, dk, dv, dy, q, k, v, out, lse, m, B, Tq, Tk, nh, hd, scale);
  attn_ctx c = {kref_to_double(q, nq), kref_to_double(k, nk), kref_to_double(v, nk), kref_to_double(dy, nq),
                rdt_malloc(nq * 8), m, B, Tq, Tk, nh, hd};
  char what[96];
  snprintf(what, sizeof what, "attention dq B%d Tq%d Tk%d nh%d hd%d mask %d", B, Tq, Tk, nh, hd, masked);
  check_fd(what, attn_loss, &c, c.q, nq, dq, NULL, 5e-5);
  what[11] = 'k';
  check_fd(what, attn_loss, &c, c.k, nk, dk, NULL, 5e-5);
  what[11] = 'v';
  check_fd(what, attn_loss, &c, c.v, nk, dv, NULL, 5e-5);
  if (masked && B > 1) {   /* nothing flows through the fully masked batch */
    int nz = 0;
    for (size_t i = nq / B; i < 2 * nq / B; i++) nz += dq[i] != 0.0f;
    for (size_t i = nk / B; i < 2 * nk / B; i++) nz += dk[i] != 0.0f || dv[i] != 0.0f;
    CHECK(nz == 0);
  }
  free(q), free(k), free(v), free(dy), free(out), free(lse), free(dq), free(dk), free(dv), free(mask);
  free(c.q), free(c.k), free(c.v), free(c.dy), free(c.out);
}

static void t_attention_backward(void) {
  check_attention_grad(1, 1, 1, 1, 1, 0);
  check_attention_grad(2, 3, 5, 2, 4, 0);
  check_attention_grad(3, 4, 7, 2, 3, 1);     /* masked keys, batch 1 fully masked */
  check_attention_grad(1, 130, 9, 1, 4, 1);   /* two query blocks: dk, dv summed over both */
  check_attention_grad(1, 5, 300, 2, 8, 1);   /* long keys */
}

/* ---------------------------------------------------------------- add_pos, mse */
typedef struct {
  double *y0, *pos, *dy;
  int B, T, dim;
} pos_ctx;

static double pos_loss(void *arg) {
  pos_ctx *c = arg;
  double s = 0;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++)
      for (int d = 0; d < c->dim; d++) {
        size_t i = ((size_t)b * c->T + t) * c->dim + d;
        s += c->dy[i] * (c->y0[i] + c->pos[(size_t)t * c->dim + d]);
      }
  return s;
}

static void t_add_pos_backward(void) {
  int Bn = 3, T = 67, dim = 5;
  size_t n = (size_t)Bn * T * dim, np = (size_t)T * dim;
  float *y0 = kref_rand(n, -1, 1), *pos = kref_rand(np, -1, 1), *dy = kref_rand(n, -1, 1);
  float *dpos = kref_rand(np, -1, 1), *dpos0 = rdt_malloc(np * 4);
  memcpy(dpos0, dpos, np * 4);
  k_add_pos_backward(B_, dpos, dy, Bn, T, dim);
  pos_ctx c = {kref_to_double(y0, n), kref_to_double(pos, np), kref_to_double(dy, n), Bn, T, dim};
  check_fd("add_pos backward", pos_loss, &c, c.pos, np, dpos, dpos0, 1e-6);
  free(y0), free(pos), free(dy), free(dpos), free(dpos0), free(c.y0), free(c.pos), free(c.dy);
}

typedef struct {
  double *p, *t;
  size_t n;
  double gscale;
} mse_ctx;

static double mse_loss(void *arg) {
  mse_ctx *c = arg;
  double s = 0;
  for (size_t i = 0; i < c->n; i++) s += (c->p[i] - c->t[i]) * (c->p[i] - c->t[i]);
  return c->gscale * s / (double)c->n;
}

static void t_mse_grad(void) {
  size_t n = 131;
  float *p = kref_rand(n, -2, 2), *t = kref_rand(n, -2, 2), *d = rdt_malloc(n * 4);
  k_mse_loss(B_, d, p, t, n, 0.25f);
  mse_ctx c = {kref_to_double(p, n), kref_to_double(t, n), n, 0.25};
  check_fd("mse grad", mse_loss, &c, c.p, n, d, NULL, 1e-6);
  free(p), free(t), free(d), free(c.p), free(c.t);
}

int main(void) {
  kref_seed(2);
  B_ = kref_open_cpu(2);
  RUN(t_rmsnorm_backward);
  RUN(t_linear_backward);
  RUN(t_activation_backward);
  RUN(t_attention_backward);
  RUN(t_add_pos_backward);
  RUN(t_mse_grad);
  k_close(B_);
  return test_done();
}
