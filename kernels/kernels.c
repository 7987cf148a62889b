/* kernels/kernels.c: the public op interface, forwarding to the backend's table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rdt_build.h"
#include "core/error.h"
#include "core/progress.h"
#include "kernels/backend.h"

/* ---------------------------------------------------------------- op profiler
 * RDT_KERNEL_PROFILE=1: every op is timed, on the device between two events
 * (CUDA) or by the host clock (CPU, whose ops are synchronous), and summed by
 * label (the op, with the sizes of GEMMs and attention).  k_close prints the
 * table to stderr: device time, calls, and the host time spent issuing the
 * op, which shows when a run is bound by launches rather than by the GPU. */
#define KP_PAIRS 2048

typedef struct {
  char label[96];
  long calls;
  double dev_ms, host_ms;
} kp_row;

struct k_prof {
  kp_row *rows;
  int nrows, caprows;
  void *ev[2 * KP_PAIRS];
  int pending[KP_PAIRS], npending;
  int cur_row;         /* the op being issued (ops do not nest) */
  double t_issue, t_open;
};

static double kp_now(void) { return 1e3 * rdt_now(); }   /* ms */

static void kp_flush(k_backend *b) {
  struct k_prof *p = b->prof;
  for (int i = 0; i < p->npending; i++)
    p->rows[p->pending[i]].dev_ms += b->ops->event_ms(b, p->ev[2 * i], p->ev[2 * i + 1]);
  p->npending = 0;
}

static void kp_open(k_backend *b) {
  const char *env = getenv("RDT_KERNEL_PROFILE");
  if (!env || !*env || strcmp(env, "0") == 0) return;
  struct k_prof *p = rdt_calloc(1, sizeof *p);
  b->prof = p;
  if (b->ops->event_new)
    for (int i = 0; i < 2 * KP_PAIRS; i++) p->ev[i] = b->ops->event_new(b);
  p->t_open = kp_now();
}

