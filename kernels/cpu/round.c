/* kernels/cpu/round.c: the CPU backend with 16-bit activation rounding, a
 * reference for the CUDA backend's BF16 (or F16) activations.
 *
 * k_set_act_rounding(cpu, RDT_BF16) keeps activations in F32 buffers (so
 * nothing else changes: k_act_size is 4) but rounds every activation value
 * an op writes to the nearest BF16 value (ties to even), at the points where
 * the CUDA backend stores its 16-bit activations:
 *   - each op's activation outputs, once, from its fp32 result (a GEMM's
 *     bias and an input gradient's accumulation included, as cuBLASLt's
 *     epilogue and beta = 1 do them in fp32);
 *   - the fused pairs as the CUDA defaults run them: k_add_rmsnorm is k_add
 *     then k_rmsnorm of the rounded sum (bitwise so on CUDA), k_linear_gelu
 *     is k_linear then k_gelu of the rounded pre-activation;
 *   - uploads and F32 -> activation conversions, and the compute copies of
 *     the weights (k_weight_copy gives a rounded copy, no longer the master
 *     buffer itself; the fused optimizer step refreshes it rounded).
 * F32 outputs (weight gradients, biases' gradients, rstd, lse, losses,
 * optimizer state) are not rounded, as on CUDA.  What remains different from
 * the GPU is the order of fp32 accumulation inside each op and the
 * tensor-core attention's 16-bit P and dS tiles, so a model run on this
 * backend and on CUDA in BF16 agree to a few BF16 ulps, where a plain F32 CPU
 * run differs by the whole effect of BF16 storage (rdt predict --cpu_bf16).
 */
#include "core/error.h"
#include "kernels/cpu/cpu.h"

/* ---------------------------------------------------------------- rounding */
KCPU_INLINE float round_bf16(float f) { return rdt_bf16_to_f32(rdt_f32_to_bf16(f)); }
KCPU_INLINE float round_f16(float f) { return rdt_f16_to_f32(rdt_f32_to_f16(f)); }

typedef struct {
  float *x;
  rdt_dtype t;
} round_ctx;

static void round_range(void *ctx, size_t i0, size_t i1, int worker) {
  (void)worker;
  const round_ctx *c = ctx;
  if (c->t == RDT_BF16)
    for (size_t i = i0; i < i1; i++) c->x[i] = round_bf16(c->x[i]);
  else
    for (size_t i = i0; i < i1; i++) c->x[i] = round_f16(c->x[i]);
}

/* Round n activation values at p in place. */
static void rnd(k_backend *b, void *p, size_t n) {
  if (!p || !n) return;
  round_ctx c = {p, kcpu_rounding(b)};
  kcpu_for(b, n, KCPU_GRAIN, round_range, &c);
}

/* Round rows x cols values of a strided matrix (row r at p + r ld). */
static void rnd2d(k_backend *b, void *p, int ld, int rows, int cols) {
  if (ld == cols) return rnd(b, p, (size_t)rows * cols);
  for (int r = 0; r < rows; r++) rnd(b, (float *)p + (size_t)r * ld, (size_t)cols);
}

/* ---------------------------------------------------------------- wrapped ops */
static void r_to_act(k_backend *b, void *dst, const float *src, size_t n) {
  b->ops->copy(b, dst, src, n * sizeof(float));   /* the plain table's copy (a no-op in place) */
  rnd(b, dst, n);
}

static void r_weight_refresh(k_backend *b, void *wc, const float *w, size_t n) { r_to_act(b, wc, w, n); }

static void *r_weight_copy(k_backend *b, float *w, size_t n) {
  void *wc = b->ops->alloc(b, n * sizeof(float));
  r_to_act(b, wc, w, n);
  return wc;
}

static void r_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K) {
  kcpu_linear(b, y, x, W, bias, M, N, K);
  rnd(b, y, (size_t)M * N);
}

static void r_gelu(k_backend *b, void *y, const void *x, size_t n) {
  kcpu_gelu(b, y, x, n);
  rnd(b, y, n);
}

static void r_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M,
                          int N, int K) {
  r_linear(b, pre, x, W, bias, M, N, K);
  r_gelu(b, y, pre, (size_t)M * N);
}

static void r_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x,
                              const void *W, int M, int N, int K, int acc) {
  kcpu_linear_backward(b, dx, dW, dbias, dy, x, W, M, N, K, acc);
  rnd(b, dx, (size_t)M * K);
}

static void r_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim,
                      float eps) {
  kcpu_rmsnorm(b, y, rstd, x, w, rows, dim, eps);
  rnd(b, y, (size_t)rows * dim);
}

static void r_add(k_backend *b, void *y, const void *a, const void *c, size_t n) {
  kcpu_add(b, y, a, c, n);
  rnd(b, y, n);
}

static void r_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w,
                          int rows, int dim, float eps) {
  r_add(b, s, a, c, (size_t)rows * dim);
  r_rmsnorm(b, y, rstd, s, w, rows, dim, eps);
}

static void r_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1,
                           float *rstd1, const void *x1, const float *w1, int rows, int dim, float eps) {
  r_rmsnorm(b, y0, rstd0, x0, w0, rows, dim, eps);
  r_rmsnorm(b, y1, rstd1, x1, w1, rows, dim, eps);
}

