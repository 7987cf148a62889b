/* kernels/cuda/attention.cu: flash-style scaled dot-product attention.
 *
 * Layout (kernels.h): q [B, Tq, nh, hd], k and v [B, Tk, nh, hd], so the
 * head-h row of token t starts at ((b T + t) nh + h) hd.  One block handles
 * one (batch, head) and a run of query rows (keys, in the dk/dv kernel); each
 * row is owned by a group of G consecutive lanes, each lane holding the same
 * few 4-element chunks of q, of the output accumulator, ... in registers
 * (lane g of a group owns chunks g, g+G, g+2G, ...: consecutive lanes read
 * consecutive 16-byte words of shared memory, without bank conflicts).  A dot
 * product is a per-lane partial sum plus a butterfly over the G lanes, which
 * leaves the identical total in every lane of the group.
 *
 * Forward: keys and values stream through shared memory in tiles of
 * KC_ATTN_KEYS; each row keeps its running max m, running sum l and the
 * unnormalised output (online softmax), rescaled once per tile.  The saved
 * lse = m + log(l) (natural log of the scaled, biased, masked scores); a row
 * whose keys are all masked gives zeros and lse = -inf.
 *
 * Backward (recomputing P = exp(s - lse), no atomics, deterministic):
 *   D_i = dO_i . O_i,  dP_ij = dO_i . v_j,  dS_ij = P_ij (dP_ij - D_i)
 *   dq_i = scale sum_j dS_ij k_j      (kernel over queries, also writes D)
 *   dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dO_i   (kernel over keys)
 * All arithmetic is fp32.  Head dims: 16 (tiny test config), 32, 64, 72 (SigLIP), 128.
 *
 * For 16-bit activations with head dims 32, 64 (RDT-170M, RDT-1B) and 72
 * (SigLIP, computed as 80) and no bias, the same three kernels also exist with
 * their products on the tensor cores (section "tensor cores" below); RDT_CUDA_ATTN_TC=0 turns them off.
 */
#include <type_traits>
#include "kernels/cuda/kcuda.cuh"

#define KC_ATTN_THREADS 128
#define KC_ATTN_KEYS 32   /* keys per shared-memory tile (forward, dq) */
#define KC_ATTN_QUERIES 32 /* queries per shared-memory tile (dk/dv) */

/* How the rows of head dim HD are spread over lanes. */
template <int HD>
struct kc_attn_shape {
  static_assert(HD % 4 == 0, "head dim must be a multiple of 4");
  static constexpr int NC = HD / 4;                              /* 4-element chunks per row */
  static constexpr int G = HD <= 32 ? 2 : HD <= 96 ? 4 : 8;      /* lanes per row */
  static constexpr int CPT = (NC + G - 1) / G;                   /* chunks per lane */
  static constexpr int ROWS = KC_ATTN_THREADS / G;               /* rows per block */
};

/* r = scale * (this lane's chunks of row), zeros where !valid or past the row. */
template <typename T, int HD>
__device__ __forceinline__ void kc_slice_load(float (&r)[kc_attn_shape<HD>::CPT][4], const T *row, int g, bool valid,
                                              float scale) {
  typedef kc_attn_shape<HD> S;
#pragma unroll
  for (int i = 0; i < S::CPT; i++) {
    int c = g + S::G * i;
#pragma unroll
    for (int e = 0; e < 4; e++) r[i][e] = valid && c < S::NC ? kc_f(row[4 * c + e]) * scale : 0.f;
  }
}

/* Write scale * r to this lane's chunks of row. */
template <typename T, int HD>
__device__ __forceinline__ void kc_slice_store(T *row, const float (&r)[kc_attn_shape<HD>::CPT][4], int g,
                                               float scale) {
  typedef kc_attn_shape<HD> S;
#pragma unroll
  for (int i = 0; i < S::CPT; i++) {
    int c = g + S::G * i;
    if (c < S::NC)
#pragma unroll
      for (int e = 0; e < 4; e++) row[4 * c + e] = kc_to<T>(r[i][e] * scale);
  }
}

/* This lane's part of r . srow (srow: one row in shared memory). */
template <int HD>
__device__ __forceinline__ float kc_slice_dot(const float (&r)[kc_attn_shape<HD>::CPT][4], const float4 *srow, int g) {
  typedef kc_attn_shape<HD> S;
  float d = 0.f;
#pragma unroll
  for (int i = 0; i < S::CPT; i++) {
    int c = g + S::G * i;
    if (c < S::NC) {
      float4 v = srow[c];
      d += r[i][0] * v.x + r[i][1] * v.y + r[i][2] * v.z + r[i][3] * v.w;
    }
  }
  return d;
}

/* r += a * srow on this lane's chunks. */
template <int HD>
__device__ __forceinline__ void kc_slice_axpy(float (&r)[kc_attn_shape<HD>::CPT][4], float a, const float4 *srow, int g) {
  typedef kc_attn_shape<HD> S;
#pragma unroll
  for (int i = 0; i < S::CPT; i++) {
    int c = g + S::G * i;
    if (c < S::NC) {
      float4 v = srow[c];
      r[i][0] += a * v.x, r[i][1] += a * v.y, r[i][2] += a * v.z, r[i][3] += a * v.w;
    }
  }
}

template <int HD>
__device__ __forceinline__ void kc_slice_scale(float (&r)[kc_attn_shape<HD>::CPT][4], float a) {
#pragma unroll
  for (int i = 0; i < kc_attn_shape<HD>::CPT; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) r[i][e] *= a;
}

/* Sum over the G lanes of a row group (G a power of two, groups aligned in the warp). */
template <int G>
__device__ __forceinline__ float kc_group_sum(float v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* Rows row0 .. row0+tile-1 of a [rows, stride] view (head offset applied by
 * the caller) into shared memory as float4 chunks; zeros past `rows`. */
template <typename T, int HD>
__device__ __forceinline__ void kc_tile_load(float4 (*dst)[kc_attn_shape<HD>::NC], const T *base, size_t stride,
                                             int row0, int rows, int tile) {
  typedef kc_attn_shape<HD> S;
  for (int idx = threadIdx.x; idx < tile * S::NC; idx += blockDim.x) {
    int rr = idx / S::NC, c = idx % S::NC, row = row0 + rr;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row < rows) {
      const T *p = base + (size_t)row * stride + 4 * c;
      v = make_float4(kc_f(p[0]), kc_f(p[1]), kc_f(p[2]), kc_f(p[3]));
    }
    dst[rr][c] = v;
  }
}

/* 1 if key j of batch b exists and is attended. */
__device__ __forceinline__ int kc_key_live(const uint8_t *mask, int b, int j, int Tk) {
  return j < Tk && (!mask || mask[(size_t)b * Tk + j]);
}

