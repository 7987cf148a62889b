/* kernels/cuda/backend.cu: the CUDA backend's state, memory and op table.
 *
 * One backend = one device, one stream (all ops are queued on it in order),
 * one cuBLASLt handle with a 32 MiB workspace.  k_alloc uses cudaMalloc
 * (256-byte aligned, visible to every stream at once) and zero-fills on the
 * stream; ops that need scratch space take it from the stream-ordered pool
 * (cudaMallocAsync).  Host transfers convert activations on the host, which
 * rounds to nearest even exactly as the device conversions do.
 *
 * Environment: RDT_CUDA_SYNC=1 synchronises after every launch (to name a
 * faulting kernel); RDT_CUDA_BIAS_EPILOGUE=0 adds biases with a separate
 * kernel instead of cuBLASLt's epilogue; RDT_CUDA_ATTN_TC=0 keeps 16-bit
 * attention off the tensor cores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cuda/kcuda.cuh"

/* ---------------------------------------------------------------- checks */
static int kc_debug_sync = -1;  /* RDT_CUDA_SYNC=1: synchronise after every launch */

void kc_die(const char *file, int line, const char *call, const char *why) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s: %s", call, why);
  rdt_internal_error(file, line, msg);
}

void kc_after_launch(const char *file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) kc_die(file, line, "kernel launch", cudaGetErrorString(e));
  if (kc_debug_sync) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess) kc_die(file, line, "kernel (RDT_CUDA_SYNC=1)", cudaGetErrorString(e));
  }
}

/* ---------------------------------------------------------------- allocation table */
/* Open addressing, pointer -> size, so k_free can keep bytes_in_use. */
struct kc_alloc_table {
  void **keys;
  size_t *sizes;
  size_t cap, len;
};

static size_t kc_hash(const void *p, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)p >> 8;
  x *= 0x9e3779b97f4a7c15ull;
  return (size_t)(x >> 17) & (cap - 1);
}

static void kc_table_put(kc_alloc_table *t, void *p, size_t bytes);

/* Double the table's capacity. */
static void kc_table_grow(kc_alloc_table *t) {
  kc_alloc_table old = *t;
  t->cap = old.cap ? old.cap * 2 : 1024;
  t->keys = (void **)rdt_calloc(t->cap, sizeof *t->keys);
  t->sizes = (size_t *)rdt_calloc(t->cap, sizeof *t->sizes);
  t->len = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.keys[i]) kc_table_put(t, old.keys[i], old.sizes[i]);
  free(old.keys);
  free(old.sizes);
}

static void kc_table_put(kc_alloc_table *t, void *p, size_t bytes) {
  if (2 * (t->len + 1) > t->cap) kc_table_grow(t);
  size_t i = kc_hash(p, t->cap);
  while (t->keys[i]) i = (i + 1) & (t->cap - 1);
  t->keys[i] = p;
  t->sizes[i] = bytes;
  t->len++;
}

/* Remove p and return its size; aborts if p was not allocated here. */
static size_t kc_table_take(kc_alloc_table *t, void *p) {
  size_t i = t->cap ? kc_hash(p, t->cap) : 0;
  while (t->cap && t->keys[i] && t->keys[i] != p) i = (i + 1) & (t->cap - 1);
  KC_REQUIRE(t->cap && t->keys[i] == p, "k_free of a pointer this backend did not allocate");
  size_t bytes = t->sizes[i];
  t->keys[i] = NULL;
  t->len--;
  /* Re-insert the rest of the probe run so later lookups still find them. */
  for (size_t j = (i + 1) & (t->cap - 1); t->keys[j]; j = (j + 1) & (t->cap - 1)) {
    void *k = t->keys[j];
    size_t sz = t->sizes[j];
    t->keys[j] = NULL;
    t->len--;
    kc_table_put(t, k, sz);
  }
  return bytes;
}

