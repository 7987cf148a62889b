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
 * All arithmetic is fp32.  Head dims: 32, 64, 72 (SigLIP), 128.
 */
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

template <typename T, int HD>
static void kc_attn_run(const kc_state *s, const kc_attn_args *a, int backward) {
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

/* Pick the kernel instance for the activation type and head dim. */
static void kc_attn_dispatch(const k_backend *b, const kc_attn_args *a, int hd, int backward) {
  const kc_state *s = kc(b);
  KC_DISPATCH(b->act, T, {
    switch (hd) {
      case 32: kc_attn_run<T, 32>(s, a, backward); break;
      case 64: kc_attn_run<T, 64>(s, a, backward); break;
      case 72: kc_attn_run<T, 72>(s, a, backward); break;
      case 128: kc_attn_run<T, 128>(s, a, backward); break;
      default: kc_die(__FILE__, __LINE__, "attention", "head dim must be 32, 64, 72 or 128");
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