/* ---------------------------------------------------------------- forward */
template <typename T, int HD>
__global__ void __launch_bounds__(KC_ATTN_THREADS)
kc_attn_fwd_kernel(T *out, float *lse, const T *q, const T *k, const T *v, const uint8_t *mask, const float *bias,
                   int Tq, int Tk, int nh, float scale) {
  typedef kc_attn_shape<HD> S;
  __shared__ float4 Ks[KC_ATTN_KEYS][S::NC], Vs[KC_ATTN_KEYS][S::NC];
  __shared__ int live[KC_ATTN_KEYS];
  const int h = blockIdx.y, b = blockIdx.z, g = threadIdx.x % S::G;
  const int tq = blockIdx.x * S::ROWS + threadIdx.x / S::G;
  const bool active = tq < Tq;
  const size_t stride = (size_t)nh * HD;
  const size_t qoff = ((size_t)b * Tq + (active ? tq : 0)) * stride + (size_t)h * HD;
  const T *kb = k + (size_t)b * Tk * stride + (size_t)h * HD, *vb = v + (size_t)b * Tk * stride + (size_t)h * HD;

  float qr[S::CPT][4], acc[S::CPT][4] = {};
  kc_slice_load<T, HD>(qr, q + qoff, g, active, scale);
  float m = -INFINITY, l = 0.f;

  for (int j0 = 0; j0 < Tk; j0 += KC_ATTN_KEYS) {
    __syncthreads(); /* the previous tile is consumed */
    kc_tile_load<T, HD>(Ks, kb, stride, j0, Tk, KC_ATTN_KEYS);
    kc_tile_load<T, HD>(Vs, vb, stride, j0, Tk, KC_ATTN_KEYS);
    for (int jj = threadIdx.x; jj < KC_ATTN_KEYS; jj += blockDim.x) live[jj] = kc_key_live(mask, b, j0 + jj, Tk);
    __syncthreads();

    float s[KC_ATTN_KEYS], tile_max = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < KC_ATTN_KEYS; jj++) {
      float d = kc_group_sum<S::G>(kc_slice_dot<HD>(qr, Ks[jj], g));
      if (bias && active && j0 + jj < Tk) d += bias[((size_t)h * Tq + tq) * Tk + j0 + jj];
      s[jj] = live[jj] ? d : -INFINITY;
      tile_max = fmaxf(tile_max, s[jj]);
    }
    if (tile_max == -INFINITY) continue; /* every key of the tile masked */
    float m_new = fmaxf(m, tile_max);
    float corr = expf(m - m_new); /* 0 on the first live tile (m = -inf) */
    l *= corr;
    kc_slice_scale<HD>(acc, corr);
#pragma unroll
    for (int jj = 0; jj < KC_ATTN_KEYS; jj++) {
      float p = expf(s[jj] - m_new); /* 0 for masked keys */
      l += p;
      kc_slice_axpy<HD>(acc, p, Vs[jj], g);
    }
    m = m_new;
  }
  if (!active) return;
  kc_slice_store<T, HD>(out + qoff, acc, g, l > 0.f ? 1.f / l : 0.f);
  if (lse && g == 0) lse[((size_t)b * nh + h) * Tq + tq] = l > 0.f ? m + logf(l) : -INFINITY;
}

/* ---------------------------------------------------------------- backward */
/* Per query row: D = dO . O (saved to Dbuf [B, nh, Tq]) and dq. */
template <typename T, int HD>
__global__ void __launch_bounds__(KC_ATTN_THREADS)
kc_attn_dq_kernel(T *dq, float *Dbuf, const T *dout, const T *q, const T *k, const T *v, const T *out,
                  const float *lse, const uint8_t *mask, int Tq, int Tk, int nh, float scale) {
  typedef kc_attn_shape<HD> S;
  __shared__ float4 Ks[KC_ATTN_KEYS][S::NC], Vs[KC_ATTN_KEYS][S::NC];
  __shared__ int live[KC_ATTN_KEYS];
  const int h = blockIdx.y, b = blockIdx.z, g = threadIdx.x % S::G;
  const int tq = blockIdx.x * S::ROWS + threadIdx.x / S::G;
  const bool active = tq < Tq;
  const size_t stride = (size_t)nh * HD;
  const size_t qoff = ((size_t)b * Tq + (active ? tq : 0)) * stride + (size_t)h * HD;
  const size_t row = ((size_t)b * nh + h) * Tq + (active ? tq : 0);
  const T *kb = k + (size_t)b * Tk * stride + (size_t)h * HD, *vb = v + (size_t)b * Tk * stride + (size_t)h * HD;

  float qr[S::CPT][4], dor[S::CPT][4], orow[S::CPT][4], dqa[S::CPT][4] = {};
  kc_slice_load<T, HD>(qr, q + qoff, g, active, scale);
  kc_slice_load<T, HD>(dor, dout + qoff, g, active, 1.f);
  kc_slice_load<T, HD>(orow, out + qoff, g, active, 1.f);
  float D = 0.f;
#pragma unroll
  for (int i = 0; i < S::CPT; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) D += dor[i][e] * orow[i][e];
  D = kc_group_sum<S::G>(D);
  if (active && g == 0) Dbuf[row] = D;
  float L = active ? lse[row] : INFINITY;
  if (L == -INFINITY) L = INFINITY; /* a fully masked row: P = 0 everywhere */

  for (int j0 = 0; j0 < Tk; j0 += KC_ATTN_KEYS) {
    __syncthreads();
    kc_tile_load<T, HD>(Ks, kb, stride, j0, Tk, KC_ATTN_KEYS);
    kc_tile_load<T, HD>(Vs, vb, stride, j0, Tk, KC_ATTN_KEYS);
    for (int jj = threadIdx.x; jj < KC_ATTN_KEYS; jj += blockDim.x) live[jj] = kc_key_live(mask, b, j0 + jj, Tk);
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < KC_ATTN_KEYS; jj++) {
      float s = kc_group_sum<S::G>(kc_slice_dot<HD>(qr, Ks[jj], g));
      float dp = kc_group_sum<S::G>(kc_slice_dot<HD>(dor, Vs[jj], g));
      float p = live[jj] ? expf(s - L) : 0.f;
      kc_slice_axpy<HD>(dqa, p * (dp - D), Ks[jj], g);
    }
  }
  if (active) kc_slice_store<T, HD>(dq + qoff, dqa, g, scale);
}

