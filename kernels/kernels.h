/* kernels/kernels.h: every numeric op behind one backend-neutral interface.
 *
 * A backend (CPU or CUDA) owns memory and runs ops.  Model code never touches
 * buffer contents directly: it allocates with k_alloc, moves data with
 * k_upload/k_download and computes with the ops below.
 *
 * Two element types appear in signatures:
 *   void *  an ACTIVATION buffer, elements of k_act_dtype(b): F32 on the CPU
 *           backend; BF16 (or F32 with --mixed_precision no) on CUDA.  Compute
 *           copies of weights are activation buffers too.
 *   float * always F32: master weights, gradients of weights, norm weights,
 *           biases, optimizer state, per-row statistics, losses.
 * On the CPU backend both are float, and a compute copy of a weight may be the
 * master buffer itself (k_weight_copy returns it).
 *
 * All matrices are row-major.  "Linear" follows PyTorch: W is [N, K] (out, in)
 * and y = x W^T + b.  Ops that produce an input gradient take `acc`: 0
 * overwrites the destination, 1 adds to it.  Weight-gradient outputs always
 * accumulate (callers zero them once per optimizer step).
 *
 * Errors inside ops are programming errors (bad sizes): they abort with file
 * and line.  Device failures (CUDA out of memory, launch failure) likewise.
 */
#ifndef RDT_KERNELS_H
#define RDT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "core/tensor.h"

typedef struct k_backend k_backend;
typedef enum { K_CPU = 0, K_CUDA = 1 } k_kind;

/* ---------------------------------------------------------------- backend */
/* name: "cpu" or "cuda" / "cuda:N".  threads: CPU worker threads (0 = all
 * cores; also sets OpenBLAS threads).  NULL + rdt_error() when unavailable. */
k_backend *k_open(const char *name, int threads);
void k_close(k_backend *b);
k_kind k_kind_of(const k_backend *b);
const char *k_name(const k_backend *b);             /* "cpu", "cuda:0 (NVIDIA H100 ...)" */
/* Activation dtype: F32, BF16 or F16.  Only CUDA accepts BF16/F16; 0 or -1. */
int k_set_act_dtype(k_backend *b, rdt_dtype t);
rdt_dtype k_act_dtype(const k_backend *b);
size_t k_act_size(const k_backend *b);               /* bytes per activation element */
/* CPU only, a reference for CUDA's 16-bit activations: with t = BF16 (or
 * F16) activations stay in F32 buffers but every activation value an op
 * writes is rounded to t where CUDA would store it (kernels/cpu/round.c);
 * F32 turns it off.  Set it before making compute copies of weights.  0 or
 * -1 (CUDA accepts only F32 here). */
int k_set_act_rounding(k_backend *b, rdt_dtype t);
/* The precision activations are held to: the rounding on CPU, else k_act_dtype. */
rdt_dtype k_act_rounding(const k_backend *b);
int k_threads(const k_backend *b);
/* Wait for all queued work (no-op on CPU). */
void k_sync(k_backend *b);
/* 1 if a CUDA device is usable in this process (without opening a backend). */
int k_cuda_available(void);

/* ---------------------------------------------------------------- memory */
void *k_alloc(k_backend *b, size_t bytes);           /* zero-filled, 256-byte aligned */
void k_free(k_backend *b, void *p);
size_t k_bytes_in_use(const k_backend *b);
void k_memset0(k_backend *b, void *p, size_t bytes);
void k_copy(k_backend *b, void *dst, const void *src, size_t bytes);           /* device to device */
void k_upload(k_backend *b, void *dst, const void *host_src, size_t bytes);    /* raw bytes */
void k_download(k_backend *b, void *host_dst, const void *src, size_t bytes);  /* raw bytes */
/* Host f32 <-> activation buffer of n elements (converting on the way). */
void k_upload_act(k_backend *b, void *dst, const float *host_src, size_t n);
void k_download_act(k_backend *b, float *host_dst, const void *src, size_t n);
/* p advanced by n activation elements. */
void *k_act_at(const k_backend *b, const void *p, size_t n);
/* Convert n elements between F32 and the activation dtype on the device. */
void k_f32_to_act(k_backend *b, void *dst, const float *src, size_t n);
void k_act_to_f32(k_backend *b, float *dst, const void *src, size_t n);

/* ---------------------------------------------------------------- matrix products */
/* y[M,N] = x[M,K] W[N,K]^T + bias[N] (bias may be NULL). */
void k_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias,
              int M, int N, int K);
