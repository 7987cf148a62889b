/* kernels/cuda/kcuda.cuh: internals shared by the CUDA backend's files.
 *
 * The backend keeps one stream, one cuBLASLt handle with a cached workspace,
 * and a table of its allocations.  Activation buffers hold float, bf16 or fp16
 * (k_act_dtype); every kernel that touches them is a template over that
 * element type T and computes in float.  Every CUDA, cuBLAS and NCCL call is
 * wrapped in a check that aborts naming the file, the line and the error;
 * every launch is followed by KC_LAUNCH() (with RDT_CUDA_SYNC=1 in the
 * environment it also synchronises, so a faulting kernel is named exactly).
 */
#ifndef RDT_KCUDA_CUH
#define RDT_KCUDA_CUH

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cublasLt.h>
#include <mma.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/error.h"
#include "kernels/backend.h"
}

/* ---------------------------------------------------------------- checks */
/* Print "rdt: internal error at FILE:LINE: CALL: WHY" and abort. */
[[noreturn]] void kc_die(const char *file, int line, const char *call, const char *why);
/* Check the last launch (and, with RDT_CUDA_SYNC=1, wait for it). */
void kc_after_launch(const char *file, int line);

/* The backend's switches, read from the environment when it opens.
 * kc_env_switch: default_on ? on unless the value is "0" : off unless it is "1".
 * kc_env_count: the value if it is a positive integer, else def. */
int kc_env_switch(const char *name, int default_on);
int kc_env_count(const char *name, int def);