/* Per key row: dk and dv, streaming queries (with their lse and D) through shared memory. */
template <typename T, int HD>
__global__ void __launch_bounds__(KC_ATTN_THREADS)
kc_attn_dkdv_kernel(T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                    const float *Dbuf, const uint8_t *mask, int Tq, int Tk, int nh, float scale) {
  typedef kc_attn_shape<HD> S;
  __shared__ float4 Qs[KC_ATTN_QUERIES][S::NC], dOs[KC_ATTN_QUERIES][S::NC];
  __shared__ float Ls[KC_ATTN_QUERIES], Ds[KC_ATTN_QUERIES];
  const int h = blockIdx.y, b = blockIdx.z, g = threadIdx.x % S::G;
  const int j = blockIdx.x * S::ROWS + threadIdx.x / S::G;
  const bool active = j < Tk;
  const bool live = kc_key_live(mask, b, j, Tk);
  const size_t stride = (size_t)nh * HD;
  const size_t koff = ((size_t)b * Tk + (active ? j : 0)) * stride + (size_t)h * HD;
  const T *qb = q + (size_t)b * Tq * stride + (size_t)h * HD, *dob = dout + (size_t)b * Tq * stride + (size_t)h * HD;
  const size_t row0 = ((size_t)b * nh + h) * Tq;

  float kr[S::CPT][4], vr[S::CPT][4], dka[S::CPT][4] = {}, dva[S::CPT][4] = {};
  kc_slice_load<T, HD>(kr, k + koff, g, active, scale);
  kc_slice_load<T, HD>(vr, v + koff, g, active, 1.f);

  for (int i0 = 0; i0 < Tq; i0 += KC_ATTN_QUERIES) {
    __syncthreads();
    kc_tile_load<T, HD>(Qs, qb, stride, i0, Tq, KC_ATTN_QUERIES);
    kc_tile_load<T, HD>(dOs, dob, stride, i0, Tq, KC_ATTN_QUERIES);
    for (int ii = threadIdx.x; ii < KC_ATTN_QUERIES; ii += blockDim.x) {
      int i = i0 + ii;
      float L = i < Tq ? lse[row0 + i] : INFINITY;
      Ls[ii] = L == -INFINITY ? INFINITY : L; /* missing or fully masked rows: P = 0 */
      Ds[ii] = i < Tq ? Dbuf[row0 + i] : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int ii = 0; ii < KC_ATTN_QUERIES; ii++) {
      float s = kc_group_sum<S::G>(kc_slice_dot<HD>(kr, Qs[ii], g));
      float dp = kc_group_sum<S::G>(kc_slice_dot<HD>(vr, dOs[ii], g));
      float p = live ? expf(s - Ls[ii]) : 0.f;
      kc_slice_axpy<HD>(dva, p, dOs[ii], g);
      kc_slice_axpy<HD>(dka, p * (dp - Ds[ii]), Qs[ii], g);
    }
  }
  if (!active) return;
  kc_slice_store<T, HD>(dk + koff, dka, g, scale);
  kc_slice_store<T, HD>(dv + koff, dva, g, 1.f);
}

/* ---------------------------------------------------------------- tensor cores */
/* For bf16/fp16 activations and head dims 32, 64 and 72 the same three kernels
 * run their products on the tensor cores (WMMA 16x16x16 tiles, fp32
 * accumulation).  A warp owns 16 rows (queries; keys in dk/dv), held as A
 * fragments in registers; the other operand streams through shared memory in
 * tiles of KC_TC_TILE rows.  Per tile a warp computes its 16 x KC_TC_TILE
 * block of S = Q K^T (and dP = dO V^T) into shared memory, two lanes per row
 * turn it into P (and dS) there, rounded to the activation type as flash
 * attention does, and multiplies those by the tile:
 *   forward  O += P V        (O in shared memory, rescaled per row by the online softmax)
 *   dq       dq += dS K
 *   dk/dv    dv += P^T dO,  dk += dS^T Q   (with S^T = K Q^T, dP^T = V dO^T)
 * Every fragment load and store starts 32-byte aligned with a leading
 * dimension that is a multiple of 8 (16-bit) or 4 (fp32) elements.  A head
 * dim that is not a multiple of 16 (SigLIP's 72) is computed as HP = the next
 * multiple (80): rows are staged with zeros in columns HD..HP-1, which add
 * nothing to Q K^T and leave those output columns zero (never stored). */
#define KC_TC_WARPS 2 /* warps per block (dk/dv always; forward and dq by default) */
#define KC_TC_WIDE 5  /* warps per block of the forward and dq with RDT_CUDA_ATTN_WARPS=5 (80 query rows) */
#define KC_TC_TILE 32 /* rows per shared-memory tile */

template <int HD>
struct kc_tc_shape {
  static constexpr int HP = (HD + 15) / 16 * 16; /* head dim padded to whole fragments */
  static constexpr int NF = HP / 16;             /* fragments across a row */
  static constexpr int LDK = HP + 8;          /* 16-bit rows of HP: tiles and staging */
  static constexpr int LDS = KC_TC_TILE + 4;  /* fp32 rows across a tile: S, dP */
  static constexpr int LDP = KC_TC_TILE + 8;  /* 16-bit rows across a tile: P, dS */
  static constexpr int LDO = HP + 4;          /* fp32 rows of HP: accumulators */
};


/* Copy `n` rows of HD elements, row rr from base + (row0 + rr) stride, into dst
 * (row rr at dst + rr ld), zeros for rows at or past `rows`; the threads
 * `t0, t0 + step, ...` share the work.  16 bytes at a time when the source
 * rows are 16-byte aligned (the destination rows always are). */
template <typename T, int HD>
__device__ __forceinline__ void kc_tc_copy_rows(T *dst, int ld, const T *base, size_t stride, int row0, int rows, int n,
                                                int t0, int step) {
  constexpr int V = 16 / sizeof(T), HP = kc_tc_shape<HD>::HP; /* elements per 16 bytes; padded width */
  static_assert(HD % V == 0, "rows must split into 16-byte pieces");
  if ((uintptr_t)base % 16 == 0 && stride * sizeof(T) % 16 == 0) {
    for (int i = t0; i < n * (HP / V); i += step) {
      int rr = i / (HP / V), c = i % (HP / V) * V, row = row0 + rr;
      uint4 val = make_uint4(0u, 0u, 0u, 0u); /* +0.0 in bf16 and fp16 */
      if (row < rows && c < HD) val = *reinterpret_cast<const uint4 *>(base + (size_t)row * stride + c);
      *reinterpret_cast<uint4 *>(dst + (size_t)rr * ld + c) = val;
    }
  } else {
    for (int i = t0; i < n * HP; i += step) {
      int rr = i / HP, d = i % HP, row = row0 + rr;
      dst[(size_t)rr * ld + d] = row < rows && d < HD ? base[(size_t)row * stride + d] : kc_to<T>(0.f);
    }
  }
}

/* Block: rows row0 .. row0+KC_TC_TILE-1 of a [rows, stride] view into dst; zeros past `rows`. */
template <typename T, int HD>
__device__ __forceinline__ void kc_tc_tile_load(T (*dst)[kc_tc_shape<HD>::LDK], const T *base, size_t stride, int row0,
                                                int rows) {
  kc_tc_copy_rows<T, HD>(&dst[0][0], kc_tc_shape<HD>::LDK, base, stride, row0, rows, KC_TC_TILE, threadIdx.x,
                         blockDim.x);
}

/* Warp: rows row0 .. row0+15 of a [rows, stride] view as A fragments, staged
 * through `stage` (16 x LDK); zeros past `rows`. */
