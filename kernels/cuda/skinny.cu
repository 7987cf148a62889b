/* kernels/cuda/skinny.cu: y = x W^T + b for few rows (M <= 128), split over K.
 *
 * At batch 1 the policy's products have 67 rows (the action chunk, state and
 * two embedding tokens) against 2048..6144 weight rows.  A library GEMM tiles
 * the output, so such a product runs on N/128 blocks that each stream their
 * whole weight slab: about 16 of 132 SMs read the weights (12.7 us per
 * 2048 x 2048 product on an H100 where reading the weights once takes 2.7
 * us).  Here every block takes all rows, 64 output columns and one range of
 * K, so N/64 x splits blocks share the weight traffic; each writes its fp32
 * partial product, and a second pass sums the ranges in a fixed order (no
 * atomics: deterministic), adds the bias and rounds to the activation type
 * once, as the cuBLASLt bias epilogue does (for k_linear_gelu it also writes
 * GELU of the fp32 sum).
 *
 * Block: 4 warps, warp w owns columns n0 + 16 w .. +15 of every row tile.
 * Per 64-wide K step the warp first issues its four weight fragments straight
 * from global memory (W row-major [N, K] is the column-major K x N operand
 * with ld K), then the block stages x's rows for that step in shared memory
 * (zeros past M) and the warp runs its products on the tensor cores.
 *
 * Used for 16-bit activations when M <= 128, N and K multiples of 64 and the
 * operands suitably aligned; opt-in with RDT_CUDA_SKINNY=1 until timed on a
 * GPU (RDT_CUDA_SKINNY_BLOCKS: target blocks per SM, default 2).
 */
#include "kernels/cuda/kcuda.cuh"

#define KS_WARPS 4
#define KS_BN (KS_WARPS * 16) /* output columns per block */
#define KS_BK 64              /* K per step */
#define KS_LDA (KS_BK + 8)    /* staged x rows: 144 bytes, keeps 32-byte fragment alignment */
#define KS_MAX_ROWS 128

template <typename T, int MT>
__global__ void __launch_bounds__(KS_WARPS * 32)
kc_skinny_kernel(float *part, const T *x, const T *W, int M, int N, int K, int kchunk) {
  __shared__ __align__(32) T As[MT * 16][KS_LDA];
  const int warp = threadIdx.x / 32, n0 = blockIdx.x * KS_BN + warp * 16, split = blockIdx.y;
  const int kbeg = split * kchunk, kend = min(K, kbeg + kchunk);
  kc_frag_acc acc[MT];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) kc_wmma::fill_fragment(acc[mt], 0.f);
  const T *wcol = W + (size_t)n0 * K;
  for (int k0 = kbeg; k0 < kend; k0 += KS_BK) {
    kc_frag_bt<T> bf[KS_BK / 16];
#pragma unroll
    for (int kk = 0; kk < KS_BK / 16; kk++) kc_wmma::load_matrix_sync(bf[kk], wcol + k0 + kk * 16, K);
    __syncthreads(); /* the previous step's x is consumed */
    for (int i = threadIdx.x; i < MT * 16 * (KS_BK / 8); i += blockDim.x) {
      int r = i / (KS_BK / 8), c = i % (KS_BK / 8) * 8;
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (r < M) v = *reinterpret_cast<const uint4 *>(x + (size_t)r * K + k0 + c);
      *reinterpret_cast<uint4 *>(&As[r][c]) = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < KS_BK / 16; kk++)
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        kc_frag_a<T> af;
        kc_wmma::load_matrix_sync(af, &As[mt * 16][kk * 16], KS_LDA);
        kc_wmma::mma_sync(acc[mt], af, bf[kk], acc[mt]);
      }
  }
  /* partial product of this K range: part[split][MT * 16][N] */
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
    kc_wmma::store_matrix_sync(part + ((size_t)split * MT * 16 + mt * 16) * N + n0, acc[mt], N,
                               kc_wmma::mem_row_major);
}

