/* kernels/cuda/gemm.cu: matrix products through cuBLASLt.
 *
 * cuBLASLt is column-major; a row-major matrix R[r, c] (leading dimension c)
 * is the column-major matrix R^T (c x r, same leading dimension).  So, with
 * x [M,K], W [N,K], y [M,N], dy [M,N] all row-major:
 *   y  = x W^T   <=>  y^T  (N x M) = op_T(W^T) . x^T      m=N n=M k=K
 *   dx = dy W    <=>  dx^T (K x M) = W^T . dy^T           m=K n=M k=N
 *   dW = dy^T x  <=>  dW^T (K x N) = x^T . op_T(dy^T)     m=K n=N k=M
 * where "W^T" etc. are the buffers as they lie in memory.  Inputs are the
 * activation dtype, accumulation and scaling are fp32 (CUBLAS_COMPUTE_32F:
 * no TF32), weight gradients are written in fp32 with beta = 1.  The bias is
 * fused as cuBLASLt's BIAS epilogue (fp32 bias vector) when cuBLASLt offers an
 * algorithm for it, else the product is written in fp32 and one kernel adds
 * the bias and rounds (the output rounded once either way); k_linear_gelu can use the
 * GELU_AUX(_BIAS) epilogue (opt-in, RDT_CUDA_GELU_EPILOGUE=1), which writes
 * the pre-activation to the AUX buffer and GELU of it to D.  Algorithms found by the
 * heuristic are cached per shape, dtype and pointer alignment; with
 * RDT_CUDA_GEMM_TUNE=1 the fastest of its first 8 candidates, timed on first
 * use, is cached instead (on an H100 it gained nothing measurable for RDT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cuda/kcuda.cuh"

#define KC_WORKSPACE_BYTES ((size_t)32 << 20)
#define KC_GEMM_CACHE 512

/* One column-major product D = op(A) op(B) + beta D (+ bias[m] per row of D). */
typedef struct {
  int m, n, k;
  cublasOperation_t ta, tb;
  const void *A;
  int lda;
  const void *B;
  int ldb;
  void *D;
  int ldd;
  cudaDataType ab_type, d_type;
  float beta;
  const float *bias;
  void *aux;   /* not NULL: GELU epilogue, the pre-activation written here (ld = ldd) */
} kc_gemm;

struct kc_gemm_entry {
  int m, n, k, ta, tb, lda, ldb, ldd, ab_type, d_type, beta1, bias, gelu;
  int align_a, align_b, align_d, align_bias, align_aux;
  int found;
  cublasLtMatmulAlgo_t algo;
};

void kc_gemm_init(kc_state *s) {
  KC_CUBLAS(cublasLtCreate(&s->lt));
  s->workspace_bytes = KC_WORKSPACE_BYTES;
  KC_CUDA(cudaMalloc(&s->workspace, s->workspace_bytes));
  s->gemm_cache = (kc_gemm_entry *)rdt_calloc(KC_GEMM_CACHE, sizeof *s->gemm_cache);
  s->gemm_tune = kc_env_switch("RDT_CUDA_GEMM_TUNE", 0);
  s->gelu_epilogue = kc_env_switch("RDT_CUDA_GELU_EPILOGUE", 0);
}

void kc_gemm_close(kc_state *s) {
  KC_CUBLAS(cublasLtDestroy(s->lt));
  KC_CUDA(cudaFree(s->workspace));
  free(s->gemm_cache);
  s->lt = NULL;
  s->workspace = NULL;
  s->gemm_cache = NULL;
}

