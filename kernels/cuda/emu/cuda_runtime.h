/* kernels/cuda/emu/cuda_runtime.h: a host emulation of the CUDA runtime
 * subset that kernels/cuda uses, for checking the kernels' logic on a machine
 * without a GPU (see run.sh).  It is not a backend and never part of the build.
 *
 * Kernels compile as plain C++: __global__ and __device__ vanish, __shared__
 * becomes `static` (blocks run one after another, so one copy serves each
 * block in turn).  The threads of a block are coroutines (ucontext) run
 * round-robin in the calling thread; __syncthreads() and each warp shuffle
 * are barriers at which a thread yields until its block (or warp) arrives.
 * Each thread runs alone from one barrier to the next, so a missing barrier
 * shows up as wrong results.  Device memory is host memory; cudaMalloc fills
 * new memory with 0x5A so that unwritten outputs and missing zero-fills show.
 */
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float4 {
  float x, y, z, w;
};
static inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
struct uint4 {
  unsigned x, y, z, w;
};
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }
static inline int min(int a, int b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- threads */
extern dim3 threadIdx, blockIdx, blockDim, gridDim;
struct emu_barrier {
  int n, count;
  long gen;
};
struct emu_thread {
  ucontext_t ctx;
  bool done;
  dim3 tid;
};
extern ucontext_t emu_sched;
extern emu_thread *emu_cur;
extern emu_barrier emu_block_bar;
extern std::vector<emu_barrier> emu_warp_bar;
extern std::vector<double> emu_warp_vals;
/* Run the nt threads of the current block to completion (emu.cpp). */
void emu_run_block(unsigned nt, void (*call)(void *), void *arg);

/* Arrive at b and yield until every member has arrived. */
static inline void emu_wait(emu_barrier &b) {
  long gen = b.gen;
  if (++b.count == b.n) {
    b.count = 0;
    b.gen++;
    return;
  }
  while (b.gen == gen) swapcontext(&emu_cur->ctx, &emu_sched);
}

static inline int emu_tid() { return threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y; }
static inline void __syncthreads() { emu_wait(emu_block_bar); }

template <typename V>
static inline V __shfl_xor_sync(unsigned, V v, int o) {
  int t = emu_tid(), w = t / 32, lane = t % 32;
  memcpy(&emu_warp_vals[t], &v, sizeof v);
  emu_wait(emu_warp_bar[w]); /* every lane has written */
  V r;
  memcpy(&r, &emu_warp_vals[w * 32 + (lane ^ o)], sizeof r);
  emu_wait(emu_warp_bar[w]); /* every lane has read */
  return r;
}

template <typename F>
static void emu_call(void *f) { (*(F *)f)(); }

/* kernel<<<grid, block>>>(args) is rewritten to emu_launch(grid, block, [&]() { kernel(args); }). */
template <typename F>
static void emu_launch(dim3 grid, dim3 block, F body) {
  unsigned nt = block.x * block.y * block.z;
  if (nt == 0 || nt % 32 || nt > 1024) {
    fprintf(stderr, "emu: a block of %u threads\n", nt);
    abort();
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) {
    fprintf(stderr, "emu: an empty grid (invalid configuration on a GPU)\n");
    abort();
  }
  gridDim = grid, blockDim = block;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        blockIdx = dim3(bx, by, bz);
        emu_run_block(nt, emu_call<F>, &body);
      }
}

/* ---------------------------------------------------------------- runtime calls */
typedef enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorNotReady = 600, cudaErrorNotSupported = 801 } cudaError_t;
typedef cudaError_t cudaError;
typedef struct emu_stream *cudaStream_t;
typedef struct emu_pool *cudaMemPool_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold };
#define cudaStreamNonBlocking 1
struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount;
};

static inline const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
/* Events: the host clock when recorded (work runs synchronously here). */
typedef struct emu_event { double ms; } *cudaEvent_t;
static inline cudaError_t cudaEventCreate(cudaEvent_t *e) { return *e = (cudaEvent_t)calloc(1, sizeof **e), cudaSuccess; }
static inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  e->ms = ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  return cudaSuccess;
}
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { return *ms = (float)(b->ms - a->ms), cudaSuccess; }
static inline cudaError_t cudaEventDestroy(cudaEvent_t e) { return free(e), cudaSuccess; }
/* Graphs: work runs as it is queued here, so capture is refused. */
typedef struct emu_graph *cudaGraph_t;
typedef struct emu_graph_exec *cudaGraphExec_t;
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };
static inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) { return cudaErrorNotSupported; }
static inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) { return *g = NULL, cudaErrorNotSupported; }
static inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t, unsigned long long) { return *x = NULL, cudaErrorNotSupported; }
static inline cudaError_t cudaGraphDestroy(cudaGraph_t) { return cudaSuccess; }
static inline cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t) { return cudaErrorNotSupported; }
static inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t) { return cudaSuccess; }
static inline cudaError_t cudaGetLastError() { return cudaSuccess; }
static inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaGetDeviceCount(int *n) { return *n = 1, cudaSuccess; }
static inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
  snprintf(p->name, sizeof p->name, "host emulation");
  p->multiProcessorCount = 132; /* an H100's, so grids are shaped as there */
  return cudaSuccess;
}
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
  *s = (cudaStream_t)malloc(1);
  return cudaSuccess;
}
static inline cudaError_t cudaStreamDestroy(cudaStream_t s) { return free(s), cudaSuccess; }
static inline cudaError_t cudaMalloc(void **p, size_t n) {
  *p = aligned_alloc(256, (n + 255) / 256 * 256);
  memset(*p, 0x5A, n);
  return cudaSuccess;
}
template <typename T>
static inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
static inline cudaError_t cudaFree(void *p) { return free(p), cudaSuccess; }
static inline cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
template <typename T>
static inline cudaError_t cudaMallocAsync(T **p, size_t n, cudaStream_t s) { return cudaMallocAsync((void **)p, n, s); }
static inline cudaError_t cudaFreeAsync(void *p, cudaStream_t) { return free(p), cudaSuccess; }
static inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { return memset(p, v, n), cudaSuccess; }
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
  return memmove(d, s, n), cudaSuccess;
}
static inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { return *f = *t = 0, cudaSuccess; }
static inline cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *p, int) { return *p = NULL, cudaSuccess; }
static inline cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void *) { return cudaSuccess; }