/* k_linear into pre, then y = GELU-tanh(pre) (k_gelu): a Linear followed by
 * GELU, keeping the pre-activation for the backward pass.  On CUDA one
 * product with the GELU epilogue where cuBLASLt (or the few-row kernel)
 * offers it, so y is rounded once from the fp32 result. */
void k_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias,
                   int M, int N, int K);
/* dx[M,K] (=|+=) dy[M,N] W;  dW[N,K] += dy^T x;  dbias[N] += sum_rows dy.
 * Any of dx, dW, dbias may be NULL. */
void k_linear_backward(k_backend *b, void *dx, float *dW, float *dbias,
                       const void *dy, const void *x, const void *W,
                       int M, int N, int K, int acc);

/* ---------------------------------------------------------------- normalisation */
/* Upstream RDT RmsNorm (timm 1.0.3): y = x * rsqrt(var(x) + eps) * w, where var
 * is the mean-centred variance with Bessel's correction (divide by dim-1); x
 * itself is not centred.  rstd[rows] (F32, may be NULL) saves rsqrt(var+eps). */
void k_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w,
               int rows, int dim, float eps);
/* Two RmsNorms of the same shape, y0 = RmsNorm(x0; w0) and y1 = RmsNorm(x1; w1)
 * (the per-head q and k norms of self-attention): one launch on CUDA, each
 * output bitwise as k_rmsnorm gives it. */
void k_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1,
                    const void *x1, const float *w1, int rows, int dim, float eps);
/* s = a + c (k_add), then y = RmsNorm(s) (k_rmsnorm): a residual connection
 * followed by the next sublayer's norm, one pass on CUDA. */
void k_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w,
                   int rows, int dim, float eps);
void k_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy,
                        const void *x, const float *w, const float *rstd,
                        int rows, int dim, int acc);
/* T5 LayerNorm: y = x * rsqrt(mean(x^2) + eps) * w (forward only). */
void k_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w,
                      int rows, int dim, float eps);
/* Standard LayerNorm with bias (SigLIP; forward only). */
void k_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias,
                 int rows, int dim, float eps);

/* ---------------------------------------------------------------- activations */
/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void k_gelu(k_backend *b, void *y, const void *x, size_t n);
void k_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
void k_silu(k_backend *b, void *y, const void *x, size_t n);
void k_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
/* Row softmax of x[rows, cols] (forward only; attention has its own). */
void k_softmax(k_backend *b, void *y, const void *x, int rows, int cols);

/* ---------------------------------------------------------------- attention */
/* Scaled dot-product attention.
 *   q   [B, Tq, nh, hd]   k, v [B, Tk, nh, hd]   out [B, Tq, nh, hd]
 *   mask   u8 [B, Tk] on the device, 1 = attend, or NULL (all attend)
 *   bias   F32 [nh, Tq, Tk] added to the scores (T5), or NULL
 *   lse    F32 [B, nh, Tq] log-sum-exp of the scaled scores, saved for the
 *          backward pass (may be NULL when no backward will follow)
 * scores = scale * q.k + bias, masked keys excluded; a row with every key
 * masked gives zeros. */
void k_attention(k_backend *b, void *out, float *lse, const void *q, const void *k,
                 const void *v, const uint8_t *mask, const float *bias,
                 int B, int Tq, int Tk, int nh, int hd, float scale);
/* Gradients of the above (bias not supported).  dq, dk, dv overwritten. */
void k_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout,
                          const void *q, const void *k, const void *v, const void *out,
                          const float *lse, const uint8_t *mask,
                          int B, int Tq, int Tk, int nh, int hd, float scale);

/* ---------------------------------------------------------------- element-wise and layout */
void k_add(k_backend *b, void *y, const void *a, const void *c, size_t n);     /* y = a + c */
void k_add_inplace(k_backend *b, void *y, const void *x, size_t n);            /* y += x */
void k_mul(k_backend *b, void *y, const void *a, const void *c, size_t n);     /* y = a * c */
/* y = alpha x + beta y (all activation buffers). */
void k_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n);
/* Per-batch mix: y[i] = a[i / per] x[i] + c[i / per] z[i], a and c host arrays of
 * B values (diffusion noising and solver updates). */
void k_mix(k_backend *b, void *y, const void *x, const void *z, const float *a,
           const float *c, int B, size_t per);