/* Largest power of two (at most 256) that divides the address. */
static int kc_align(const void *p) {
  uintptr_t a = (uintptr_t)p;
  int al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

static cudaDataType kc_cuda_type(rdt_dtype t) {
  switch (t) {
    case RDT_F32: return CUDA_R_32F;
    case RDT_BF16: return CUDA_R_16BF;
    case RDT_F16: return CUDA_R_16F;
    default: kc_die(__FILE__, __LINE__, "kc_cuda_type", "activation dtype must be F32, BF16 or F16");
  }
}

/* The cache key of a product (everything the heuristic's answer depends on). */
static kc_gemm_entry kc_gemm_key(const kc_gemm *g) {
  kc_gemm_entry e;
  memset(&e, 0, sizeof e);
  e.m = g->m, e.n = g->n, e.k = g->k, e.ta = g->ta, e.tb = g->tb;
  e.lda = g->lda, e.ldb = g->ldb, e.ldd = g->ldd;
  e.ab_type = g->ab_type, e.d_type = g->d_type, e.beta1 = g->beta != 0.f, e.bias = g->bias != NULL;
  e.align_a = kc_align(g->A), e.align_b = kc_align(g->B), e.align_d = kc_align(g->D);
  e.align_bias = g->bias ? kc_align(g->bias) : 0;
  e.gelu = g->aux != NULL, e.align_aux = g->aux ? kc_align(g->aux) : 0;
  return e;
}

static int kc_same_key(const kc_gemm_entry *a, const kc_gemm_entry *b) {
  return a->m == b->m && a->n == b->n && a->k == b->k && a->ta == b->ta && a->tb == b->tb &&
         a->lda == b->lda && a->ldb == b->ldb && a->ldd == b->ldd && a->ab_type == b->ab_type &&
         a->d_type == b->d_type && a->beta1 == b->beta1 && a->bias == b->bias && a->align_a == b->align_a &&
         a->align_b == b->align_b && a->align_d == b->align_d && a->align_bias == b->align_bias &&
         a->gelu == b->gelu && a->align_aux == b->align_aux;
}

/* With RDT_CUDA_GEMM_TUNE=1: of the heuristic's candidates (best first),
 * the one that runs g fastest, timed with events on a scratch output (so a
 * product that accumulates into D is not disturbed).  A candidate that fails
 * to launch is skipped; the heuristic's first is kept unless one beats it. */
#define KC_TUNE_CANDIDATES 8
static cublasLtMatmulAlgo_t kc_gemm_fastest(kc_state *s, const kc_gemm *g, cublasLtMatmulDesc_t op,
                                            cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                            cublasLtMatrixLayout_t ld, const cublasLtMatmulHeuristicResult_t *res,
                                            int count) {
  size_t esize = g->d_type == CUDA_R_32F ? 4 : 2, bytes = (size_t)g->ldd * g->n * esize;
  void *D = kc_temp_alloc(s, bytes);
  KC_CUDA(cudaMemsetAsync(D, 0, bytes, s->stream));
  cudaEvent_t e0, e1;
  KC_CUDA(cudaEventCreate(&e0));
  KC_CUDA(cudaEventCreate(&e1));
  float alpha = 1.f, beta = g->beta, best_ms = 0;
  int best = 0;
  for (int i = 0; i < count; i++) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    const cublasLtMatmulAlgo_t *a = &res[i].algo;
    if (cublasLtMatmul(s->lt, op, &alpha, g->A, la, g->B, lb, &beta, D, ld, D, ld, a, s->workspace,
                       s->workspace_bytes, s->stream) != CUBLAS_STATUS_SUCCESS)
      continue;   /* warm-up; a refused candidate is skipped */
    KC_CUDA(cudaEventRecord(e0, s->stream));
    for (int r = 0; r < 3; r++)
      KC_CUBLAS(cublasLtMatmul(s->lt, op, &alpha, g->A, la, g->B, lb, &beta, D, ld, D, ld, a, s->workspace,
                               s->workspace_bytes, s->stream));
    KC_CUDA(cudaEventRecord(e1, s->stream));
    KC_CUDA(cudaEventSynchronize(e1));
    float ms = 0;
    KC_CUDA(cudaEventElapsedTime(&ms, e0, e1));
    if (i == 0 || ms < best_ms) best = i, best_ms = ms;
  }
  KC_CUDA(cudaEventDestroy(e0));
  KC_CUDA(cudaEventDestroy(e1));
  kc_temp_free(s, D);
  return res[best].algo;
}

/* Ask the heuristic for the best algorithm (found = 0 if it has none). */
static void kc_gemm_choose(kc_state *s, const kc_gemm *g, kc_gemm_entry *e, cublasLtMatmulDesc_t op,
                           cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t ld) {
  cublasLtMatmulPreference_t pref;
  s->gemm_heuristic_calls++;
  KC_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = s->workspace_bytes;
  KC_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  uint32_t al[4] = {(uint32_t)e->align_a, (uint32_t)e->align_b, (uint32_t)e->align_d, (uint32_t)e->align_d};
  KC_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof al[0]));
  KC_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof al[1]));
  KC_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof al[2]));
  KC_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3], sizeof al[3]));
  cublasLtMatmulHeuristicResult_t res[KC_TUNE_CANDIDATES];
  memset(res, 0, sizeof res);
  int count = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(s->lt, op, la, lb, ld, ld, pref,
                                                     s->gemm_tune ? KC_TUNE_CANDIDATES : 1, res, &count);
  KC_CUBLAS(cublasLtMatmulPreferenceDestroy(pref));
  e->found = st == CUBLAS_STATUS_SUCCESS && count > 0 && res[0].state == CUBLAS_STATUS_SUCCESS;
  if (e->found) e->algo = count > 1 ? kc_gemm_fastest(s, g, op, la, lb, ld, res, count) : res[0].algo;
}