template <typename T, int HD>
__device__ __forceinline__ void kc_tc_row_frags(kc_frag_a<T> (&f)[kc_tc_shape<HD>::NF], T *stage, const T *base, size_t stride,
                                                int row0, int rows, int lane) {
  typedef kc_tc_shape<HD> S;
  kc_tc_copy_rows<T, HD>(stage, S::LDK, base, stride, row0, rows, 16, lane, 32);
  __syncwarp();
#pragma unroll
  for (int d = 0; d < kc_tc_shape<HD>::NF; d++) kc_wmma::load_matrix_sync(f[d], stage + d * 16, S::LDK);
  __syncwarp();
}

/* Warp: out (16 x KC_TC_TILE fp32, ld LDS) = A . tile^T, A 16 x HD in fragments. */
template <typename T, int HD>
__device__ __forceinline__ void kc_tc_abt(float *out, const kc_frag_a<T> (&a)[kc_tc_shape<HD>::NF],
                                          const T (*tile)[kc_tc_shape<HD>::LDK]) {
  typedef kc_tc_shape<HD> S;
#pragma unroll
  for (int nb = 0; nb < KC_TC_TILE / 16; nb++) {
    kc_frag_acc c;
    kc_wmma::fill_fragment(c, 0.f);
#pragma unroll
    for (int d = 0; d < kc_tc_shape<HD>::NF; d++) {
      kc_frag_bt<T> bt;
      kc_wmma::load_matrix_sync(bt, &tile[nb * 16][d * 16], S::LDK);
      kc_wmma::mma_sync(c, a[d], bt, c);
    }
    kc_wmma::store_matrix_sync(out + nb * 16, c, S::LDS, kc_wmma::mem_row_major);
  }
}

/* Warp: acc (16 x HD) += A . tile, A 16 x KC_TC_TILE 16-bit in shared memory (ld LDP). */
template <typename T, int HD>
__device__ __forceinline__ void kc_tc_accum(kc_frag_acc (&acc)[kc_tc_shape<HD>::NF], const T *A,
                                            const T (*tile)[kc_tc_shape<HD>::LDK]) {
  typedef kc_tc_shape<HD> S;
#pragma unroll
  for (int ks = 0; ks < KC_TC_TILE / 16; ks++) {
    kc_frag_a<T> af;
    kc_wmma::load_matrix_sync(af, A + ks * 16, S::LDP);
#pragma unroll
    for (int db = 0; db < kc_tc_shape<HD>::NF; db++) {
      kc_frag_b<T> bf;
      kc_wmma::load_matrix_sync(bf, &tile[ks * 16][db * 16], S::LDK);
      kc_wmma::mma_sync(acc[db], af, bf, acc[db]);
    }
  }
}

/* Warp: rows row0 .. row0+15 (those below `rows`) of a [rows, stride] view =
 * scale * acc, through `stage` (16 x LDO fp32). */
template <typename T, int HD, typename U = T> /* U: the output's element type */
__device__ __forceinline__ void kc_tc_store_rows(U *base, size_t stride, int row0, int rows,
                                                 const kc_frag_acc (&acc)[kc_tc_shape<HD>::NF], float *stage, float scale,
                                                 int lane) {
  typedef kc_tc_shape<HD> S;
#pragma unroll
  for (int db = 0; db < kc_tc_shape<HD>::NF; db++) kc_wmma::store_matrix_sync(stage + db * 16, acc[db], S::LDO, kc_wmma::mem_row_major);
  __syncwarp();
  for (int i = lane; i < 16 * HD; i += 32) {
    int rr = i / HD, d = i % HD, row = row0 + rr;
    if (row < rows) base[(size_t)row * stride + d] = kc_to<U>(stage[rr * S::LDO + d] * scale);
  }
  __syncwarp();
}

/* Register double buffering of the K and V tiles (RDT_CUDA_ATTN_PREFETCH=1):
 * each of the block's NT threads holds its 16-byte pieces of the next tile in
 * registers (issued right after the current tile is stored to shared memory,
 * so the loads are in flight while the block computes on it) and stores them
 * at the top of the next iteration.  The same pieces, zeros and bounds as
 * kc_tc_tile_load's 16-byte path; only for 16-byte aligned rows (else the
 * kernels load synchronously, kc_tc_aligned). */
template <typename T, int HD, int NT>
struct kc_tc_prefetch {
  static constexpr int V = 16 / sizeof(T), PR = kc_tc_shape<HD>::HP / V; /* pieces per row */
  static constexpr int N = KC_TC_TILE * PR, PPT = (N + NT - 1) / NT;      /* per tile; per thread */
  uint4 kr[PPT], vr[PPT];
  __device__ __forceinline__ void fetch(const T *kb, const T *vb, size_t stride, int j0, int rows) {
#pragma unroll
    for (int p = 0; p < PPT; p++) {
      int i = threadIdx.x + p * NT, rr = i / PR, c = i % PR * V, row = j0 + rr;
      kr[p] = vr[p] = make_uint4(0u, 0u, 0u, 0u);
      if (i < N && row < rows && c < HD) {
        kr[p] = *reinterpret_cast<const uint4 *>(kb + (size_t)row * stride + c);
        vr[p] = *reinterpret_cast<const uint4 *>(vb + (size_t)row * stride + c);
      }
    }
  }
  __device__ __forceinline__ void put(T (*Ks)[kc_tc_shape<HD>::LDK], T (*Vs)[kc_tc_shape<HD>::LDK]) const {
#pragma unroll
    for (int p = 0; p < PPT; p++) {
      int i = threadIdx.x + p * NT, rr = i / PR, c = i % PR * V;
      if (i < N) {
        *reinterpret_cast<uint4 *>(&Ks[rr][c]) = kr[p];
        *reinterpret_cast<uint4 *>(&Vs[rr][c]) = vr[p];
      }
    }
  }
};

/* 1 if kc_tc_prefetch may read the rows of kb and vb (16-byte pieces). */
template <typename T>
__device__ __forceinline__ bool kc_tc_aligned(const T *kb, const T *vb, size_t stride) {
  return (uintptr_t)kb % 16 == 0 && (uintptr_t)vb % 16 == 0 && stride * sizeof(T) % 16 == 0;
}

/* Block: keys j0 .. j0+KC_TC_TILE-1 (those below kend) of K and V into Ks
 * and Vs -- from the registers prefetched during the previous tile, issuing
 * the next tile's loads, when pf, else loaded now -- and live[jj] = whether
 * key j0 + jj exists and is not masked.  Between two __syncthreads. */
template <typename T, int HD, typename P>
__device__ __forceinline__ void kc_tc_kv_tile(P &pre, bool pf, T (*Ks)[kc_tc_shape<HD>::LDK],
                                              T (*Vs)[kc_tc_shape<HD>::LDK], int *live, const T *kb, const T *vb,
                                              size_t stride, int j0, int kend, const uint8_t *mask, int b, int Tk) {
  if (pf) {
    pre.put(Ks, Vs);
    if (j0 + KC_TC_TILE < kend) pre.fetch(kb, vb, stride, j0 + KC_TC_TILE, kend);
  } else {
    kc_tc_tile_load<T, HD>(Ks, kb, stride, j0, kend);
    kc_tc_tile_load<T, HD>(Vs, vb, stride, j0, kend);
  }
  for (int jj = threadIdx.x; jj < KC_TC_TILE; jj += blockDim.x)
    live[jj] = j0 + jj < kend && kc_key_live(mask, b, j0 + jj, Tk);
}