/* ---------------------------------------------------------------- memory */
static void *kc_alloc(k_backend *b, size_t bytes) {
  kc_state *s = kc(b);
  void *p = NULL;
  size_t n = bytes ? (bytes + 255) & ~(size_t)255 : 256;
  cudaError_t e = cudaMalloc(&p, n);
  if (e != cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    fflush(stdout);
    fprintf(stderr, "rdt: error: %s: out of GPU memory allocating %zu bytes (%zu in use by rdt, %zu free of %zu)\n",
            b->name, bytes, b->bytes_in_use, free_b, total_b);
    exit(1);
  }
  KC_CUDA(cudaMemsetAsync(p, 0, n, s->stream));
  kc_table_put(s->allocs, p, n);
  b->bytes_in_use += n;
  return p;
}

static void kc_free(k_backend *b, void *p) {
  kc_state *s = kc(b);
  if (!p) return;
  b->bytes_in_use -= kc_table_take(s->allocs, p);
  KC_CUDA(cudaStreamSynchronize(s->stream));  /* queued work may still read p */
  KC_CUDA(cudaFree(p));
}

void *kc_temp_alloc(const kc_state *s, size_t bytes) {
  void *p = NULL;
  KC_CUDA(cudaMallocAsync(&p, bytes ? bytes : 1, s->stream));
  return p;
}

void kc_temp_free(const kc_state *s, void *p) { KC_CUDA(cudaFreeAsync(p, s->stream)); }

static void kc_sync(k_backend *b) { KC_CUDA(cudaStreamSynchronize(kc(b)->stream)); }

static void kc_memset0(k_backend *b, void *p, size_t bytes) {
  if (bytes) KC_CUDA(cudaMemsetAsync(p, 0, bytes, kc(b)->stream));
}

static void kc_copy(k_backend *b, void *dst, const void *src, size_t bytes) {
  if (bytes) KC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, kc(b)->stream));
}

/* Host to device; returns when the host buffer may be reused and the data is there. */
static void kc_upload(k_backend *b, void *dst, const void *host_src, size_t bytes) {
  kc_state *s = kc(b);
  if (!bytes) return;
  KC_CUDA(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, s->stream));
  KC_CUDA(cudaStreamSynchronize(s->stream));
}

/* Device to host after all queued work. */
static void kc_download(k_backend *b, void *host_dst, const void *src, size_t bytes) {
  kc_state *s = kc(b);
  if (!bytes) return;
  KC_CUDA(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s->stream));
  KC_CUDA(cudaStreamSynchronize(s->stream));
}

/* The F32 values go up as they are and the device converts them (its
 * conversion rounds as core's host one does, tested): a host loop over a
 * batch of image tokens cost more than the copy itself. */
static void kc_upload_act(k_backend *b, void *dst, const float *host_src, size_t n) {
  if (b->act == RDT_F32) return kc_upload(b, dst, host_src, n * sizeof(float));
  if (!n) return;
  kc_state *s = kc(b);
  float *tmp = (float *)kc_temp_alloc(s, n * sizeof(float));
  kc_upload(b, tmp, host_src, n * sizeof(float));
  kc_f32_to_act(b, dst, tmp, n);
  kc_temp_free(s, tmp);
}

static void kc_download_act(k_backend *b, float *host_dst, const void *src, size_t n) {
  if (b->act == RDT_F32) return kc_download(b, host_dst, src, n * sizeof(float));
  uint16_t *h = (uint16_t *)rdt_malloc(n * sizeof *h + 1);
  kc_download(b, h, src, n * sizeof *h);
  for (size_t i = 0; i < n; i++)
    host_dst[i] = b->act == RDT_BF16 ? rdt_bf16_to_f32(h[i]) : rdt_f16_to_f32(h[i]);
  free(h);
}

/* ---------------------------------------------------------------- weight copies */
static void kc_weight_refresh(k_backend *b, void *wc, const float *w, size_t n) {
  if (wc != (const void *)w) kc_f32_to_act(b, wc, w, n);
}