/* The cached entry for g, choosing (and caching) its algorithm on first use. */
static const kc_gemm_entry *kc_gemm_lookup(kc_state *s, const kc_gemm *g, cublasLtMatmulDesc_t op,
                                           cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                           cublasLtMatrixLayout_t ld) {
  kc_gemm_entry key = kc_gemm_key(g);
  for (int i = 0; i < s->gemm_cache_len; i++)
    if (kc_same_key(&s->gemm_cache[i], &key)) return &s->gemm_cache[i];
  kc_gemm_choose(s, g, &key, op, la, lb, ld);
  int slot = s->gemm_cache_len < KC_GEMM_CACHE ? s->gemm_cache_len++ : s->gemm_cache_next++ % KC_GEMM_CACHE;
  s->gemm_cache[slot] = key;
  return &s->gemm_cache[slot];
}

/* Run g on the stream.  Returns -1 (nothing run) when cuBLASLt has no
 * algorithm and g fuses a bias or GELU, so the caller can do that itself; any
 * other failure aborts. */
static int kc_matmul(kc_state *s, const kc_gemm *g) {
  cublasLtMatmulDesc_t op;
  KC_CUBLAS(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  int32_t ta = g->ta, tb = g->tb;
  KC_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  KC_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (g->bias || g->aux) { /* a refused attribute means: no fused epilogue for this product */
    cublasLtEpilogue_t epi = !g->aux ? CUBLASLT_EPILOGUE_BIAS
                             : g->bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    int32_t bias_type = CUDA_R_32F;
    int64_t aux_ld = g->ldd;
    int ok = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == CUBLAS_STATUS_SUCCESS;
    if (ok && g->bias)
      ok = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias, sizeof g->bias) ==
               CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type) ==
               CUBLAS_STATUS_SUCCESS;
    if (ok && g->aux) /* the aux matrix has D's type by default */
      ok = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g->aux, sizeof g->aux) ==
               CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld) ==
               CUBLAS_STATUS_SUCCESS;
    if (!ok) {
      KC_CUBLAS(cublasLtMatmulDescDestroy(op));
      return -1;
    }
  }
  cublasLtMatrixLayout_t la, lb, ld;
  int a_rows = g->ta == CUBLAS_OP_N ? g->m : g->k, a_cols = g->ta == CUBLAS_OP_N ? g->k : g->m;
  int b_rows = g->tb == CUBLAS_OP_N ? g->k : g->n, b_cols = g->tb == CUBLAS_OP_N ? g->n : g->k;
  KC_CUBLAS(cublasLtMatrixLayoutCreate(&la, g->ab_type, a_rows, a_cols, g->lda));
  KC_CUBLAS(cublasLtMatrixLayoutCreate(&lb, g->ab_type, b_rows, b_cols, g->ldb));
  KC_CUBLAS(cublasLtMatrixLayoutCreate(&ld, g->d_type, g->m, g->n, g->ldd));

  const kc_gemm_entry *e = kc_gemm_lookup(s, g, op, la, lb, ld);
  if (e->found) {
    float alpha = 1.f, beta = g->beta;
    KC_CUBLAS(cublasLtMatmul(s->lt, op, &alpha, g->A, la, g->B, lb, &beta, g->D, ld, g->D, ld, &e->algo,
                             s->workspace, s->workspace_bytes, s->stream));
  }
  KC_CUBLAS(cublasLtMatrixLayoutDestroy(la));
  KC_CUBLAS(cublasLtMatrixLayoutDestroy(lb));
  KC_CUBLAS(cublasLtMatrixLayoutDestroy(ld));
  KC_CUBLAS(cublasLtMatmulDescDestroy(op));
  if (e->found) return 0;
  if (g->bias || g->aux) return -1;
  char what[256];
  snprintf(what, sizeof what, "cuBLASLt has no algorithm for m=%d n=%d k=%d (types %d/%d)", g->m, g->n, g->k,
           (int)g->ab_type, (int)g->d_type);
  kc_die(__FILE__, __LINE__, "cublasLtMatmulAlgoGetHeuristic", what);
}