/* Broadcast multiply: y[b, r, d] *= m[b, d] for y [B, rows, dim], m [B, dim]
 * (activation buffers); the action mask applied to a sampled chunk. */
void k_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim);
/* Strided 2-D copy: rows x cols elements, dst[r*dst_ld + c] (=|+=) src[r*src_ld + c].
 * Splits and concatenations of tokens and of heads are built on it. */
void k_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld,
              int rows, int cols, int acc);
/* Positional embedding: y[bt, t, :] += pos[t, :] for B batches of T rows of dim
 * (pos F32).  Backward: dpos[t, :] += sum_b dy[b, t, :]. */
void k_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim);
void k_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T, int dim);
/* Sinusoidal timestep embedding (DiT): half = dim/2, f_i = exp(-ln(1e4) i / half),
 * out[n, :] = [cos(t f), sin(t f)] (cos first).  t: host array of n floats. */
void k_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim);

/* ---------------------------------------------------------------- loss */
/* Mean squared error over n elements; returns the loss (synchronises) and,
 * if dpred != NULL, writes dpred = grad_scale * 2 (pred - target) / n. */
float k_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target,
                 size_t n, float grad_scale);

/* ---------------------------------------------------------------- optimizer (all F32) */
/* torch.optim.AdamW, one step (step >= 1):
 *   p -= lr * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps). */
void k_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n,
             float lr, float beta1, float beta2, float eps, float wd, int step);
/* RDT's EMAModel (models/ema_model.py): ema = decay ema + (1 - decay) p. */
void k_ema(k_backend *b, float *ema, const float *p, size_t n, float decay);
/* A training step's parameter updates in one pass over memory, element by
 * element the arithmetic of: k_scale_f32(g, gscale) (clipping; the gradient
 * buffer itself is left unscaled); k_adamw; k_ema(ema, p, decay), or a copy
 * of p when decay is 0; k_weight_refresh(wc, p) when wc is not NULL. */
void k_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                 float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay);
/* Sum of squares of an F32 buffer, accumulated in double; synchronises. */
double k_sumsq(k_backend *b, const float *x, size_t n);
void k_scale_f32(k_backend *b, float *x, size_t n, float s);
/* Refresh a compute copy (activation dtype) from F32 master weights. */
void k_weight_refresh(k_backend *b, void *wc, const float *w, size_t n);
/* The compute copy for n master weights: on CPU with F32 activations, w itself;
 * otherwise a new activation buffer (filled from w). */
void *k_weight_copy(k_backend *b, float *w, size_t n);
void k_weight_copy_free(k_backend *b, void *wc, float *w);

/* ---------------------------------------------------------------- graphs
 * Record the ops queued between k_graph_begin and k_graph_end (nothing runs
 * while recording) and replay them with k_graph_launch, at the cost of one
 * launch.  Host arrays the ops took (timesteps, k_mix coefficients) are
 * recorded by value; device buffers by address, so a replay reads and writes
 * the same buffers.  CUDA only: k_graph_begin returns -1 on the CPU, with
 * RDT_CUDA_GRAPH=0, under RDT_CUDA_SYNC=1 or RDT_KERNEL_PROFILE=1, or when the
 * device refuses; k_graph_end returns NULL when recording failed (then none
 * of the recorded work ran: run it again without a graph). */
int k_graph_begin(k_backend *b);
void *k_graph_end(k_backend *b);
void k_graph_launch(k_backend *b, void *graph);
void k_graph_free(k_backend *b, void *graph);

/* A diagnostic count kept by the backend, -1 when it keeps none of that name.
 * CUDA: "skinny_linear", products run by the few-row kernel (skinny.cu);
 * "gelu_epilogue", k_linear_gelu calls run as one cuBLASLt product;
 * "bias_fallback", k_linear calls with a bias cuBLASLt would not fuse (the
 * product then goes to an fp32 temporary and the bias is added before the
 * one rounding); "gemm_heuristic", products whose algorithm cuBLASLt's
 * heuristic was asked for (the per-shape cache's misses); "attn_dq_split",
 * "attn_wide", "attn_prefetch", attention launches on the long-key paths
 * (docs/CUDA.md: RDT_CUDA_ATTN_DQ_SPLIT, _WARPS=5, _PREFETCH).  The op profile
 * (RDT_KERNEL_PROFILE=1) prints them all when the backend closes. */
long k_counter(const k_backend *b, const char *name);

#endif
