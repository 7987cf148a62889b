/* kernels/backend.h: what a backend provides (internal to kernels/).
 *
 * A backend fills one k_ops table; kernels.c forwards every public op to it.
 * kernels/cpu/ is the reference and the CPU fast path; kernels/cuda/ the GPU.
 * Both must give the same results within the precision of their dtypes, and
 * tests/kernels compares every op of every backend with the CPU.
 */
#ifndef RDT_KERNELS_BACKEND_H
#define RDT_KERNELS_BACKEND_H

#include "rdt_build.h"
#include "kernels/kernels.h"

typedef struct k_ops {
  void (*sync)(k_backend *b);
  void *(*alloc)(k_backend *b, size_t bytes);
  void (*free)(k_backend *b, void *p);
  void (*memset0)(k_backend *b, void *p, size_t bytes);
  void (*copy)(k_backend *b, void *dst, const void *src, size_t bytes);
  void (*upload)(k_backend *b, void *dst, const void *host_src, size_t bytes);
  void (*download)(k_backend *b, void *host_dst, const void *src, size_t bytes);
  void (*upload_act)(k_backend *b, void *dst, const float *host_src, size_t n);
  void (*download_act)(k_backend *b, float *host_dst, const void *src, size_t n);
  void (*f32_to_act)(k_backend *b, void *dst, const float *src, size_t n);
  void (*act_to_f32)(k_backend *b, float *dst, const void *src, size_t n);
  void (*linear)(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K);
  void (*linear_backward)(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x, const void *W, int M, int N, int K, int acc);
  void (*linear_gelu)(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M, int N, int K);
  void (*rmsnorm)(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps);
  void (*rmsnorm_backward)(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w, const float *rstd, int rows, int dim, int acc);
  void (*add_rmsnorm)(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w, int rows, int dim, float eps);
  void (*rmsnorm_pair)(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1, const void *x1, const float *w1, int rows, int dim, float eps);
  void (*rmsnorm_meansq)(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps);
  void (*layernorm)(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim, float eps);
  void (*gelu)(k_backend *b, void *y, const void *x, size_t n);
  void (*gelu_backward)(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
  void (*silu)(k_backend *b, void *y, const void *x, size_t n);
  void (*silu_backward)(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
  void (*softmax)(k_backend *b, void *y, const void *x, int rows, int cols);
  void (*attention)(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v, const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale);
  void (*attention_backward)(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q, const void *k, const void *v, const void *out, const float *lse, const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale);
  void (*add)(k_backend *b, void *y, const void *a, const void *c, size_t n);
  void (*add_inplace)(k_backend *b, void *y, const void *x, size_t n);
  void (*mul)(k_backend *b, void *y, const void *a, const void *c, size_t n);
  void (*axpby)(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n);
  void (*mix)(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B, size_t per);
  void (*mul_rowvec)(k_backend *b, void *y, const void *m, int B, int rows, int dim);
  void (*copy2d)(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc);
  void (*add_pos)(k_backend *b, void *y, const float *pos, int B, int T, int dim);
  void (*add_pos_backward)(k_backend *b, float *dpos, const void *dy, int B, int T, int dim);
  void (*timestep_embed)(k_backend *b, void *out, const float *t_host, int n, int dim);
  float (*mse_loss)(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale);
  void (*adamw)(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float wd, int step);
  void (*ema)(k_backend *b, float *ema, const float *p, size_t n, float decay);
  void (*adamw_ema)(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                    float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay);
  double (*sumsq)(k_backend *b, const float *x, size_t n);
  void (*scale_f32)(k_backend *b, float *x, size_t n, float s);
  void (*weight_refresh)(k_backend *b, void *wc, const float *w, size_t n);
  void *(*weight_copy)(k_backend *b, float *w, size_t n);
  void (*weight_copy_free)(k_backend *b, void *wc, float *w);
  void (*close)(k_backend *b);
  /* Optional device timing for the op profiler (NULL: ops are synchronous and
   * host clocks time them).  event_ms waits for b and returns a..b in ms. */
  void *(*event_new)(k_backend *b);
  void (*event_record)(k_backend *b, void *ev);
  float (*event_ms)(k_backend *b, void *a, void *ev_b);
  void (*event_free)(k_backend *b, void *ev);
  /* Optional graphs (k_graph_*; NULL: unsupported). */
  int (*graph_begin)(k_backend *b);
  void *(*graph_end)(k_backend *b);
  void (*graph_launch)(k_backend *b, void *graph);
  void (*graph_free)(k_backend *b, void *graph);
  /* Optional diagnostics: a named count kept by the backend, or -1. */
  long (*counter)(const k_backend *b, const char *name);
} k_ops;

struct k_backend {
  k_kind kind;
  rdt_dtype act;          /* activation dtype */
  int threads;
  char name[160];
  size_t bytes_in_use;
  const k_ops *ops;
  void *impl;             /* the backend's own state */
  struct k_prof *prof;    /* RDT_KERNEL_PROFILE=1: per-op times (kernels.c), else NULL */
};

/* Constructors: fill b (kind, name, ops, impl); 0 or -1 + rdt_error(). */
int kcpu_init(k_backend *b, int threads);
/* CPU activations rounded to t (BF16 or F16; F32: off): switches b's op table (cpu/round.c). */
int kcpu_set_rounding(k_backend *b, rdt_dtype t);
rdt_dtype kcpu_rounding(const k_backend *b);
#if RDT_HAVE_CUDA
int kcuda_init(k_backend *b, int device);
int kcuda_device_count(void);
#endif

#endif