/* y[m, n] = sum over the ranges of part + bias[n], rounded once; with act,
 * also act = GELU of the fp32 sum (the GELU epilogue of k_linear_gelu). */
template <typename T>
struct kc_skinny_sum_op {
  T *y, *act;
  const float *part, *bias;
  int N, rows, nsplit;
  __device__ void operator()(size_t i) const {
    size_t m = i / N, n = i % N;
    float acc = 0.f;
    for (int s = 0; s < nsplit; s++) acc += part[((size_t)s * rows + m) * N + n];
    if (bias) acc += bias[n];
    y[i] = kc_to<T>(acc);
    if (act) act[i] = kc_to<T>(acc * kc_gelu_sig(acc));
  }
};

template <typename T, int MT>
static void kc_skinny_run(const kc_state *s, T *y, const T *x, const T *W, const float *bias, int M, int N, int K,
                          T *act) {
  int colblocks = N / KS_BN, steps = K / KS_BK;
  int target = s->skinny_blocks * s->sm_count;
  int nsplit = (target + colblocks - 1) / colblocks;
  nsplit = nsplit < 1 ? 1 : nsplit > steps ? steps : nsplit;
  int kchunk = (steps + nsplit - 1) / nsplit * KS_BK;
  nsplit = (K + kchunk - 1) / kchunk;
  float *part = (float *)kc_temp_alloc(s, (size_t)nsplit * MT * 16 * N * sizeof(float));
  dim3 grid((unsigned)colblocks, (unsigned)nsplit);
  kc_skinny_kernel<T, MT><<<grid, KS_WARPS * 32, 0, s->stream>>>(part, x, W, M, N, K, kchunk);
  KC_LAUNCH();
  kc_map(s, (size_t)M * N, kc_skinny_sum_op<T>{y, act, part, bias, N, MT * 16, nsplit});
  kc_temp_free(s, part);
}

template <typename T>
static void kc_skinny_dispatch(const kc_state *s, T *y, const T *x, const T *W, const float *bias, int M, int N,
                               int K, T *act) {
  switch ((M + 15) / 16) {
    case 1: kc_skinny_run<T, 1>(s, y, x, W, bias, M, N, K, act); break;
    case 2: kc_skinny_run<T, 2>(s, y, x, W, bias, M, N, K, act); break;
    case 3: kc_skinny_run<T, 3>(s, y, x, W, bias, M, N, K, act); break;
    case 4: kc_skinny_run<T, 4>(s, y, x, W, bias, M, N, K, act); break;
    case 5: kc_skinny_run<T, 5>(s, y, x, W, bias, M, N, K, act); break;
    case 6: kc_skinny_run<T, 6>(s, y, x, W, bias, M, N, K, act); break;
    case 7: kc_skinny_run<T, 7>(s, y, x, W, bias, M, N, K, act); break;
    default: kc_skinny_run<T, 8>(s, y, x, W, bias, M, N, K, act); break;
  }
}

int kc_skinny_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K,
                     void *act) {
  kc_state *s = kc(b);
  if (!s->skinny || b->act == RDT_F32 || M < 1 || M > KS_MAX_ROWS || N % KS_BN || K % KS_BK) return -1;
  if ((uintptr_t)x % 16 || (uintptr_t)W % 32) return -1;
  if (b->act == RDT_BF16)
    kc_skinny_dispatch(s, (__nv_bfloat16 *)y, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)W, bias, M, N, K,
                       (__nv_bfloat16 *)act);
  else
    kc_skinny_dispatch(s, (__half *)y, (const __half *)x, (const __half *)W, bias, M, N, K, (__half *)act);
  s->skinny_calls++;
  return 0;
}

void kc_skinny_init(kc_state *s) {
  s->skinny = kc_env_switch("RDT_CUDA_SKINNY", 0);
  s->skinny_blocks = kc_env_count("RDT_CUDA_SKINNY_BLOCKS", 2);
}
