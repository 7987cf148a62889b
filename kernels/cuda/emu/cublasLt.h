/* kernels/cuda/emu/cublasLt.h: a host emulation of the cuBLASLt subset that
 * kernels/cuda/gemm.cu uses (verification tool; see run.sh), following the
 * documented column-major semantics D = alpha op(A) op(B) + beta C (+ bias[m]
 * with the BIAS epilogue; GELU of that, its input to the aux buffer, with
 * GELU_AUX(_BIAS)), accumulated in double.  C is not read when beta is
 * 0.  The heuristic checks that the layouts agree with the transposes and
 * with D; EMU_BIAS_F32_ONLY_FOR_F32=1 makes it refuse a bias epilogue on a
 * 16-bit output, to exercise gemm.cu's fallback. */
#pragma once
#include "cuda_runtime.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 } cudaDataType_t;
typedef cudaDataType_t cudaDataType;
typedef enum { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_BIAS = 4, CUBLASLT_EPILOGUE_GELU = 32,
               CUBLASLT_EPILOGUE_GELU_AUX = 32 | 128, CUBLASLT_EPILOGUE_GELU_BIAS = 32 | 4,
               CUBLASLT_EPILOGUE_GELU_AUX_BIAS = 32 | 128 | 4 } cublasLtEpilogue_t;
typedef enum { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4, CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
               CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,
               CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,
               CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26 } cublasLtMatmulDescAttributes_t;
typedef enum { CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8 } cublasLtMatmulPreferenceAttributes_t;

typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct { cublasLtMatmulAlgo_t algo; size_t workspaceSize; cublasStatus_t state; float wavesCount; int reserved[4]; } cublasLtMatmulHeuristicResult_t;
struct emu_lt { int dummy; };
struct emu_desc { int ta = 0, tb = 0, epi = 1, bias_type = -1; const void *bias = nullptr; void *aux = nullptr; int64_t aux_ld = 0; };
struct emu_layout { int type; uint64_t rows, cols; int64_t ld; };
struct emu_pref { int dummy; };
typedef emu_lt *cublasLtHandle_t;
typedef emu_desc *cublasLtMatmulDesc_t;
typedef emu_layout *cublasLtMatrixLayout_t;
typedef emu_pref *cublasLtMatmulPreference_t;

static inline const char *cublasLtGetStatusString(cublasStatus_t s) { return s == 0 ? "success" : s == 15 ? "not supported" : "invalid value"; }
static inline cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = new emu_lt; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c, cudaDataType s) {
  if (c != CUBLAS_COMPUTE_32F || s != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
  *d = new emu_desc; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf, size_t n) {
  switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->ta, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->tb, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->epi, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: if (n != 8) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->bias, buf, 8); break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->bias_type, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: if (n != 8) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->aux, buf, 8); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: if (n != 8) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->aux_ld, buf, 8); break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows, uint64_t cols, int64_t ld) {
  if (ld < (int64_t)rows) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new emu_layout{(int)t, rows, cols, ld}; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = new emu_pref; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { delete p; return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t a, const void *, size_t n) {
  if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return n == 8 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
  return n == 4 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE; }

/* m, n, k from the layouts; 0 if inconsistent. */
static inline int emu_dims(cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                           cublasLtMatrixLayout_t D, uint64_t *m, uint64_t *n, uint64_t *k) {
  *m = D->rows, *n = D->cols;
  *k = op->ta == CUBLAS_OP_N ? A->cols : A->rows;
  uint64_t am = op->ta == CUBLAS_OP_N ? A->rows : A->cols;
  uint64_t bk = op->tb == CUBLAS_OP_N ? B->rows : B->cols, bn = op->tb == CUBLAS_OP_N ? B->cols : B->rows;
  if (am != *m || bk != *k || bn != *n || C->rows != D->rows || C->cols != D->cols || A->type != B->type) return 0;
  return 1;
}

static inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t A,
    cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t, int req,
    cublasLtMatmulHeuristicResult_t *res, int *count) {
  uint64_t m, n, k;
  *count = 0;
  if (req < 1 || !emu_dims(op, A, B, C, D, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (op->epi & CUBLASLT_EPILOGUE_BIAS) {
    const char *e = getenv("EMU_BIAS_F32_ONLY_FOR_F32");  /* emulate: fp32 bias only with fp32 output */
    if (e && *e == '1' && D->type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  /* the documented GELU_AUX rules: an aux buffer whose ld is a multiple of 8 and at least m */
  if ((op->epi & 128) && (!op->aux || op->aux_ld % 8 || op->aux_ld < (int64_t)D->rows)) return CUBLAS_STATUS_INVALID_VALUE;
  /* up to 3 candidates (all the same algorithm here), so a caller's choice among them runs */
  int c = req < 3 ? req : 3;
  memset(res, 0, sizeof *res * (size_t)c);
  for (int i = 0; i < c; i++) res[i].state = CUBLAS_STATUS_SUCCESS;
  *count = c;
  return CUBLAS_STATUS_SUCCESS;
}

static inline double emu_get(const void *p, int type, size_t i) {
  switch (type) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
  }
  abort();
}
static inline void emu_put(void *p, int type, size_t i, double v) {
  switch (type) {
    case CUDA_R_32F: ((float *)p)[i] = (float)v; return;
    case CUDA_R_16BF: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); return;
    case CUDA_R_16F: ((__half *)p)[i] = __float2half_rn((float)v); return;
  }
  abort();
}

static inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t op, const void *alpha, const void *A,
    cublasLtMatrixLayout_t Al, const void *B, cublasLtMatrixLayout_t Bl, const void *beta, const void *C, cublasLtMatrixLayout_t Cl,
    void *D, cublasLtMatrixLayout_t Dl, const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t) {
  uint64_t m, n, k;
  if (!emu_dims(op, Al, Bl, Cl, Dl, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
  float a = *(const float *)alpha, b = *(const float *)beta;
  std::vector<double> out(m * n);
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t i = 0; i < m; i++) {
      double s = 0;
      for (uint64_t kk = 0; kk < k; kk++) {
        double x = op->ta == CUBLAS_OP_N ? emu_get(A, Al->type, i + kk * Al->ld) : emu_get(A, Al->type, kk + i * Al->ld);
        double y = op->tb == CUBLAS_OP_N ? emu_get(B, Bl->type, kk + j * Bl->ld) : emu_get(B, Bl->type, j + kk * Bl->ld);
        s += x * y;
      }
      s *= a;
      if (b != 0) s += b * emu_get(C, Cl->type, i + j * Cl->ld);
      if (op->epi & CUBLASLT_EPILOGUE_BIAS) s += emu_get(op->bias, op->bias_type == -1 ? Dl->type : op->bias_type, i);
      out[i + j * m] = s;
    }
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t i = 0; i < m; i++) {
      double s = out[i + j * m];
      if (op->epi & CUBLASLT_EPILOGUE_GELU) { /* GELU-tanh (the form cuBLASLt is taken to use); aux = its input */
        if (op->epi & 128) emu_put(op->aux, Dl->type, i + j * op->aux_ld, s);
        s = 0.5 * s * (1.0 + tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
      }
      emu_put(D, Dl->type, i + j * Dl->ld, s);
    }
  return CUBLAS_STATUS_SUCCESS;
}
