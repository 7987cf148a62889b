/* kernels/cpu/backend.c: the CPU backend -- memory, transfers and the op table.
 *
 * Activations are F32, "device" memory is host memory, so transfers are
 * memcpy and the compute copy of a weight is the master buffer itself.
 */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include <cblas.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

typedef struct {
  kcpu_pool *pool;
  rdt_dtype round;     /* F32, or the 16-bit type activations are rounded to (round.c) */
  k_ops round_ops;     /* the op table then in use */
} kcpu_state;

kcpu_pool *kcpu_pool_of(k_backend *b) { return ((kcpu_state *)b->impl)->pool; }
rdt_dtype kcpu_rounding(const k_backend *b) { return ((const kcpu_state *)b->impl)->round; }

/* ---------------------------------------------------------------- memory */
/* Each block keeps its calloc'd base and size just below the aligned pointer. */
typedef struct {
  void *base;
  size_t bytes;
} block_header;

#define KCPU_ALIGN 256

static void *cpu_alloc(k_backend *b, size_t bytes) {
  char *base = rdt_calloc(1, bytes + KCPU_ALIGN + sizeof(block_header));
  uintptr_t at = ((uintptr_t)base + sizeof(block_header) + KCPU_ALIGN - 1) & ~(uintptr_t)(KCPU_ALIGN - 1);
  block_header *h = (block_header *)at - 1;
  h->base = base;
  h->bytes = bytes;
  __atomic_add_fetch(&b->bytes_in_use, bytes, __ATOMIC_RELAXED);
  return (void *)at;
}

static void cpu_free(k_backend *b, void *p) {
  if (!p) return;
  block_header *h = (block_header *)p - 1;
  __atomic_sub_fetch(&b->bytes_in_use, h->bytes, __ATOMIC_RELAXED);
  free(h->base);
}

static void cpu_memset0(k_backend *b, void *p, size_t bytes) {
  (void)b;
  memset(p, 0, bytes);
}

/* Any same-address-space copy: device to device, upload, download, F32 to F32. */
static void cpu_copy(k_backend *b, void *dst, const void *src, size_t bytes) {
  (void)b;
  if (dst != src) memmove(dst, src, bytes);
}

/* Host f32 <-> activations and F32 <-> activations: all F32 here. */
static void cpu_to_act(k_backend *b, void *dst, const float *src, size_t n) {
  cpu_copy(b, dst, src, n * sizeof(float));
}
static void cpu_from_act(k_backend *b, float *dst, const void *src, size_t n) {
  cpu_copy(b, dst, src, n * sizeof(float));
}

/* ---------------------------------------------------------------- weights */
static void cpu_weight_refresh(k_backend *b, void *wc, const float *w, size_t n) { cpu_to_act(b, wc, w, n); }

static void *cpu_weight_copy(k_backend *b, float *w, size_t n) {
  (void)b;
  (void)n;
  return w;
}

static void cpu_weight_copy_free(k_backend *b, void *wc, float *w) {
  if (wc != w) cpu_free(b, wc);
}

/* ---------------------------------------------------------------- lifetime */
static void cpu_sync(k_backend *b) { (void)b; }

static void cpu_close(k_backend *b) {
  kcpu_state *s = b->impl;
  kcpu_pool_destroy(s->pool);
  free(s);
  b->impl = NULL;
}

static const k_ops cpu_ops = {
  .sync = cpu_sync,
  .alloc = cpu_alloc,
  .free = cpu_free,
  .memset0 = cpu_memset0,
  .copy = cpu_copy,
  .upload = cpu_copy,
  .download = cpu_copy,
  .upload_act = cpu_to_act,
  .download_act = cpu_from_act,
  .f32_to_act = cpu_to_act,
  .act_to_f32 = cpu_from_act,
  .linear = kcpu_linear,
  .linear_backward = kcpu_linear_backward,
  .linear_gelu = kcpu_linear_gelu,
  .rmsnorm = kcpu_rmsnorm,
  .rmsnorm_backward = kcpu_rmsnorm_backward,
  .add_rmsnorm = kcpu_add_rmsnorm,
  .rmsnorm_pair = kcpu_rmsnorm_pair,
  .rmsnorm_meansq = kcpu_rmsnorm_meansq,
  .layernorm = kcpu_layernorm,
  .gelu = kcpu_gelu,
  .gelu_backward = kcpu_gelu_backward,
  .silu = kcpu_silu,
  .silu_backward = kcpu_silu_backward,
  .softmax = kcpu_softmax,
  .attention = kcpu_attention,
  .attention_backward = kcpu_attention_backward,
  .add = kcpu_add,
  .add_inplace = kcpu_add_inplace,
  .mul = kcpu_mul,
  .axpby = kcpu_axpby,
  .mix = kcpu_mix,
  .mul_rowvec = kcpu_mul_rowvec,
  .copy2d = kcpu_copy2d,
  .add_pos = kcpu_add_pos,
  .add_pos_backward = kcpu_add_pos_backward,
  .timestep_embed = kcpu_timestep_embed,
  .mse_loss = kcpu_mse_loss,
  .adamw = kcpu_adamw,
  .ema = kcpu_ema,
  .adamw_ema = kcpu_adamw_ema,
  .sumsq = kcpu_sumsq,
  .scale_f32 = kcpu_scale_f32,
  .weight_refresh = cpu_weight_refresh,
  .weight_copy = cpu_weight_copy,
  .weight_copy_free = cpu_weight_copy_free,
  .close = cpu_close,
};

int kcpu_set_rounding(k_backend *b, rdt_dtype t) {
  kcpu_state *s = b->impl;
  if (t != RDT_F32 && t != RDT_BF16 && t != RDT_F16)
    return rdt_fail("backend cpu: activations can be rounded to BF16 or F16, not %s", rdt_dtype_name(t));
  s->round = t;
  if (t == RDT_F32) {
    b->ops = &cpu_ops;
  } else {
    s->round_ops = cpu_ops;
    kcpu_round_ops(&s->round_ops);
    b->ops = &s->round_ops;
  }
  return 0;
}

/* Cores this process may run on (its affinity mask, e.g. under taskset or a
 * container's cpuset), else the cores online. */
static int usable_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int kcpu_init(k_backend *b, int threads) {
  if (threads < 0) return rdt_fail("cpu backend: threads must be >= 0 (0 = all cores), got %d", threads);
  if (threads == 0) threads = usable_cores();
  /* Each GEMM task runs single-threaded inside OpenBLAS; our pool parallelises. */
  openblas_set_num_threads(1);
  kcpu_state *s = rdt_calloc(1, sizeof *s);
  s->pool = kcpu_pool_create(threads);
  s->round = RDT_F32;
  b->kind = K_CPU;
  b->act = RDT_F32;
  b->threads = threads;
  snprintf(b->name, sizeof b->name, "cpu");
  b->ops = &cpu_ops;
  b->impl = s;
  return 0;
}