/* With F32 activations the master buffer is its own compute copy. */
static void *kc_weight_copy(k_backend *b, float *w, size_t n) {
  if (b->act == RDT_F32) return w;
  void *wc = kc_alloc(b, n * rdt_dtype_size(b->act));
  kc_f32_to_act(b, wc, w, n);
  return wc;
}

static void kc_weight_copy_free(k_backend *b, void *wc, float *w) {
  if (wc != (void *)w) kc_free(b, wc);
}

/* ---------------------------------------------------------------- lifetime */
static void kc_close(k_backend *b) {
  kc_state *s = kc(b);
  if (!s) return;
  KC_CUDA(cudaStreamSynchronize(s->stream));
  kc_gemm_close(s);
  for (size_t i = 0; i < s->allocs->cap; i++)
    if (s->allocs->keys[i]) KC_CUDA(cudaFree(s->allocs->keys[i]));
  free(s->allocs->keys);
  free(s->allocs->sizes);
  free(s->allocs);
  KC_CUDA(cudaFree(s->reduce_buf));
  KC_CUDA(cudaStreamDestroy(s->stream));
  free(s);
  b->impl = NULL;
}

/* Events for the op profiler (kernels.c, RDT_KERNEL_PROFILE=1). */
static void *kc_event_new(k_backend *) {
  cudaEvent_t e;
  KC_CUDA(cudaEventCreate(&e));
  return (void *)e;
}
static void kc_event_record(k_backend *b, void *ev) { KC_CUDA(cudaEventRecord((cudaEvent_t)ev, kc(b)->stream)); }
static float kc_event_ms(k_backend *, void *a, void *ev_b) {
  float ms = 0;
  KC_CUDA(cudaEventSynchronize((cudaEvent_t)ev_b));
  KC_CUDA(cudaEventElapsedTime(&ms, (cudaEvent_t)a, (cudaEvent_t)ev_b));
  return ms;
}
static void kc_event_free(k_backend *, void *ev) { KC_CUDA(cudaEventDestroy((cudaEvent_t)ev)); }