/* Forward: W warps of 16 query rows per block (KC_TC_WARPS, or KC_TC_WIDE
 * with RDT_CUDA_ATTN_WARPS=5: RDT's 67 queries in one block, so a head's
 * K/V tiles are read once per key range instead of once per 32 rows); the
 * K/V tiles prefetched into registers when PF. */
template <typename T, int HD, int W, bool PF>
__global__ void __launch_bounds__(W * 32)
kc_attn_fwd_tc_kernel(T *out, float *lse, const T *q, const T *k, const T *v, const uint8_t *mask, int Tq, int Tk,
                      int nh, float scale, int nqb, int chunk, float *part) {
  typedef kc_tc_shape<HD> S;
  constexpr int HALF = KC_TC_TILE / 2;
  __shared__ __align__(32) T Ks[KC_TC_TILE][S::LDK];
  __shared__ __align__(32) T Vs[KC_TC_TILE][S::LDK];
  __shared__ __align__(32) float Ss[W][16][S::LDS];
  __shared__ __align__(32) T Ps[W][16][S::LDP];
  __shared__ __align__(32) float Os[W][16][S::LDO];
  __shared__ int live[KC_TC_TILE];
  const int h = blockIdx.y, b = blockIdx.z, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q0 = (blockIdx.x % nqb * W + warp) * 16, r = lane / 2, half = lane % 2;
  const int split = blockIdx.x / nqb, kbeg = split * chunk, kend = min(Tk, kbeg + chunk); /* this block's keys */
  const size_t stride = (size_t)nh * HD, hoff = (size_t)h * HD;
  const T *kb = k + (size_t)b * Tk * stride + hoff, *vb = v + (size_t)b * Tk * stride + hoff;
  float *o = &Os[warp][0][0];
  kc_tc_prefetch<T, HD, W * 32> pre;
  const bool pf = PF && kc_tc_aligned(kb, vb, stride);
  if (pf && kbeg < kend) pre.fetch(kb, vb, stride, kbeg, kend);

  kc_frag_a<T> qf[kc_tc_shape<HD>::NF];
  kc_tc_row_frags<T, HD>(qf, reinterpret_cast<T *>(o), q + (size_t)b * Tq * stride + hoff, stride, q0, Tq, lane);
  for (int i = lane; i < 16 * S::LDO; i += 32) o[i] = 0.f;
  __syncwarp();
  float m = -INFINITY, l = 0.f; /* row r's running max and sum (both of its lanes hold them) */

  for (int j0 = kbeg; j0 < kend; j0 += KC_TC_TILE) {
    __syncthreads(); /* the previous tile is consumed */
    kc_tc_kv_tile<T, HD>(pre, pf, Ks, Vs, live, kb, vb, stride, j0, kend, mask, b, Tk);
    __syncthreads();
    kc_tc_abt<T, HD>(&Ss[warp][0][0], qf, Ks);
    __syncwarp();

    /* online softmax of row r: this lane's half of the tile, then the pair's */
    float sv[HALF], tile_max = -INFINITY;
#pragma unroll
    for (int c = 0; c < HALF; c++) {
      int jj = half * HALF + c;
      sv[c] = live[jj] ? Ss[warp][r][jj] * scale : -INFINITY;
      tile_max = fmaxf(tile_max, sv[c]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    float m_new = fmaxf(m, tile_max);
    float corr = m_new == -INFINITY ? 1.f : expf(m - m_new);
    float psum = 0.f;
#pragma unroll
    for (int c = 0; c < HALF; c++) {
      float p = m_new == -INFINITY ? 0.f : expf(sv[c] - m_new);
      psum += p;
      Ps[warp][r][half * HALF + c] = kc_to<T>(p);
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    l = l * corr + psum;
    m = m_new;
    for (int c = half * (HD / 2); c < (half + 1) * (HD / 2); c++) Os[warp][r][c] *= corr;
    __syncwarp();

    kc_frag_acc of[kc_tc_shape<HD>::NF]; /* O += P V */
#pragma unroll
    for (int db = 0; db < kc_tc_shape<HD>::NF; db++) kc_wmma::load_matrix_sync(of[db], o + db * 16, S::LDO, kc_wmma::mem_row_major);
    kc_tc_accum<T, HD>(of, &Ps[warp][0][0], Vs);
#pragma unroll
    for (int db = 0; db < kc_tc_shape<HD>::NF; db++) kc_wmma::store_matrix_sync(o + db * 16, of[db], S::LDO, kc_wmma::mem_row_major);
    __syncwarp();
  }
  const int tq = q0 + r;
  if (tq >= Tq) return;
  if (part) { /* one of several key ranges: unnormalised O, m and l for kc_attn_combine_op */
    float *pr = part + ((((size_t)split * gridDim.z + b) * nh + h) * Tq + tq) * (HD + 2);
    for (int c = half * (HD / 2); c < (half + 1) * (HD / 2); c++) pr[c] = Os[warp][r][c];
    if (half == 0) pr[HD] = m, pr[HD + 1] = l;
    return;
  }
  float inv = l > 0.f ? 1.f / l : 0.f;
  T *orow = out + ((size_t)b * Tq + tq) * stride + hoff;
  for (int c = half * (HD / 2); c < (half + 1) * (HD / 2); c++) orow[c] = kc_to<T>(Os[warp][r][c] * inv);
  if (lse && half == 0) lse[((size_t)b * nh + h) * Tq + tq] = l > 0.f ? m + logf(l) : -INFINITY;
}

/* Merge the key ranges of a split forward pass: with M = max_s m_s,
 * L = sum_s l_s e^(m_s - M), out = sum_s O_s e^(m_s - M) / L, lse = M + log L.
 * part holds, per range s and row (b, h, tq), HD floats of O then m and l. */
template <typename T, int HD>
struct kc_attn_combine_op {
  T *out;
  float *lse;
  const float *part;
  int B, Tq, nh, nsplit;
  __device__ void operator()(size_t i) const {
    size_t row = i / HD, nrow = (size_t)B * nh * Tq; /* row = (b nh + h) Tq + tq */
    int d = (int)(i % HD);
    float M = -INFINITY, L = 0.f, o = 0.f;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, part[(s * nrow + row) * (HD + 2) + HD]);
    for (int s = 0; s < nsplit && M != -INFINITY; s++) {
      const float *p = part + (s * nrow + row) * (HD + 2);
      float w = p[HD] == -INFINITY ? 0.f : expf(p[HD] - M);
      L += p[HD + 1] * w;
      o += p[d] * w;
    }
    int tq = (int)(row % Tq), h = (int)(row / Tq % nh), b = (int)(row / Tq / nh);
    out[(((size_t)b * Tq + tq) * nh + h) * HD + d] = kc_to<T>(L > 0.f ? o / L : 0.f);
    if (lse && d == 0) lse[row] = L > 0.f ? M + logf(L) : -INFINITY;
  }
};

/* Per 16 query rows: D = dO . O (to Dbuf) and dq = scale sum_j dS_ij k_j.
 * W warps per block, K/V tiles prefetched into registers when PF (as the
 * forward).  With part (RDT_CUDA_ATTN_DQ_SPLIT), block x covers query block
 * x % nqb and keys [s chunk, (s + 1) chunk) for s = x / nqb, and writes its
 * unscaled fp32 sum to part + s B Tq nh HD (dq's layout) for
 * kc_attn_dq_reduce_op; only the blocks of range 0 write D. */
template <typename T, int HD, int W, bool PF>
__global__ void __launch_bounds__(W * 32)
kc_attn_dq_tc_kernel(T *dq, float *Dbuf, const T *dout, const T *q, const T *k, const T *v, const T *out,
                     const float *lse, const uint8_t *mask, int Tq, int Tk, int nh, float scale, int nqb, int chunk,
                     float *part) {
  typedef kc_tc_shape<HD> S;
  constexpr int HALF = KC_TC_TILE / 2;
  /* A warp's scratch: S and dP during the key loop, the staging of its rows
   * (16 x LDK 16-bit, 16 x LDO fp32) before and after it. */
  constexpr int SCR = 2 * 16 * S::LDS > 16 * S::LDO ? 2 * 16 * S::LDS : 16 * S::LDO;
  static_assert(SCR % 8 == 0 && 16 * S::LDS % 8 == 0, "warp scratch and dP must stay 32-byte aligned");
  __shared__ __align__(32) T Ks[KC_TC_TILE][S::LDK];
  __shared__ __align__(32) T Vs[KC_TC_TILE][S::LDK];
  __shared__ __align__(32) float scr[W][SCR];
  __shared__ __align__(32) T dSs[W][16][S::LDP];
  __shared__ int live[KC_TC_TILE];
  const int h = blockIdx.y, b = blockIdx.z, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q0 = (blockIdx.x % nqb * W + warp) * 16, r = lane / 2, half = lane % 2, tq = q0 + r;
  const int split = blockIdx.x / nqb, kbeg = split * chunk, kend = min(Tk, kbeg + chunk); /* this block's keys */
  const size_t stride = (size_t)nh * HD, hoff = (size_t)h * HD, qbase = (size_t)b * Tq * stride + hoff;
  const T *kb = k + (size_t)b * Tk * stride + hoff, *vb = v + (size_t)b * Tk * stride + hoff;
  float *Ss = &scr[warp][0], *dPs = Ss + 16 * S::LDS, *Os = Ss;
  T *stage = reinterpret_cast<T *>(Os);
  kc_tc_prefetch<T, HD, W * 32> pre;
  const bool pf = PF && kc_tc_aligned(kb, vb, stride);
  if (pf && kbeg < kend) pre.fetch(kb, vb, stride, kbeg, kend);

  kc_frag_a<T> qf[kc_tc_shape<HD>::NF], dof[kc_tc_shape<HD>::NF];
  kc_tc_row_frags<T, HD>(qf, stage, q + qbase, stride, q0, Tq, lane);
  kc_tc_row_frags<T, HD>(dof, stage, dout + qbase, stride, q0, Tq, lane);
  /* D and lse of row r (two lanes, half a row each) */
  float D = 0.f;
  if (tq < Tq) {
    const T *dor = dout + qbase + (size_t)tq * stride, *orow = out + qbase + (size_t)tq * stride;
    for (int c = half * (HD / 2); c < (half + 1) * (HD / 2); c++) D += kc_f(dor[c]) * kc_f(orow[c]);
  }
  D += __shfl_xor_sync(0xffffffffu, D, 1);
  const size_t row = ((size_t)b * nh + h) * Tq + tq;
  if (tq < Tq && half == 0 && split == 0) Dbuf[row] = D;
  float L = tq < Tq ? lse[row] : INFINITY;
  if (L == -INFINITY) L = INFINITY; /* a fully masked row: P = 0 */

  kc_frag_acc dqa[kc_tc_shape<HD>::NF];
#pragma unroll
  for (int db = 0; db < kc_tc_shape<HD>::NF; db++) kc_wmma::fill_fragment(dqa[db], 0.f);
  for (int j0 = kbeg; j0 < kend; j0 += KC_TC_TILE) {
    __syncthreads(); /* the previous tile is consumed */
    kc_tc_kv_tile<T, HD>(pre, pf, Ks, Vs, live, kb, vb, stride, j0, kend, mask, b, Tk);
    __syncthreads();
    kc_tc_abt<T, HD>(Ss, qf, Ks);
    kc_tc_abt<T, HD>(dPs, dof, Vs);
    __syncwarp();
#pragma unroll
    for (int c = 0; c < HALF; c++) {
      int jj = half * HALF + c;
      float p = live[jj] ? expf(Ss[r * S::LDS + jj] * scale - L) : 0.f;
      dSs[warp][r][jj] = kc_to<T>(p * (dPs[r * S::LDS + jj] - D));
    }
    __syncwarp();
    kc_tc_accum<T, HD>(dqa, &dSs[warp][0][0], Ks);
  }
  if (part)
    kc_tc_store_rows<T, HD, float>(part + (size_t)split * gridDim.z * Tq * stride + qbase, stride, q0, Tq, dqa, Os,
                                   1.f, lane);
  else
    kc_tc_store_rows<T, HD>(dq + qbase, stride, q0, Tq, dqa, Os, scale, lane);
}

/* dq = scale * the sum of the key ranges' partial sums, in range order. */
template <typename T>
struct kc_attn_dq_reduce_op {
  T *dq;
  const float *part;
  size_t n; /* elements of dq */
  int nsplit;
  float scale;
  __device__ void operator()(size_t i) const {
    float acc = 0.f;
    for (int s = 0; s < nsplit; s++) acc += part[s * n + i];
    dq[i] = kc_to<T>(acc * scale);
  }
};

/* Per 16 key rows: dv = sum_i P_ij dO_i and dk = scale sum_i dS_ij q_i. */
template <typename T, int HD>
__global__ void __launch_bounds__(KC_TC_WARPS * 32)
kc_attn_dkdv_tc_kernel(T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                       const float *Dbuf, const uint8_t *mask, int Tq, int Tk, int nh, float scale) {
  typedef kc_tc_shape<HD> S;
  constexpr int HALF = KC_TC_TILE / 2;
  __shared__ __align__(32) T Qs[KC_TC_TILE][S::LDK];
  __shared__ __align__(32) T dOs[KC_TC_TILE][S::LDK];
  __shared__ __align__(32) float STs[KC_TC_WARPS][16][S::LDS];
  __shared__ __align__(32) float dPTs[KC_TC_WARPS][16][S::LDS];
  __shared__ __align__(32) T PTs[KC_TC_WARPS][16][S::LDP];
  __shared__ __align__(32) T dSTs[KC_TC_WARPS][16][S::LDP];
  __shared__ __align__(32) float Os[KC_TC_WARPS][16][S::LDO];
  __shared__ float Ls[KC_TC_TILE], Ds[KC_TC_TILE];
  const int h = blockIdx.y, b = blockIdx.z, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int j0 = (blockIdx.x * KC_TC_WARPS + warp) * 16, r = lane / 2, half = lane % 2;
  const bool live = kc_key_live(mask, b, j0 + r, Tk);
  const size_t stride = (size_t)nh * HD, hoff = (size_t)h * HD, kbase = (size_t)b * Tk * stride + hoff;
  const T *qb = q + (size_t)b * Tq * stride + hoff, *dob = dout + (size_t)b * Tq * stride + hoff;
  const size_t row0 = ((size_t)b * nh + h) * Tq;
  T *stage = reinterpret_cast<T *>(&Os[warp][0][0]);

  kc_frag_a<T> kf[kc_tc_shape<HD>::NF], vf[kc_tc_shape<HD>::NF];
  kc_tc_row_frags<T, HD>(kf, stage, k + kbase, stride, j0, Tk, lane);
  kc_tc_row_frags<T, HD>(vf, stage, v + kbase, stride, j0, Tk, lane);
  kc_frag_acc dka[kc_tc_shape<HD>::NF], dva[kc_tc_shape<HD>::NF];
#pragma unroll
  for (int db = 0; db < kc_tc_shape<HD>::NF; db++) kc_wmma::fill_fragment(dka[db], 0.f), kc_wmma::fill_fragment(dva[db], 0.f);

  for (int i0 = 0; i0 < Tq; i0 += KC_TC_TILE) {
    __syncthreads();
    kc_tc_tile_load<T, HD>(Qs, qb, stride, i0, Tq);
    kc_tc_tile_load<T, HD>(dOs, dob, stride, i0, Tq);
    for (int ii = threadIdx.x; ii < KC_TC_TILE; ii += blockDim.x) {
      int i = i0 + ii;
      float L = i < Tq ? lse[row0 + i] : INFINITY;
      Ls[ii] = L == -INFINITY ? INFINITY : L; /* missing or fully masked rows: P = 0 */
      Ds[ii] = i < Tq ? Dbuf[row0 + i] : 0.f;
    }
    __syncthreads();
    kc_tc_abt<T, HD>(&STs[warp][0][0], kf, Qs);  /* S^T = K Q^T */
    kc_tc_abt<T, HD>(&dPTs[warp][0][0], vf, dOs); /* dP^T = V dO^T */
    __syncwarp();
#pragma unroll
    for (int c = 0; c < HALF; c++) {
      int ii = half * HALF + c;
      float p = live ? expf(STs[warp][r][ii] * scale - Ls[ii]) : 0.f;
      PTs[warp][r][ii] = kc_to<T>(p);
      dSTs[warp][r][ii] = kc_to<T>(p * (dPTs[warp][r][ii] - Ds[ii]));
    }
    __syncwarp();
    kc_tc_accum<T, HD>(dva, &PTs[warp][0][0], dOs);
    kc_tc_accum<T, HD>(dka, &dSTs[warp][0][0], Qs);
  }
  kc_tc_store_rows<T, HD>(dk + kbase, stride, j0, Tk, dka, &Os[warp][0][0], scale, lane);
  kc_tc_store_rows<T, HD>(dv + kbase, stride, j0, Tk, dva, &Os[warp][0][0], 1.f, lane);
}

/* ---------------------------------------------------------------- launchers */
typedef struct {
  void *out, *dq, *dk, *dv;
  float *lse, *Dbuf;
  const void *q, *k, *v, *o, *dout;
  const float *lse_in, *bias;
  const uint8_t *mask;
  int B, Tq, Tk, nh;
  float scale;
} kc_attn_args;

/* The CUDA-core kernels: any activation type and head dim. */
template <typename T, int HD>
static void kc_attn_run_simple(const kc_state *s, const kc_attn_args *a, int backward) {
  typedef kc_attn_shape<HD> S;
  dim3 grid_q((a->Tq + S::ROWS - 1) / S::ROWS, a->nh, a->B), grid_k((a->Tk + S::ROWS - 1) / S::ROWS, a->nh, a->B);
  if (!backward) {
    kc_attn_fwd_kernel<T, HD><<<grid_q, KC_ATTN_THREADS, 0, s->stream>>>(
        (T *)a->out, a->lse, (const T *)a->q, (const T *)a->k, (const T *)a->v, a->mask, a->bias, a->Tq, a->Tk,
        a->nh, a->scale);
    KC_LAUNCH();
    return;
  }
  kc_attn_dq_kernel<T, HD><<<grid_q, KC_ATTN_THREADS, 0, s->stream>>>(
      (T *)a->dq, a->Dbuf, (const T *)a->dout, (const T *)a->q, (const T *)a->k, (const T *)a->v, (const T *)a->o,
      a->lse_in, a->mask, a->Tq, a->Tk, a->nh, a->scale);
  KC_LAUNCH();
  if (a->Tk == 0) return;
  kc_attn_dkdv_kernel<T, HD><<<grid_k, KC_ATTN_THREADS, 0, s->stream>>>(
      (T *)a->dk, (T *)a->dv, (const T *)a->dout, (const T *)a->q, (const T *)a->k, (const T *)a->v, a->lse_in,
      a->Dbuf, a->mask, a->Tq, a->Tk, a->nh, a->scale);
  KC_LAUNCH();
}

/* Key ranges for a kernel over nqb query blocks per (head, batch): about
 * per_sm blocks per SM in all, ranges of at least 4 tiles; *chunk = keys per
 * range.  Returns the number of ranges (1: no split, *chunk = Tk). */
static int kc_attn_key_split(const kc_state *s, const kc_attn_args *a, int nqb, int per_sm, int *chunk) {
  int base = nqb * a->nh * a->B, tiles = (a->Tk + KC_TC_TILE - 1) / KC_TC_TILE;
  int nsplit = (per_sm * s->sm_count + base - 1) / base, most = (tiles + 3) / 4;
  nsplit = nsplit < most ? nsplit : most;
  *chunk = a->Tk;
  if (nsplit <= 1) return 1;
  *chunk = (tiles + nsplit - 1) / nsplit * KC_TC_TILE;
  return (a->Tk + *chunk - 1) / *chunk;
}

/* The tensor-core kernels: 16-bit activations, head dims 32, 64 and 72, no
 * bias; W warps per block in the forward and dq kernels, PF: K/V prefetch. */
template <typename T, int HD, int W, bool PF>
static void kc_attn_launch_tc(kc_state *s, const kc_attn_args *a, int backward) {
  const int nqb = (a->Tq + W * 16 - 1) / (W * 16);
  s->attn_wide_calls += W != KC_TC_WARPS;
  s->attn_prefetch_calls += PF;
  if (!backward) {
    /* With few query blocks (inference), split the keys into ranges of at
     * least 4 tiles over more blocks (about attn_split_blocks per SM), then
     * merge the ranges. */
    int chunk, nsplit = kc_attn_key_split(s, a, nqb, s->attn_split_blocks, &chunk);
    size_t nrow = (size_t)a->B * a->nh * a->Tq;
    float *part = nsplit > 1 ? (float *)kc_temp_alloc(s, nsplit * nrow * (HD + 2) * sizeof(float)) : NULL;
    dim3 grid(nqb * nsplit, a->nh, a->B);
    kc_attn_fwd_tc_kernel<T, HD, W, PF><<<grid, W * 32, 0, s->stream>>>(
        (T *)a->out, a->lse, (const T *)a->q, (const T *)a->k, (const T *)a->v, a->mask, a->Tq, a->Tk, a->nh,
        a->scale, nqb, chunk, part);
    KC_LAUNCH();
    if (part) {
      kc_map(s, nrow * HD, kc_attn_combine_op<T, HD>{(T *)a->out, a->lse, part, a->B, a->Tq, a->nh, nsplit});
      kc_temp_free(s, part);
    }
    return;
  }
  /* dq, with RDT_CUDA_ATTN_DQ_SPLIT over key ranges (about attn_dq_split
   * blocks per SM) summed by a second pass in range order. */
  int chunk = a->Tk, nsplit = s->attn_dq_split > 0 ? kc_attn_key_split(s, a, nqb, s->attn_dq_split, &chunk) : 1;
  size_t n = (size_t)a->B * a->Tq * a->nh * HD;
  float *part = nsplit > 1 ? (float *)kc_temp_alloc(s, nsplit * n * sizeof(float)) : NULL;
  dim3 grid_q(nqb * nsplit, a->nh, a->B);
  kc_attn_dq_tc_kernel<T, HD, W, PF><<<grid_q, W * 32, 0, s->stream>>>(
      (T *)a->dq, a->Dbuf, (const T *)a->dout, (const T *)a->q, (const T *)a->k, (const T *)a->v, (const T *)a->o,
      a->lse_in, a->mask, a->Tq, a->Tk, a->nh, a->scale, nqb, chunk, part);
  KC_LAUNCH();
  if (part) {
    kc_map(s, n, kc_attn_dq_reduce_op<T>{(T *)a->dq, part, n, nsplit, a->scale});
    kc_temp_free(s, part);
    s->attn_dq_split_calls++;
  }
  if (a->Tk == 0) return;
  const int rows = KC_TC_WARPS * 16;
  dim3 grid_k((a->Tk + rows - 1) / rows, a->nh, a->B);
  kc_attn_dkdv_tc_kernel<T, HD><<<grid_k, KC_TC_WARPS * 32, 0, s->stream>>>(
      (T *)a->dk, (T *)a->dv, (const T *)a->dout, (const T *)a->q, (const T *)a->k, (const T *)a->v, a->lse_in,
      a->Dbuf, a->mask, a->Tq, a->Tk, a->nh, a->scale);
  KC_LAUNCH();
}

/* Pick W and PF from the switches.  Both apply to head dims up to 64 (RDT):
 * at 72 (SigLIP, computed as 80; 729 queries, so blocks enough) the 5-warp
 * forward would pass 48 KB of shared memory and the prefetching forward
 * spilled registers. */
template <typename T, int HD>
static void kc_attn_run_tc(kc_state *s, const kc_attn_args *a, int backward) {
  if constexpr (HD <= 64) {
    if (s->attn_warps == KC_TC_WIDE) {
      if (s->attn_prefetch) return kc_attn_launch_tc<T, HD, KC_TC_WIDE, true>(s, a, backward);
      return kc_attn_launch_tc<T, HD, KC_TC_WIDE, false>(s, a, backward);
    }
    if (s->attn_prefetch) return kc_attn_launch_tc<T, HD, KC_TC_WARPS, true>(s, a, backward);
  }
  kc_attn_launch_tc<T, HD, KC_TC_WARPS, false>(s, a, backward);
}

template <typename T, int HD>
static void kc_attn_run(kc_state *s, const kc_attn_args *a, int backward) {
  if constexpr (!std::is_same<T, float>::value && (HD == 32 || HD == 64 || HD == 72)) {
    if (s->attn_tensor_cores && !a->bias) return kc_attn_run_tc<T, HD>(s, a, backward);
  }
  kc_attn_run_simple<T, HD>(s, a, backward);
}

/* Pick the kernel instance for the activation type and head dim. */
static void kc_attn_dispatch(const k_backend *b, const kc_attn_args *a, int hd, int backward) {
  kc_state *s = kc(b);
  KC_DISPATCH(b->act, T, {
    switch (hd) {
      case 16: kc_attn_run<T, 16>(s, a, backward); break;   /* configs/tiny.yaml */
      case 32: kc_attn_run<T, 32>(s, a, backward); break;
      case 64: kc_attn_run<T, 64>(s, a, backward); break;
      case 72: kc_attn_run<T, 72>(s, a, backward); break;
      case 128: kc_attn_run<T, 128>(s, a, backward); break;
      default: kc_die(__FILE__, __LINE__, "attention", "head dim must be 16, 32, 64, 72 or 128");
    }
  });
}

void kc_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v,
                  const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale) {
  KC_REQUIRE(B >= 0 && Tq >= 0 && Tk >= 0 && nh >= 0, "attention: negative size");
  if ((size_t)B * Tq * nh == 0) return;
  kc_attn_args a = {};
  a.out = out, a.lse = lse, a.q = q, a.k = k, a.v = v, a.mask = mask, a.bias = bias;
  a.B = B, a.Tq = Tq, a.Tk = Tk, a.nh = nh, a.scale = scale;
  kc_attn_dispatch(b, &a, hd, 0);
}

void kc_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q,
                           const void *k, const void *v, const void *out, const float *lse,
                           const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale) {
  KC_REQUIRE(B >= 0 && Tq >= 0 && Tk >= 0 && nh >= 0, "attention_backward: negative size");
  KC_REQUIRE(lse != NULL, "attention_backward needs the lse saved by the forward pass");
  kc_state *s = kc(b);
  size_t elt = rdt_dtype_size(b->act);
  if ((size_t)B * nh * Tq == 0) { /* no queries: dk = dv = 0 */
    KC_CUDA(cudaMemsetAsync(dk, 0, (size_t)B * Tk * nh * hd * elt, s->stream));
    KC_CUDA(cudaMemsetAsync(dv, 0, (size_t)B * Tk * nh * hd * elt, s->stream));
    return;
  }
  kc_attn_args a = {};
  a.dq = dq, a.dk = dk, a.dv = dv, a.dout = dout, a.q = q, a.k = k, a.v = v, a.o = out, a.lse_in = lse;
  a.mask = mask, a.B = B, a.Tq = Tq, a.Tk = Tk, a.nh = nh, a.scale = scale;
  a.Dbuf = (float *)kc_temp_alloc(s, (size_t)B * nh * Tq * sizeof(float));
  kc_attn_dispatch(b, &a, hd, 1);
  kc_temp_free(s, a.Dbuf);
}
