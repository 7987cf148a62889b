/* kernels/kernels.c: the public op interface, forwarding to the backend's table. */
#include <stdlib.h>
#include <string.h>
#include "rdt_build.h"
#include "core/error.h"
#include "kernels/backend.h"

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
  return b;
}

void k_close(k_backend *b) {
  if (!b) return;
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

/* ---------------------------------------------------------------- forwarding */
void k_sync(k_backend *b) { b->ops->sync(b); }
void *k_alloc(k_backend *b, size_t bytes) { return b->ops->alloc(b, bytes); }
void k_free(k_backend *b, void *p) { b->ops->free(b, p); }
void k_memset0(k_backend *b, void *p, size_t bytes) { b->ops->memset0(b, p, bytes); }
void k_copy(k_backend *b, void *dst, const void *src, size_t bytes) { b->ops->copy(b, dst, src, bytes); }
void k_upload(k_backend *b, void *dst, const void *host_src, size_t bytes) { b->ops->upload(b, dst, host_src, bytes); }
void k_download(k_backend *b, void *host_dst, const void *src, size_t bytes) { b->ops->download(b, host_dst, src, bytes); }
void k_upload_act(k_backend *b, void *dst, const float *host_src, size_t n) { b->ops->upload_act(b, dst, host_src, n); }
void k_download_act(k_backend *b, float *host_dst, const void *src, size_t n) { b->ops->download_act(b, host_dst, src, n); }
void k_f32_to_act(k_backend *b, void *dst, const float *src, size_t n) { b->ops->f32_to_act(b, dst, src, n); }
void k_act_to_f32(k_backend *b, float *dst, const void *src, size_t n) { b->ops->act_to_f32(b, dst, src, n); }
void k_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K) { b->ops->linear(b, y, x, W, bias, M, N, K); }
void k_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x, const void *W, int M, int N, int K, int acc) { b->ops->linear_backward(b, dx, dW, dbias, dy, x, W, M, N, K, acc); }
void k_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps) { b->ops->rmsnorm(b, y, rstd, x, w, rows, dim, eps); }
void k_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w, const float *rstd, int rows, int dim, int acc) { b->ops->rmsnorm_backward(b, dx, dw, dy, x, w, rstd, rows, dim, acc); }
void k_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps) { b->ops->rmsnorm_meansq(b, y, x, w, rows, dim, eps); }
void k_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim, float eps) { b->ops->layernorm(b, y, x, w, bias, rows, dim, eps); }
void k_gelu(k_backend *b, void *y, const void *x, size_t n) { b->ops->gelu(b, y, x, n); }
void k_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) { b->ops->gelu_backward(b, dx, dy, x, n, acc); }
void k_silu(k_backend *b, void *y, const void *x, size_t n) { b->ops->silu(b, y, x, n); }
void k_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc) { b->ops->silu_backward(b, dx, dy, x, n, acc); }
void k_softmax(k_backend *b, void *y, const void *x, int rows, int cols) { b->ops->softmax(b, y, x, rows, cols); }
void k_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v, const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale) { b->ops->attention(b, out, lse, q, k, v, mask, bias, B, Tq, Tk, nh, hd, scale); }
void k_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q, const void *k, const void *v, const void *out, const float *lse, const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale) { b->ops->attention_backward(b, dq, dk, dv, dout, q, k, v, out, lse, mask, B, Tq, Tk, nh, hd, scale); }
void k_add(k_backend *b, void *y, const void *a, const void *c, size_t n) { b->ops->add(b, y, a, c, n); }
void k_add_inplace(k_backend *b, void *y, const void *x, size_t n) { b->ops->add_inplace(b, y, x, n); }
void k_mul(k_backend *b, void *y, const void *a, const void *c, size_t n) { b->ops->mul(b, y, a, c, n); }
void k_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n) { b->ops->axpby(b, y, alpha, x, beta, n); }
void k_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B, size_t per) { b->ops->mix(b, y, x, z, a, c, B, per); }
void k_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim) { b->ops->mul_rowvec(b, y, m, B, rows, dim); }
void k_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc) { b->ops->copy2d(b, dst, dst_ld, src, src_ld, rows, cols, acc); }
void k_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim) { b->ops->add_pos(b, y, pos, B, T, dim); }
void k_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T, int dim) { b->ops->add_pos_backward(b, dpos, dy, B, T, dim); }
void k_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim) { b->ops->timestep_embed(b, out, t_host, n, dim); }
float k_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale) { return b->ops->mse_loss(b, dpred, pred, target, n, grad_scale); }
void k_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float wd, int step) { b->ops->adamw(b, p, g, m, v, n, lr, beta1, beta2, eps, wd, step); }
void k_ema(k_backend *b, float *ema, const float *p, size_t n, float decay) { b->ops->ema(b, ema, p, n, decay); }
double k_sumsq(k_backend *b, const float *x, size_t n) { return b->ops->sumsq(b, x, n); }
void k_scale_f32(k_backend *b, float *x, size_t n, float s) { b->ops->scale_f32(b, x, n, s); }
void k_weight_refresh(k_backend *b, void *wc, const float *w, size_t n) { b->ops->weight_refresh(b, wc, w, n); }
void *k_weight_copy(k_backend *b, float *w, size_t n) { return b->ops->weight_copy(b, w, n); }
void k_weight_copy_free(k_backend *b, void *wc, float *w) { b->ops->weight_copy_free(b, wc, w); }
