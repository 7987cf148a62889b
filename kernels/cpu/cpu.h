/* kernels/cpu/cpu.h: internals of the CPU backend (fp32, OpenBLAS, threads).
 *
 * Parallel work is cut into tasks whose boundaries depend only on the problem
 * size, never on the number of threads, and every reduction sums per-task
 * partials in task order.  So each op gives bitwise the same result with any
 * thread count.  GEMMs run single-threaded inside OpenBLAS, one call per task
 * of our own pool, for the same reason (and so that two thread pools never
 * compete for the cores).
 */
#ifndef RDT_KERNELS_CPU_H
#define RDT_KERNELS_CPU_H

#include <stddef.h>
#include <stdint.h>
#include "kernels/backend.h"

/* ---------------------------------------------------------------- thread pool */
typedef struct kcpu_pool kcpu_pool;

/* One task of a parallel loop: `task` in [0, ntasks), `worker` in [0, threads)
 * names the thread running it (for per-thread scratch). */
typedef void (*kcpu_task_fn)(void *ctx, int task, int worker);

kcpu_pool *kcpu_pool_create(int threads);
void kcpu_pool_destroy(kcpu_pool *p);
/* Run fn for every task on the pool (the caller works too); returns when all are done. */
void kcpu_pool_run(kcpu_pool *p, int ntasks, kcpu_task_fn fn, void *ctx);
/* A per-worker buffer of at least n floats, kept between calls (contents undefined). */
float *kcpu_pool_scratch(kcpu_pool *p, int worker, size_t n);

/* The pool of a CPU backend. */
kcpu_pool *kcpu_pool_of(k_backend *b);

/* ---------------------------------------------------------------- 16-bit rounding (round.c) */
/* Override the ops of table t (a copy of the plain CPU table) with rounding ones. */
void kcpu_round_ops(k_ops *t);

/* Range form: items [0, n) in fixed chunks of `grain`; fn gets [i0, i1). */
typedef void (*kcpu_range_fn)(void *ctx, size_t i0, size_t i1, int worker);
void kcpu_for(k_backend *b, size_t n, size_t grain, kcpu_range_fn fn, void *ctx);

/* Elements per task of cheap element-wise loops (fixed: see the note above). */
#define KCPU_GRAIN ((size_t)1 << 15)

/* ---------------------------------------------------------------- vector helpers */
/* Four floats (GCC vector extensions): SSE on any x86-64, NEON on arm64. */
#define KCPU_INLINE static inline __attribute__((always_inline))
typedef float kcpu_v4 __attribute__((vector_size(16)));
typedef int32_t kcpu_v4i __attribute__((vector_size(16)));

/* Four copies of a; lanes of a where mask is set, else of c. */
KCPU_INLINE kcpu_v4 kcpu_set4(float a) { return (kcpu_v4){a, a, a, a}; }
KCPU_INLINE kcpu_v4 kcpu_select4(kcpu_v4i mask, kcpu_v4 a, kcpu_v4 c) {
  return (kcpu_v4)((mask & (kcpu_v4i)a) | (~mask & (kcpu_v4i)c));
}

/* exp of every lane of x, a vector of type V (integer twin VI): range
 * reduction x = n ln2 + r, |r| <= ln2/2, Taylor series to r^8 (relative error
 * about 1e-7); 0 below -87.3, inputs above 88 clamped to 88; NaN stays NaN.
 * A macro (GNU statement expression) so one definition serves every width
 * without passing wide vectors through functions. */