static void r_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w,
                               const float *rstd, int rows, int dim, int acc) {
  kcpu_rmsnorm_backward(b, dx, dw, dy, x, w, rstd, rows, dim, acc);
  rnd(b, dx, (size_t)rows * dim);
}

static void r_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps) {
  kcpu_rmsnorm_meansq(b, y, x, w, rows, dim, eps);
  rnd(b, y, (size_t)rows * dim);
}

static void r_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim,
                        float eps) {
  kcpu_layernorm(b, y, x, w, bias, rows, dim, eps);
  rnd(b, y, (size_t)rows * dim);
}

static void r_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) {
  kcpu_gelu_backward(b, dx, dy, x, n, acc);
  rnd(b, dx, n);
}

static void r_silu(k_backend *b, void *y, const void *x, size_t n) {
  kcpu_silu(b, y, x, n);
  rnd(b, y, n);
}

static void r_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) {
  kcpu_silu_backward(b, dx, dy, x, n, acc);
  rnd(b, dx, n);
}

static void r_softmax(k_backend *b, void *y, const void *x, int rows, int cols) {
  kcpu_softmax(b, y, x, rows, cols);
  rnd(b, y, (size_t)rows * cols);
}

static void r_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v,
                        const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale) {
  kcpu_attention(b, out, lse, q, k, v, mask, bias, B, Tq, Tk, nh, hd, scale);
  rnd(b, out, (size_t)B * Tq * nh * hd);
}

static void r_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q,
                                 const void *k, const void *v, const void *out, const float *lse,
                                 const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale) {
  kcpu_attention_backward(b, dq, dk, dv, dout, q, k, v, out, lse, mask, B, Tq, Tk, nh, hd, scale);
  rnd(b, dq, (size_t)B * Tq * nh * hd);
  rnd(b, dk, (size_t)B * Tk * nh * hd);
  rnd(b, dv, (size_t)B * Tk * nh * hd);
}

static void r_add_inplace(k_backend *b, void *y, const void *x, size_t n) {
  kcpu_add_inplace(b, y, x, n);
  rnd(b, y, n);
}

static void r_mul(k_backend *b, void *y, const void *a, const void *c, size_t n) {
  kcpu_mul(b, y, a, c, n);
  rnd(b, y, n);
}

static void r_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n) {
  kcpu_axpby(b, y, alpha, x, beta, n);
  rnd(b, y, n);
}

static void r_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B,
                  size_t per) {
  kcpu_mix(b, y, x, z, a, c, B, per);
  rnd(b, y, (size_t)B * per);
}

static void r_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim) {
  kcpu_mul_rowvec(b, y, m, B, rows, dim);
  rnd(b, y, (size_t)B * rows * dim);
}

/* A plain copy moves values that are already rounded; a sum is rounded. */
static void r_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc) {
  kcpu_copy2d(b, dst, dst_ld, src, src_ld, rows, cols, acc);
  if (acc) rnd2d(b, dst, dst_ld, rows, cols);
}

static void r_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim) {
  kcpu_add_pos(b, y, pos, B, T, dim);
  rnd(b, y, (size_t)B * T * dim);
}

static void r_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim) {
  kcpu_timestep_embed(b, out, t_host, n, dim);
  rnd(b, out, (size_t)n * dim);
}

static float r_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale) {
  float loss = kcpu_mse_loss(b, dpred, pred, target, n, grad_scale);
  rnd(b, dpred, n);
  return loss;
}

static void r_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                        float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay) {
  kcpu_adamw_ema(b, p, g, m, v, ema, wc, n, gscale, lr, beta1, beta2, eps, wd, step, decay);
  rnd(b, wc, n);
}

void kcpu_round_ops(k_ops *t) {
  t->upload_act = r_to_act;
  t->f32_to_act = r_to_act;
  t->weight_refresh = r_weight_refresh;
  t->weight_copy = r_weight_copy;
  t->linear = r_linear;
  t->linear_backward = r_linear_backward;
  t->linear_gelu = r_linear_gelu;
  t->rmsnorm = r_rmsnorm;
  t->rmsnorm_backward = r_rmsnorm_backward;
  t->add_rmsnorm = r_add_rmsnorm;
  t->rmsnorm_pair = r_rmsnorm_pair;
  t->rmsnorm_meansq = r_rmsnorm_meansq;
  t->layernorm = r_layernorm;
  t->gelu = r_gelu;
  t->gelu_backward = r_gelu_backward;
  t->silu = r_silu;
  t->silu_backward = r_silu_backward;
  t->softmax = r_softmax;
  t->attention = r_attention;
  t->attention_backward = r_attention_backward;
  t->add = r_add;
  t->add_inplace = r_add_inplace;
  t->mul = r_mul;
  t->axpby = r_axpby;
  t->mix = r_mix;
  t->mul_rowvec = r_mul_rowvec;
  t->copy2d = r_copy2d;
  t->add_pos = r_add_pos;
  t->timestep_embed = r_timestep_embed;
  t->mse_loss = r_mse_loss;
  t->adamw_ema = r_adamw_ema;
}