/* ---------------------------------------------------------------- ops */
/* y[r, c] = acc[r, c] + bias[c], rounded once to the activation type. */
template <typename T>
struct kc_bias_round_op {
  T *y;
  const float *acc, *bias;
  int N;
  __device__ void operator()(size_t i) const { y[i] = kc_to<T>(acc[i] + bias[i % N]); }
};

void kc_linear(k_backend *b, void *y, const void *x, const void *W, const float *bias, int M, int N, int K) {
  kc_state *s = kc(b);
  KC_REQUIRE(M > 0 && N > 0 && K > 0, "linear: sizes must be positive");
  if (kc_skinny_linear(b, y, x, W, bias, M, N, K, NULL) == 0) return;
  cudaDataType t = kc_cuda_type(b->act);
  kc_gemm g = {N, M, K, CUBLAS_OP_T, CUBLAS_OP_N, W, K, x, K, y, N, t, t, 0.f, NULL, NULL};
  if (bias && s->bias_epilogue) {
    g.bias = bias;
    if (kc_matmul(s, &g) == 0) return;
    g.bias = NULL;
  }
  if (!bias) {
    kc_matmul(s, &g);
    return;
  }
  /* No fused bias: the product in fp32 (y itself when activations are F32),
   * then bias and one rounding, so the result is rounded where the epilogue
   * would round it (not twice). */
  s->bias_fallback_calls++;
  float *acc = b->act == RDT_F32 ? (float *)y : (float *)kc_temp_alloc(s, (size_t)M * N * sizeof(float));
  g.D = acc, g.d_type = CUDA_R_32F;
  kc_matmul(s, &g);
  KC_DISPATCH(b->act, T, kc_map(s, (size_t)M * N, kc_bias_round_op<T>{(T *)y, acc, bias, N}));
  if (acc != y) kc_temp_free(s, acc);
}

/* One product with the GELU epilogue where it applies (the few-row kernel, or
 * cuBLASLt's GELU_AUX epilogue when opted in: its aux ld must be a multiple of
 * 8), else the linear and a separate GELU. */
void kc_linear_gelu(k_backend *b, void *pre, void *y, const void *x, const void *W, const float *bias, int M, int N,
                    int K) {
  kc_state *s = kc(b);
  KC_REQUIRE(M > 0 && N > 0 && K > 0, "linear_gelu: sizes must be positive");
  if (kc_skinny_linear(b, pre, x, W, bias, M, N, K, y) == 0) return;
  if (s->gelu_epilogue && N % 8 == 0) {
    cudaDataType t = kc_cuda_type(b->act);
    kc_gemm g = {N, M, K, CUBLAS_OP_T, CUBLAS_OP_N, W, K, x, K, y, N, t, t, 0.f, bias, pre};
    if (kc_matmul(s, &g) == 0) {
      s->gelu_epilogue_calls++;
      return;
    }
  }
  kc_linear(b, pre, x, W, bias, M, N, K);
  kc_gelu(b, y, pre, (size_t)M * N);
}

void kc_linear_backward(k_backend *b, void *dx, float *dW, float *dbias, const void *dy, const void *x,
                        const void *W, int M, int N, int K, int acc) {
  kc_state *s = kc(b);
  KC_REQUIRE(M > 0 && N > 0 && K > 0, "linear_backward: sizes must be positive");
  cudaDataType t = kc_cuda_type(b->act);
  if (dx) {
    kc_gemm g = {K, M, N, CUBLAS_OP_N, CUBLAS_OP_N, W, K, dy, N, dx, K, t, t, acc ? 1.f : 0.f, NULL, NULL};
    kc_matmul(s, &g);
  }
  if (dW) {
    kc_gemm g = {K, N, M, CUBLAS_OP_N, CUBLAS_OP_T, x, K, dy, N, dW, K, t, CUDA_R_32F, 1.f, NULL, NULL};
    kc_matmul(s, &g);
  }
  if (dbias) kc_add_pos_backward(b, dbias, dy, M, 1, N); /* column sums of dy: add_pos backward with T = 1 */
}