/* Graphs (k_graph_*): stream capture of this backend's stream. */
static int kc_graph_begin(k_backend *b) {
  if (kc_debug_sync) return -1;
  if (cudaStreamBeginCapture(kc(b)->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return 0;
}
static void *kc_graph_end(k_backend *b) {
  cudaGraph_t g = NULL;
  cudaGraphExec_t x = NULL;
  cudaError_t e = cudaStreamEndCapture(kc(b)->stream, &g);
  if (e == cudaSuccess && g) e = cudaGraphInstantiate(&x, g, 0);
  if (g) cudaGraphDestroy(g);
  if (e != cudaSuccess || !x) {
    cudaGetLastError();
    return NULL;
  }
  return (void *)x;
}
static void kc_graph_launch(k_backend *b, void *graph) {
  KC_CUDA(cudaGraphLaunch((cudaGraphExec_t)graph, kc(b)->stream));
}
static void kc_graph_free(k_backend *b, void *graph) {
  KC_CUDA(cudaStreamSynchronize(kc(b)->stream));
  KC_CUDA(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

int kc_env_switch(const char *name, int default_on) {
  const char *v = getenv(name);
  return default_on ? !(v && strcmp(v, "0") == 0) : v && strcmp(v, "1") == 0;
}

int kc_env_count(const char *name, int def) {
  const char *v = getenv(name);
  return v && atoi(v) > 0 ? atoi(v) : def;
}

static long kc_counter(const k_backend *b, const char *name) {
  if (strcmp(name, "skinny_linear") == 0) return kc(b)->skinny_calls;
  if (strcmp(name, "gelu_epilogue") == 0) return kc(b)->gelu_epilogue_calls;
  if (strcmp(name, "bias_fallback") == 0) return kc(b)->bias_fallback_calls;
  if (strcmp(name, "gemm_heuristic") == 0) return kc(b)->gemm_heuristic_calls;
  if (strcmp(name, "attn_dq_split") == 0) return kc(b)->attn_dq_split_calls;
  if (strcmp(name, "attn_wide") == 0) return kc(b)->attn_wide_calls;
  if (strcmp(name, "attn_prefetch") == 0) return kc(b)->attn_prefetch_calls;
  return -1;
}

static const k_ops kc_ops = {
    kc_sync, kc_alloc, kc_free, kc_memset0, kc_copy, kc_upload, kc_download,
    kc_upload_act, kc_download_act, kc_f32_to_act, kc_act_to_f32,
    kc_linear, kc_linear_backward, kc_linear_gelu,
    kc_rmsnorm, kc_rmsnorm_backward, kc_add_rmsnorm, kc_rmsnorm_pair, kc_rmsnorm_meansq, kc_layernorm,
    kc_gelu, kc_gelu_backward, kc_silu, kc_silu_backward, kc_softmax,
    kc_attention, kc_attention_backward,
    kc_add, kc_add_inplace, kc_mul, kc_axpby, kc_mix, kc_mul_rowvec, kc_copy2d,
    kc_add_pos, kc_add_pos_backward, kc_timestep_embed,
    kc_mse_loss, kc_adamw, kc_ema, kc_adamw_ema, kc_sumsq, kc_scale_f32,
    kc_weight_refresh, kc_weight_copy, kc_weight_copy_free,
    kc_close,
    kc_event_new, kc_event_record, kc_event_ms, kc_event_free,
    kc_graph_begin, kc_graph_end, kc_graph_launch, kc_graph_free,
    kc_counter,
};

extern "C" int kcuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  /* no driver or no device: not an error here */
    return 0;
  }
  return n;
}

extern "C" int kcuda_init(k_backend *b, int device) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return rdt_fail("cuda:%d: no usable CUDA device (%s)", device, cudaGetErrorString(e));
  }
  if (device < 0 || device >= count)
    return rdt_fail("cuda:%d: no such device (%d visible)", device, count);
  if (kc_debug_sync < 0) {
    const char *env = getenv("RDT_CUDA_SYNC");
    kc_debug_sync = env && *env && strcmp(env, "0") != 0;
  }
  KC_CUDA(cudaSetDevice(device));
  cudaDeviceProp prop;
  KC_CUDA(cudaGetDeviceProperties(&prop, device));

  kc_state *s = (kc_state *)rdt_calloc(1, sizeof *s);
  s->device = device;
  s->sm_count = prop.multiProcessorCount;
  s->bias_epilogue = kc_env_switch("RDT_CUDA_BIAS_EPILOGUE", 1);
  s->attn_tensor_cores = kc_env_switch("RDT_CUDA_ATTN_TC", 1);
  s->attn_split_blocks = kc_env_count("RDT_CUDA_ATTN_SPLIT_BLOCKS", 2);
  s->attn_dq_split = kc_env_count("RDT_CUDA_ATTN_DQ_SPLIT", 0);
  s->attn_warps = kc_env_count("RDT_CUDA_ATTN_WARPS", 2) == 5 ? 5 : 2;
  s->attn_prefetch = kc_env_switch("RDT_CUDA_ATTN_PREFETCH", 0);
  s->allocs = (kc_alloc_table *)rdt_calloc(1, sizeof *s->allocs);
  KC_CUDA(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
  KC_CUDA(cudaMalloc((void **)&s->reduce_buf, (KC_REDUCE_BLOCKS + 1) * sizeof(double)));
  /* Keep freed scratch memory in the pool instead of returning it at each sync. */
  cudaMemPool_t pool;
  KC_CUDA(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t keep = UINT64_MAX;
  KC_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  kc_gemm_init(s);
  kc_skinny_init(s);

  b->kind = K_CUDA;
  b->act = RDT_BF16;
  b->threads = 1;
  snprintf(b->name, sizeof b->name, "cuda:%d (%.120s)", device, prop.name);
  b->ops = &kc_ops;
  b->impl = s;
  return 0;
}