#define KC_CUDA(call)                                                               \
  do {                                                                              \
    cudaError_t kc_e_ = (call);                                                     \
    if (kc_e_ != cudaSuccess) kc_die(__FILE__, __LINE__, #call, cudaGetErrorString(kc_e_)); \
  } while (0)
#define KC_CUBLAS(call)                                                             \
  do {                                                                              \
    cublasStatus_t kc_s_ = (call);                                                  \
    if (kc_s_ != CUBLAS_STATUS_SUCCESS)                                             \
      kc_die(__FILE__, __LINE__, #call, cublasLtGetStatusString(kc_s_));            \
  } while (0)
#define KC_LAUNCH() kc_after_launch(__FILE__, __LINE__)
/* An argument that would make an op index out of bounds: abort like a failed call. */
#define KC_REQUIRE(cond, what) do { if (!(cond)) kc_die(__FILE__, __LINE__, #cond, what); } while (0)

/* ---------------------------------------------------------------- state */
typedef struct kc_gemm_entry kc_gemm_entry;   /* gemm.cu: cached cuBLASLt algorithms */
typedef struct kc_alloc_table kc_alloc_table; /* backend.cu: pointer -> size */

typedef struct kc_state {
  int device;
  int sm_count;
  cudaStream_t stream;
  cublasLtHandle_t lt;
  void *workspace;            /* cuBLASLt workspace, allocated once */
  size_t workspace_bytes;
  int bias_epilogue;          /* 1: bias fused into the GEMM epilogue; 0: separate kernel */
  int attn_tensor_cores;      /* 1: 16-bit attention forward on tensor cores where it applies */
  int attn_split_blocks;      /* split-key forward: target blocks per SM (RDT_CUDA_ATTN_SPLIT_BLOCKS, 2) */
  int attn_dq_split;          /* split-key dq (tensor cores): target blocks per SM, 0 = off (RDT_CUDA_ATTN_DQ_SPLIT) */
  int attn_warps;             /* warps per block, tensor-core forward and dq: 2, or 5 (RDT_CUDA_ATTN_WARPS=5) */
  int attn_prefetch;          /* RDT_CUDA_ATTN_PREFETCH=1: those kernels prefetch K/V tiles into registers */
  long attn_dq_split_calls, attn_wide_calls, attn_prefetch_calls; /* k_counter: launches that took each */
  int gemm_tune;              /* RDT_CUDA_GEMM_TUNE=1: time the heuristic's candidates on first use */
  int skinny, skinny_blocks;  /* RDT_CUDA_SKINNY=1: few-row products by skinny.cu; its blocks per SM */
  long skinny_calls;
  int gelu_epilogue;          /* RDT_CUDA_GELU_EPILOGUE=1: k_linear_gelu through cuBLASLt's GELU epilogue */
  long gelu_epilogue_calls;
  long gemm_heuristic_calls;  /* products whose algorithm was looked up (cache misses; "gemm_heuristic") */
  long bias_fallback_calls;   /* k_linear with a bias cuBLASLt would not fuse (k_counter "bias_fallback") */
  kc_gemm_entry *gemm_cache;
  int gemm_cache_len, gemm_cache_next;
  double *reduce_buf;         /* KC_REDUCE_BLOCKS partial sums + 1 total */
  kc_alloc_table *allocs;
} kc_state;

static inline kc_state *kc(const k_backend *b) { return (kc_state *)b->impl; }

/* ---------------------------------------------------------------- tensor-core fragments (16 x 16 x 16) */
namespace kc_wmma = nvcuda::wmma;
template <typename T>
using kc_frag_a = kc_wmma::fragment<kc_wmma::matrix_a, 16, 16, 16, T, kc_wmma::row_major>;
template <typename T>
using kc_frag_b = kc_wmma::fragment<kc_wmma::matrix_b, 16, 16, 16, T, kc_wmma::row_major>;
template <typename T> /* B given by the rows of B^T */
using kc_frag_bt = kc_wmma::fragment<kc_wmma::matrix_b, 16, 16, 16, T, kc_wmma::col_major>;
typedef kc_wmma::fragment<kc_wmma::accumulator, 16, 16, 16, float> kc_frag_acc;

/* ---------------------------------------------------------------- GELU-tanh */
/* 0.5 x (1 + tanh u) with u = c (x + a x^3), evaluated as the equal x s(2u)
 * (s the logistic function; 0.5 (1 + tanh u) = s(2u)), which does not cancel
 * for large negative x.  kc_gelu_sig(x) = s(2u); GELU(x) = x kc_gelu_sig(x). */
#define KC_GELU_C 0.7978845608028654f /* sqrt(2/pi) */
#define KC_GELU_A 0.044715f
__device__ __forceinline__ float kc_gelu_sig(float x) {
  return 1.f / (1.f + expf(-2.f * KC_GELU_C * (x + KC_GELU_A * x * x * x)));
}

/* ---------------------------------------------------------------- element types */
__device__ __forceinline__ float kc_f(float x) { return x; }
__device__ __forceinline__ float kc_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float kc_f(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T kc_to(float x);
template <> __device__ __forceinline__ float kc_to<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 kc_to<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half kc_to<__half>(float x) { return __float2half_rn(x); }

/* dst[i] (=|+=) v, for ops with an `acc` argument. */
template <typename T>
__device__ __forceinline__ void kc_store(T *dst, size_t i, float v, int acc) {
  dst[i] = kc_to<T>(acc ? kc_f(dst[i]) + v : v);
}

/* Run the statements with T the C++ type of the activation dtype. */
#define KC_DISPATCH(dtype, T, ...)                                                  \
  do {                                                                              \
    switch (dtype) {                                                                \
      case RDT_F32: { typedef float T; __VA_ARGS__; } break;                        \
      case RDT_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;               \
      case RDT_F16: { typedef __half T; __VA_ARGS__; } break;                       \
      default: kc_die(__FILE__, __LINE__, #dtype, "activation dtype must be F32, BF16 or F16"); \
    }                                                                               \
  } while (0)

/* ---------------------------------------------------------------- launch helpers */
#define KC_THREADS 256
/* Blocks for a grid-stride loop over n items: enough to fill the device, no more. */
static inline unsigned kc_blocks(const kc_state *s, size_t n) {
  size_t want = (n + KC_THREADS - 1) / KC_THREADS, cap = (size_t)s->sm_count * 16;
  return (unsigned)(want < cap ? (want ? want : 1) : cap);
}

/* Sum over the 32 lanes of a warp; every lane gets the total. */
__device__ __forceinline__ float kc_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float kc_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Apply f(i) for i in [0, n): a grid-stride loop over a functor. */
template <typename F>
__global__ void kc_map_kernel(size_t n, F f) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) f(i);
}
template <typename F>
static void kc_map(const kc_state *s, size_t n, F f) {
  if (n == 0) return;
  kc_map_kernel<<<kc_blocks(s, n), KC_THREADS, 0, s->stream>>>(n, f);
  KC_LAUNCH();
}

/* A temporary device buffer in stream order (cudaMallocAsync / cudaFreeAsync). */
void *kc_temp_alloc(const kc_state *s, size_t bytes);
void kc_temp_free(const kc_state *s, void *p);

/* Column sums: dst[c] += sum over r of f(r, c), for rows x cols, in an order
 * fixed by the sizes alone (deterministic, no atomics).  The rows are cut into
 * chunks (enough blocks to fill the device when rows are many and columns few,
 * e.g. the k-norm weight gradient over every image token of a batch: 1.1M rows
 * of 64); a block = 32 columns x KC_COLSUM_ROWS row-threads sums one chunk,
 * each thread its rows in order, then the block its threads in order; a second
 * kernel adds the chunks in order. */
#define KC_COLSUM_ROWS 16         /* row-threads per block */
#define KC_COLSUM_CHUNK 256       /* rows per first-stage chunk, at least */
#define KC_COLSUM_MAX_BLOCKS 1024 /* first-stage blocks, at most */
/* Stage 1: block (x, y) sums rows [y rpc, (y+1) rpc) of its 32 columns; with
 * one chunk it adds into dst, else it writes part[y][c]. */
template <typename F>
__global__ void kc_colsum_kernel(float *dst, float *part, int rows, int cols, int rpc, F f) {
  __shared__ float p[KC_COLSUM_ROWS][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  int r0 = blockIdx.y * rpc, r1 = min(rows, r0 + rpc);
  float acc = 0.f;
  if (c < cols)
    for (int r = r0 + threadIdx.y; r < r1; r += KC_COLSUM_ROWS) acc += f(r, c);
  p[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.f;
    for (int r = 0; r < KC_COLSUM_ROWS; r++) total += p[r][threadIdx.x];
    if (part) part[(size_t)blockIdx.y * cols + c] = total;
    else dst[c] += total;
  }
}
/* Stage 2: dst[c] += the chunks' sums in chunk order. */
__global__ void kc_colsum_finish(float *dst, const float *part, int chunks, int cols);
template <typename F>
static void kc_colsum(const kc_state *s, float *dst, int rows, int cols, F f) {
  if (rows <= 0 || cols <= 0) return;
  int colblocks = (cols + 31) / 32;
  int chunks = (rows + KC_COLSUM_CHUNK - 1) / KC_COLSUM_CHUNK, most = KC_COLSUM_MAX_BLOCKS / colblocks;
  if (chunks > most) chunks = most;
  if (chunks < 1) chunks = 1;
  int rpc = (rows + chunks - 1) / chunks;
  chunks = (rows + rpc - 1) / rpc;
  dim3 block(32, KC_COLSUM_ROWS), grid((unsigned)colblocks, (unsigned)chunks);
  float *part = chunks > 1 ? (float *)kc_temp_alloc(s, (size_t)chunks * cols * sizeof(float)) : NULL;
  kc_colsum_kernel<<<grid, block, 0, s->stream>>>(dst, part, rows, cols, rpc, f);
  KC_LAUNCH();
  if (part) {
    kc_colsum_finish<<<(unsigned)((cols + 255) / 256), 256, 0, s->stream>>>(dst, part, chunks, cols);
    KC_LAUNCH();
    kc_temp_free(s, part);
  }
}

/* ---------------------------------------------------------------- ops (one file each) */
/* elementwise.cu */
void kc_f32_to_act(k_backend *b, void *dst, const float *src, size_t n);
void kc_act_to_f32(k_backend *b, float *dst, const void *src, size_t n);
void kc_gelu(k_backend *b, void *y, const void *x, size_t n);
void kc_gelu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
void kc_silu(k_backend *b, void *y, const void *x, size_t n);
void kc_silu_backward(k_backend *b, void *dx, const void *dy, const void *x, size_t n, int acc);
void kc_add(k_backend *b, void *y, const void *a, const void *c, size_t n);
void kc_add_inplace(k_backend *b, void *y, const void *x, size_t n);
void kc_mul(k_backend *b, void *y, const void *a, const void *c, size_t n);
void kc_axpby(k_backend *b, void *y, float alpha, const void *x, float beta, size_t n);
void kc_mix(k_backend *b, void *y, const void *x, const void *z, const float *a, const float *c, int B, size_t per);
void kc_mul_rowvec(k_backend *b, void *y, const void *m, int B, int rows, int dim);
void kc_copy2d(k_backend *b, void *dst, int dst_ld, const void *src, int src_ld, int rows, int cols, int acc);
void kc_add_pos(k_backend *b, void *y, const float *pos, int B, int T, int dim);
void kc_add_pos_backward(k_backend *b, float *dpos, const void *dy, int B, int T, int dim);
void kc_timestep_embed(k_backend *b, void *out, const float *t_host, int n, int dim);
/* gemm.cu */
void kc_gemm_init(kc_state *s);
void kc_gemm_close(kc_state *s);
void kc_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K);
void kc_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M, int N,
                    int K);
void kc_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x,
                        const void *W, int M, int N, int K, int acc);