#define KCPU_EXP(V, VI, xin)                                                     \
  ({                                                                             \
    V x_ = (xin), lo_ = (V){0} + -87.3f, hi_ = (V){0} + 88.0f;                   \
    VI keep_ = ~(x_ < lo_), m_ = x_ > hi_;                                       \
    x_ = (V)((m_ & (VI)hi_) | (~m_ & (VI)x_));                                   \
    m_ = x_ < lo_;                                                               \
    x_ = (V)((m_ & (VI)lo_) | (~m_ & (VI)x_));                                   \
    V t_ = x_ * 1.44269504088896341f + 12582912.0f; /* + 1.5 * 2^23 rounds */   \
    V n_ = t_ - 12582912.0f;                                                     \
    VI ni_ = (VI)t_ - 0x4B400000;                                                \
    V r_ = x_ - n_ * 0.693145751953125f; /* ln2 split in two for exactness */    \
    r_ = r_ - n_ * 1.42860682030941723212e-6f;                                   \
    V p_ = 1.0f / 5040 + r_ * (1.0f / 40320);                                    \
    p_ = 1.0f / 720 + r_ * p_;                                                   \
    p_ = 1.0f / 120 + r_ * p_;                                                   \
    p_ = 1.0f / 24 + r_ * p_;                                                    \
    p_ = 1.0f / 6 + r_ * p_;                                                     \
    p_ = 0.5f + r_ * p_;                                                         \
    p_ = 1.0f + r_ * p_;                                                         \
    p_ = 1.0f + r_ * p_;                                                         \
    (V)((VI)(p_ * (V)((ni_ + 127) << 23)) & keep_);                              \
  })

KCPU_INLINE kcpu_v4 kcpu_exp4(kcpu_v4 x) { return KCPU_EXP(kcpu_v4, kcpu_v4i, x); }

/* Sixteen floats, for loops compiled once per instruction set (see
 * kcpu_exp_shift_sum); only used inside functions, never passed between them. */
typedef float kcpu_v16 __attribute__((vector_size(64)));
typedef int32_t kcpu_v16i __attribute__((vector_size(64)));

/* Load or store four floats at an unaligned address. */
KCPU_INLINE kcpu_v4 kcpu_load4(const float *p) {
  kcpu_v4 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
KCPU_INLINE void kcpu_store4(float *p, kcpu_v4 v) { __builtin_memcpy(p, &v, sizeof v); }
/* Sum of the four lanes in a fixed order. */
KCPU_INLINE float kcpu_hsum4(kcpu_v4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* y[i] = exp(x[i] - shift) (KCPU_EXP, 16 lanes); returns the sum of y (fixed
 * order for a given instruction set).  shift must be finite. */
float kcpu_exp_shift_sum(float *y, const float *x, int n, float shift);

/* ---------------------------------------------------------------- ops, by file */
/* linear.c */
void kcpu_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K);
void kcpu_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M, int N,
                      int K);
void kcpu_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x,
                          const void *W, int M, int N, int K, int acc);
/* norm.c */
void kcpu_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps);
void kcpu_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w,
                      int rows, int dim, float eps);
void kcpu_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1,
                       const void *x1, const float *w1, int rows, int dim, float eps);
void kcpu_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w,
                           const float *rstd, int rows, int dim, int acc);
void kcpu_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps);
void kcpu_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim,
                    float eps);
void kcpu_softmax(k_backend *b, void *y, const void *x, int rows, int cols);
/* attention.c */
void kcpu_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v,
                    const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale);
void kcpu_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q,
                             const void *k, const void *v, const void *out, const float *lse,
                             const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale);
/* elementwise.c */
void kcpu_gelu(k_backend *b, void *y, const void *x, size_t n);
void kcpu_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
void kcpu_silu(k_backend *b, void *y, const void *x, size_t n);
void kcpu_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
void kcpu_add(k_backend *b, void *y, const void *a, const void *c, size_t n);
void kcpu_add_inplace(k_backend *b, void *y, const void *x, size_t n);
void kcpu_mul(k_backend *b, void *y, const void *a, const void *c, size_t n);
void kcpu_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n);
void kcpu_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B,
              size_t per);
void kcpu_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim);
void kcpu_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc);
void kcpu_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim);
void kcpu_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T, int dim);
void kcpu_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim);
float kcpu_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale);
/* optim.c */
void kcpu_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                float beta2, float eps, float wd, int step);
void kcpu_ema(k_backend *b, float *ema, const float *p, size_t n, float decay);
void kcpu_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                    float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay);
double kcpu_sumsq(k_backend *b, const float *x, size_t n);
void kcpu_scale_f32(k_backend *b, float *x, size_t n, float s);

#endif