static int kp_begin(k_backend *b, const char *fmt, ...) RDT_PRINTF(2, 3);
static int kp_begin(k_backend *b, const char *fmt, ...) {
  struct k_prof *p = b->prof;
  if (!p) return -1;
  char label[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(label, sizeof label, fmt, ap);
  va_end(ap);
  int r = 0;
  while (r < p->nrows && strcmp(p->rows[r].label, label) != 0) r++;
  if (r == p->nrows) {
    if (p->nrows == p->caprows) {
      p->caprows = p->caprows ? 2 * p->caprows : 64;
      p->rows = rdt_realloc(p->rows, sizeof *p->rows * p->caprows);
    }
    memset(&p->rows[r], 0, sizeof p->rows[r]);
    snprintf(p->rows[r].label, sizeof p->rows[r].label, "%s", label);
    p->nrows++;
  }
  if (b->ops->event_new) {
    if (p->npending == KP_PAIRS) kp_flush(b);
    b->ops->event_record(b, p->ev[2 * p->npending]);
  }
  p->cur_row = r;
  p->t_issue = kp_now();
  return r;
}

static void kp_end(k_backend *b, int r) {
  struct k_prof *p = b->prof;
  if (!p || r < 0) return;
  double host = kp_now() - p->t_issue;
  p->rows[r].calls++;
  p->rows[r].host_ms += host;
  if (b->ops->event_new) {
    b->ops->event_record(b, p->ev[2 * p->npending + 1]);
    p->pending[p->npending++] = r;
  } else {
    p->rows[r].dev_ms += host;
  }
}

static int kp_cmp(const void *a, const void *c) {
  double x = ((const kp_row *)a)->dev_ms, y = ((const kp_row *)c)->dev_ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void kp_close(k_backend *b) {
  struct k_prof *p = b->prof;
  if (!p) return;
  if (b->ops->event_new) kp_flush(b);
  double wall = kp_now() - p->t_open, dev = 0, host = 0;
  long calls = 0;
  for (int r = 0; r < p->nrows; r++) dev += p->rows[r].dev_ms, host += p->rows[r].host_ms, calls += p->rows[r].calls;
  qsort(p->rows, (size_t)p->nrows, sizeof *p->rows, kp_cmp);
  fprintf(stderr, "kernel profile of %s (RDT_KERNEL_PROFILE=1): %ld ops, device %.1f ms, host issuing %.1f ms, "
          "wall since open %.1f ms\n", b->name, calls, dev, host, wall);
  fprintf(stderr, "  %7s %10s %6s %10s %10s  %s\n", "share", "device ms", "calls", "us/call", "host us", "op");
  for (int r = 0; r < p->nrows; r++) {
    const kp_row *w = &p->rows[r];
    fprintf(stderr, "  %6.2f%% %10.3f %6ld %10.2f %10.2f  %s\n", dev > 0 ? 100 * w->dev_ms / dev : 0, w->dev_ms, w->calls,
            1e3 * w->dev_ms / w->calls, 1e3 * w->host_ms / w->calls, w->label);
  }
  static const char *counters[] = {"skinny_linear", "gelu_epilogue", "bias_fallback", "gemm_heuristic",
                                   "attn_dq_split", "attn_wide", "attn_prefetch"};
  int shown = 0;
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    long v = k_counter(b, counters[i]);
    if (v >= 0) fprintf(stderr, "%s%s %ld", shown++ ? ", " : "  counters: ", counters[i], v);
  }
  if (shown) fprintf(stderr, "\n");
  if (b->ops->event_free)
    for (int i = 0; i < 2 * KP_PAIRS; i++) b->ops->event_free(b, p->ev[i]);
  free(p->rows);
  free(p);
  b->prof = NULL;
}

k_backend *k_open(const char *name, int threads) {
  k_backend *b = rdt_calloc(1, sizeof *b);
  int rc;
  if (strcmp(name, "cpu") == 0) {
    rc = kcpu_init(b, threads);
  } else if (strncmp(name, "cuda", 4) == 0 && (name[4] == 0 || name[4] == ':')) {
#if RDT_HAVE_CUDA
    rc = kcuda_init(b, name[4] == ':' ? atoi(name + 5) : 0);
#else
    rc = rdt_fail("backend '%s': this build has no CUDA backend (nvcc was not found at configure time, "
                  "or -DRDT_CUDA=OFF)", name);
#endif
  } else {
    rc = rdt_fail("unknown backend '%s' (expected cpu or cuda[:N])", name);
  }
  if (rc != 0) {
    free(b);
    return NULL;
  }
  kp_open(b);
  return b;
}

void k_close(k_backend *b) {
  if (!b) return;
  kp_close(b);
  b->ops->close(b);
  free(b);
}

int k_cuda_available(void) {
#if RDT_HAVE_CUDA
  return kcuda_device_count() > 0;
#else
  return 0;
#endif
}

k_kind k_kind_of(const k_backend *b) { return b->kind; }
const char *k_name(const k_backend *b) { return b->name; }
rdt_dtype k_act_dtype(const k_backend *b) { return b->act; }
size_t k_act_size(const k_backend *b) { return rdt_dtype_size(b->act); }
int k_threads(const k_backend *b) { return b->threads; }
size_t k_bytes_in_use(const k_backend *b) { return b->bytes_in_use; }
void *k_act_at(const k_backend *b, const void *p, size_t n) { return (char *)p + n * rdt_dtype_size(b->act); }

int k_set_act_dtype(k_backend *b, rdt_dtype t) {
  if (t == RDT_F32) return b->act = t, 0;
  if (b->kind == K_CUDA && (t == RDT_BF16 || t == RDT_F16)) return b->act = t, 0;
  return rdt_fail("backend %s: activation dtype %s is not supported", b->name, rdt_dtype_name(t));
}

int k_set_act_rounding(k_backend *b, rdt_dtype t) {
  if (b->kind == K_CPU) return kcpu_set_rounding(b, t);
  if (t == RDT_F32) return 0;
  return rdt_fail("backend %s: activation rounding is a CPU reference mode (use k_set_act_dtype)", b->name);
}

rdt_dtype k_act_rounding(const k_backend *b) { return b->kind == K_CPU ? kcpu_rounding(b) : b->act; }

/* ---------------------------------------------------------------- forwarding */
void k_sync(k_backend *b) { b->ops->sync(b); }
void *k_alloc(k_backend *b, size_t bytes) { return b->ops->alloc(b, bytes); }
void k_free(k_backend *b, void *p) { b->ops->free(b, p); }
void k_memset0(k_backend *b, void *p, size_t bytes) { int p_ = kp_begin(b, "memset0"); b->ops->memset0(b, p, bytes); kp_end(b, p_); }
void k_copy(k_backend *b, void *dst, const void *src, size_t bytes) { int p_ = kp_begin(b, "copy"); b->ops->copy(b, dst, src, bytes); kp_end(b, p_); }
void k_upload(k_backend *b, void *dst, const void *host_src, size_t bytes) { int p_ = kp_begin(b, "upload"); b->ops->upload(b, dst, host_src, bytes); kp_end(b, p_); }
void k_download(k_backend *b, void *host_dst, const void *src, size_t bytes) { int p_ = kp_begin(b, "download"); b->ops->download(b, host_dst, src, bytes); kp_end(b, p_); }
void k_upload_act(k_backend *b, void *dst, const float *host_src, size_t n) { int p_ = kp_begin(b, "upload_act"); b->ops->upload_act(b, dst, host_src, n); kp_end(b, p_); }
void k_download_act(k_backend *b, float *host_dst, const void *src, size_t n) { int p_ = kp_begin(b, "download_act"); b->ops->download_act(b, host_dst, src, n); kp_end(b, p_); }
void k_f32_to_act(k_backend *b, void *dst, const float *src, size_t n) { int p_ = kp_begin(b, "f32_to_act"); b->ops->f32_to_act(b, dst, src, n); kp_end(b, p_); }
void k_act_to_f32(k_backend *b, float *dst, const void *src, size_t n) { int p_ = kp_begin(b, "act_to_f32"); b->ops->act_to_f32(b, dst, src, n); kp_end(b, p_); }
void k_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K) { int p_ = kp_begin(b, "linear %dx%dx%d%s", M, N, K, bias ? " +bias" : ""); b->ops->linear(b, y, x, W, bias, M, N, K); kp_end(b, p_); }
void k_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M, int N, int K) { int p_ = kp_begin(b, "linear_gelu %dx%dx%d%s", M, N, K, bias ? " +bias" : ""); b->ops->linear_gelu(b, pre, y, x, W, bias, M, N, K); kp_end(b, p_); }
void k_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x, const void *W, int M, int N, int K, int acc) { int p_ = kp_begin(b, "linear_backward %dx%dx%d%s%s", M, N, K, dx ? " dx" : "", dW ? " dW" : ""); b->ops->linear_backward(b, dx, dW, dbias, dy, x, W, M, N, K, acc); kp_end(b, p_); }
void k_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps) { int p_ = kp_begin(b, "rmsnorm"); b->ops->rmsnorm(b, y, rstd, x, w, rows, dim, eps); kp_end(b, p_); }
void k_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w, int rows, int dim, float eps) { int p_ = kp_begin(b, "add_rmsnorm"); b->ops->add_rmsnorm(b, s, y, rstd, a, c, w, rows, dim, eps); kp_end(b, p_); }
void k_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1, const void *x1, const float *w1, int rows, int dim, float eps) { int p_ = kp_begin(b, "rmsnorm_pair"); b->ops->rmsnorm_pair(b, y0, rstd0, x0, w0, y1, rstd1, x1, w1, rows, dim, eps); kp_end(b, p_); }
void k_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w, const float *rstd, int rows, int dim, int acc) { int p_ = kp_begin(b, "rmsnorm_backward"); b->ops->rmsnorm_backward(b, dx, dw, dy, x, w, rstd, rows, dim, acc); kp_end(b, p_); }
void k_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps) { int p_ = kp_begin(b, "rmsnorm_meansq"); b->ops->rmsnorm_meansq(b, y, x, w, rows, dim, eps); kp_end(b, p_); }
void k_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim, float eps) { int p_ = kp_begin(b, "layernorm"); b->ops->layernorm(b, y, x, w, bias, rows, dim, eps); kp_end(b, p_); }
void k_gelu(k_backend *b, void *y, const void *x, size_t n) { int p_ = kp_begin(b, "gelu"); b->ops->gelu(b, y, x, n); kp_end(b, p_); }
void k_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) { int p_ = kp_begin(b, "gelu_backward"); b->ops->gelu_backward(b, dx, dy, x, n, acc); kp_end(b, p_); }
void k_silu(k_backend *b, void *y, const void *x, size_t n) { int p_ = kp_begin(b, "silu"); b->ops->silu(b, y, x, n); kp_end(b, p_); }
void k_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) { int p_ = kp_begin(b, "silu_backward"); b->ops->silu_backward(b, dx, dy, x, n, acc); kp_end(b, p_); }
void k_softmax(k_backend *b, void *y, const void *x, int rows, int cols) { int p_ = kp_begin(b, "softmax"); b->ops->softmax(b, y, x, rows, cols); kp_end(b, p_); }
void k_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v, const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale) { int p_ = kp_begin(b, "attention B%d Tq%d Tk%d nh%d hd%d%s", B, Tq, Tk, nh, hd, mask ? " mask" : ""); b->ops->attention(b, out, lse, q, k, v, mask, bias, B, Tq, Tk, nh, hd, scale); kp_end(b, p_); }
void k_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q, const void *k, const void *v, const void *out, const float *lse, const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale) { int p_ = kp_begin(b, "attention_backward B%d Tq%d Tk%d nh%d hd%d", B, Tq, Tk, nh, hd); b->ops->attention_backward(b, dq, dk, dv, dout, q, k, v, out, lse, mask, B, Tq, Tk, nh, hd, scale); kp_end(b, p_); }
void k_add(k_backend *b, void *y, const void *a, const void *c, size_t n) { int p_ = kp_begin(b, "add"); b->ops->add(b, y, a, c, n); kp_end(b, p_); }
void k_add_inplace(k_backend *b, void *y, const void *x, size_t n) { int p_ = kp_begin(b, "add_inplace"); b->ops->add_inplace(b, y, x, n); kp_end(b, p_); }
void k_mul(k_backend *b, void *y, const void *a, const void *c, size_t n) { int p_ = kp_begin(b, "mul"); b->ops->mul(b, y, a, c, n); kp_end(b, p_); }
void k_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n) { int p_ = kp_begin(b, "axpby"); b->ops->axpby(b, y, alpha, x, beta, n); kp_end(b, p_); }
void k_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B, size_t per) { int p_ = kp_begin(b, "mix"); b->ops->mix(b, y, x, z, a, c, B, per); kp_end(b, p_); }
void k_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim) { int p_ = kp_begin(b, "mul_rowvec"); b->ops->mul_rowvec(b, y, m, B, rows, dim); kp_end(b, p_); }
void k_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc) { int p_ = kp_begin(b, "copy2d"); b->ops->copy2d(b, dst, dst_ld, src, src_ld, rows, cols, acc); kp_end(b, p_); }
void k_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim) { int p_ = kp_begin(b, "add_pos"); b->ops->add_pos(b, y, pos, B, T, dim); kp_end(b, p_); }
void k_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T, int dim) { int p_ = kp_begin(b, "add_pos_backward"); b->ops->add_pos_backward(b, dpos, dy, B, T, dim); kp_end(b, p_); }
void k_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim) { int p_ = kp_begin(b, "timestep_embed"); b->ops->timestep_embed(b, out, t_host, n, dim); kp_end(b, p_); }
float k_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale) { int p_ = kp_begin(b, "mse_loss"); float r_ = b->ops->mse_loss(b, dpred, pred, target, n, grad_scale); kp_end(b, p_); return r_; }
void k_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float wd, int step) { int p_ = kp_begin(b, "adamw"); b->ops->adamw(b, p, g, m, v, n, lr, beta1, beta2, eps, wd, step); kp_end(b, p_); }
void k_ema(k_backend *b, float *ema, const float *p, size_t n, float decay) { int p_ = kp_begin(b, "ema"); b->ops->ema(b, ema, p, n, decay); kp_end(b, p_); }
void k_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n, float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay) { int p_ = kp_begin(b, "adamw_ema"); b->ops->adamw_ema(b, p, g, m, v, ema, wc, n, gscale, lr, beta1, beta2, eps, wd, step, decay); kp_end(b, p_); }
double k_sumsq(k_backend *b, const float *x, size_t n) { int p_ = kp_begin(b, "sumsq"); double r_ = b->ops->sumsq(b, x, n); kp_end(b, p_); return r_; }
void k_scale_f32(k_backend *b, float *x, size_t n, float s) { int p_ = kp_begin(b, "scale_f32"); b->ops->scale_f32(b, x, n, s); kp_end(b, p_); }
void k_weight_refresh(k_backend *b, void *wc, const float *w, size_t n) { int p_ = kp_begin(b, "weight_refresh"); b->ops->weight_refresh(b, wc, w, n); kp_end(b, p_); }
void *k_weight_copy(k_backend *b, float *w, size_t n) { int p_ = kp_begin(b, "weight_copy"); void * r_ = b->ops->weight_copy(b, w, n); kp_end(b, p_); return r_; }
void k_weight_copy_free(k_backend *b, void *wc, float *w) { b->ops->weight_copy_free(b, wc, w); }

int k_graph_begin(k_backend *b) {
  if (!b->ops->graph_begin || b->prof) return -1;
  const char *env = getenv("RDT_CUDA_GRAPH");   /* 0 turns graphs off */
  if (env && strcmp(env, "0") == 0) return -1;
  return b->ops->graph_begin(b);
}
void *k_graph_end(k_backend *b) { return b->ops->graph_end ? b->ops->graph_end(b) : NULL; }
void k_graph_launch(k_backend *b, void *graph) {
  int p_ = kp_begin(b, "graph_launch");
  b->ops->graph_launch(b, graph);
  kp_end(b, p_);
}
void k_graph_free(k_backend *b, void *graph) {
  if (graph && b->ops->graph_free) b->ops->graph_free(b, graph);
}

long k_counter(const k_backend *b, const char *name) {
  return b->ops->counter ? b->ops->counter(b, name) : -1;
}