/* skinny.cu: y = x W^T + b for M <= 128 rows, and act = GELU(y) unless act
 * is NULL; 0, or -1 (not applicable: use cuBLASLt) */
void kc_skinny_init(kc_state *s);
int kc_skinny_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K,
                     void *act);
/* norm.cu */
void kc_rmsnorm(k_backend *b, void *y, float *rstd, const void *x, const float *w, int rows, int dim, float eps);
void kc_rmsnorm_backward(k_backend *b, void *dx, float *dw, const void *dy, const void *x, const float *w,
                         const float *rstd, int rows, int dim, int acc);
void kc_rmsnorm_meansq(k_backend *b, void *y, const void *x, const float *w, int rows, int dim, float eps);
void kc_add_rmsnorm(k_backend *b, void *s, void *y, float *rstd, const void *a, const void *c, const float *w, int rows,
                    int dim, float eps);
void kc_rmsnorm_pair(k_backend *b, void *y0, float *rstd0, const void *x0, const float *w0, void *y1, float *rstd1,
                     const void *x1, const float *w1, int rows, int dim, float eps);
void kc_layernorm(k_backend *b, void *y, const void *x, const float *w, const float *bias, int rows, int dim, float eps);
void kc_softmax(k_backend *b, void *y, const void *x, int rows, int cols);
/* attention.cu */
void kc_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v,
                  const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale);
void kc_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q,
                           const void *k, const void *v, const void *out, const float *lse,
                           const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale);
/* optim.cu */
#define KC_REDUCE_BLOCKS 512
float kc_mse_loss(k_backend *b, void *dpred, const void *pred, const void *target, size_t n, float grad_scale);
void kc_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
              float beta2, float eps, float wd, int step);
void kc_ema(k_backend *b, float *ema, const float *p, size_t n, float decay);
void kc_adamw_ema(k_backend *b, float *p, const float *g, float *m, float *v, float *ema, void *wc, size_t n,
                  float gscale, float lr, float beta1, float beta2, float eps, float wd, int step, float decay);
double kc_sumsq(k_backend *b, const float *x, size_t n);
void kc_scale_f32(k_backend *b, float *x, size_t n, float s);

#endif
