/* kernels/cpu/attention.c: scaled dot-product attention and its backward.
 *
 * q, k, v, out are [B, T, nh, hd]: the rows of one head are hd floats apart by
 * nh * hd, which sgemm takes as the leading dimension, so no head is copied.
 * Forward: one task per (batch, head, block of query rows); the scores of a
 * block live in a per-thread scratch buffer: S = scale Q K^T (+ bias), masked
 * keys dropped, E = exp(S - rowmax), O = E V / rowsum(E); lse = max + log(sum)
 * is saved.
 * Backward (flash-attention style, from q, k and lse): one task per (batch,
 * head) walking its query blocks in order, so dK and dV sum in a fixed order:
 *   P = exp(S - lse), dV += P^T dO, dP = dO V^T, D = rowsum(dO * O),
 *   dS = P (dP - D), dQ = scale dS K, dK += scale dS^T Q.
 * A query row whose keys are all masked gives zeros and lse = -inf.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

typedef struct {
  kcpu_pool *pool;
  float *out, *lse;
  float *dq, *dk, *dv;
  const float *q, *k, *v, *o, *dout, *bias;
  const uint8_t *mask;
  int B, Tq, Tk, nh, hd;
  float scale;
  int qblock, nqblocks;   /* query rows per block and blocks per head */
} attn_job;

/* Query rows per block: at most 128, blocks of equal size. */
static void attn_blocks(attn_job *j) {
  j->nqblocks = (j->Tq + 127) / 128;
  j->qblock = (j->Tq + j->nqblocks - 1) / j->nqblocks;
}

/* Offset of row t of head h in batch bi of a [B, T, nh, hd] tensor. */
static size_t at(const attn_job *j, int bi, int T, int t, int h) {
  return (((size_t)bi * T + t) * j->nh + h) * j->hd;
}

/* Scores of query rows [i0, i0 + n) of (bi, h) into S [n, Tk]: scale q.k (+ bias),
 * masked keys -inf. */
static void attn_scores(const attn_job *j, float *S, int bi, int h, int i0, int n) {
  int ld = j->nh * j->hd, Tk = j->Tk;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, Tk, j->hd, j->scale, j->q + at(j, bi, j->Tq, i0, h), ld,
              j->k + at(j, bi, Tk, 0, h), ld, 0.0f, S, Tk);
  for (int i = 0; i < n; i++) {
    float *s = S + (size_t)i * Tk;
    if (j->bias) {
      const float *bb = j->bias + ((size_t)h * j->Tq + i0 + i) * Tk;
      for (int c = 0; c < Tk; c++) s[c] += bb[c];
    }
    if (j->mask) {
      const uint8_t *m = j->mask + (size_t)bi * Tk;
      for (int c = 0; c < Tk; c++)
        if (!m[c]) s[c] = -INFINITY;
    }
  }
}

/* ---------------------------------------------------------------- forward */
/* Largest of x[0..n) (-inf for none). */
static float row_max(const float *x, int n) {
  kcpu_v4 m = kcpu_set4(-INFINITY);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    kcpu_v4 v = kcpu_load4(x + i);
    m = kcpu_select4(v > m, v, m);
  }
  float r = fmaxf(fmaxf(m[0], m[1]), fmaxf(m[2], m[3]));
  for (; i < n; i++) r = x[i] > r ? x[i] : r;
  return r;
}

/* Scores, unnormalised probabilities e^(s - max) in place, O = E V, then each
 * row of O divided by its sum (hd divisions instead of Tk). */
static void attn_fwd_task(void *arg, int task, int worker) {
  attn_job *j = arg;
  int blk = task % j->nqblocks, h = (task / j->nqblocks) % j->nh, bi = task / (j->nqblocks * j->nh);
  int i0 = blk * j->qblock, n = j->Tq - i0 < j->qblock ? j->Tq - i0 : j->qblock;
  int Tk = j->Tk, hd = j->hd, ld = j->nh * hd;
  float *S = kcpu_pool_scratch(j->pool, worker, (size_t)j->qblock * (Tk + 1)), *inv = S + (size_t)j->qblock * Tk;
  attn_scores(j, S, bi, h, i0, n);
  for (int i = 0; i < n; i++) {
    float *s = S + (size_t)i * Tk;
    float mx = row_max(s, Tk), l = -INFINITY;
    inv[i] = 0.0f;
    if (mx == -INFINITY) {   /* every key masked: zero output */
      memset(s, 0, (size_t)Tk * sizeof(float));
    } else {
      float sum = kcpu_exp_shift_sum(s, s, Tk, mx);
      inv[i] = 1.0f / sum;
      l = mx + logf(sum);
    }
    if (j->lse) j->lse[((size_t)bi * j->nh + h) * j->Tq + i0 + i] = l;
  }
  float *out = j->out + at(j, bi, j->Tq, i0, h);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, Tk, 1.0f, S, Tk, j->v + at(j, bi, Tk, 0, h), ld,
              0.0f, out, ld);
  for (int i = 0; i < n; i++)
    for (int c = 0; c < hd; c++) out[(size_t)i * ld + c] *= inv[i];
}

void kcpu_attention(k_backend *b, void *out, float *lse, const void *q, const void *k, const void *v,
                    const uint8_t *mask, const float *bias, int B, int Tq, int Tk, int nh, int hd, float scale) {
  RDT_ASSERT(B >= 0 && Tq >= 0 && Tk > 0 && nh > 0 && hd > 0);
  if (B == 0 || Tq == 0) return;
  attn_job j = {.pool = kcpu_pool_of(b), .out = out, .lse = lse, .q = q, .k = k, .v = v, .bias = bias,
                .mask = mask, .B = B, .Tq = Tq, .Tk = Tk, .nh = nh, .hd = hd, .scale = scale};
  attn_blocks(&j);
  kcpu_pool_run(j.pool, B * nh * j.nqblocks, attn_fwd_task, &j);
}

/* ---------------------------------------------------------------- backward */
/* P = exp(S - lse) for query rows [i0, i0 + n) of (bi, h); rows with lse = -inf are 0. */
static void attn_probs(const attn_job *j, float *P, int bi, int h, int i0, int n) {
  attn_scores(j, P, bi, h, i0, n);
  for (int i = 0; i < n; i++) {
    float *p = P + (size_t)i * j->Tk;
    float l = j->lse[((size_t)bi * j->nh + h) * j->Tq + i0 + i];
    if (l == -INFINITY)
      memset(p, 0, (size_t)j->Tk * sizeof(float));
    else
      kcpu_exp_shift_sum(p, p, j->Tk, l);
  }
}

/* dS = P (dP - D) in place of dP, D_i = dO_i . O_i. */
static void attn_dscores(const attn_job *j, float *dP, const float *P, int bi, int h, int i0, int n) {
  for (int i = 0; i < n; i++) {
    const float *o = j->o + at(j, bi, j->Tq, i0 + i, h), *d = j->dout + at(j, bi, j->Tq, i0 + i, h);
    float D = 0.0f;
    for (int c = 0; c < j->hd; c++) D += d[c] * o[c];
    float *ds = dP + (size_t)i * j->Tk;
    const float *p = P + (size_t)i * j->Tk;
    int c = 0;
    for (; c + 4 <= j->Tk; c += 4) kcpu_store4(ds + c, kcpu_load4(p + c) * (kcpu_load4(ds + c) - D));
    for (; c < j->Tk; c++) ds[c] = p[c] * (ds[c] - D);
  }
}

static void attn_bwd_task(void *arg, int task, int worker) {
  attn_job *j = arg;
  int h = task % j->nh, bi = task / j->nh, Tk = j->Tk, hd = j->hd, ld = j->nh * hd;
  float *P = kcpu_pool_scratch(j->pool, worker, 2 * (size_t)j->qblock * Tk), *dP = P + (size_t)j->qblock * Tk;
  const float *K = j->k + at(j, bi, Tk, 0, h), *V = j->v + at(j, bi, Tk, 0, h);
  float *dK = j->dk + at(j, bi, Tk, 0, h), *dV = j->dv + at(j, bi, Tk, 0, h);
  for (int blk = 0; blk < j->nqblocks; blk++) {
    int i0 = blk * j->qblock, n = j->Tq - i0 < j->qblock ? j->Tq - i0 : j->qblock;
    float beta = blk ? 1.0f : 0.0f;
    const float *Q = j->q + at(j, bi, j->Tq, i0, h), *dO = j->dout + at(j, bi, j->Tq, i0, h);
    attn_probs(j, P, bi, h, i0, n);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, n, 1.0f, P, Tk, dO, ld, beta, dV, ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, Tk, hd, 1.0f, dO, ld, V, ld, 0.0f, dP, Tk);
    attn_dscores(j, dP, P, bi, h, i0, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, Tk, j->scale, dP, Tk, K, ld, 0.0f,
                j->dq + at(j, bi, j->Tq, i0, h), ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, n, j->scale, dP, Tk, Q, ld, beta, dK, ld);
  }
}

void kcpu_attention_backward(k_backend *b, void *dq, void *dk, void *dv, const void *dout, const void *q,
                             const void *k, const void *v, const void *out, const float *lse,
                             const uint8_t *mask, int B, int Tq, int Tk, int nh, int hd, float scale) {
  RDT_ASSERT(B >= 0 && Tq >= 0 && Tk > 0 && nh > 0 && hd > 0 && lse);
  if (B == 0) return;
  if (Tq == 0) {   /* no queries: no gradient reaches k and v */
    memset(dk, 0, (size_t)B * Tk * nh * hd * sizeof(float));
    memset(dv, 0, (size_t)B * Tk * nh * hd * sizeof(float));
    return;
  }
  attn_job j = {.pool = kcpu_pool_of(b), .lse = (float *)lse, .dq = dq, .dk = dk, .dv = dv, .q = q, .k = k,
                .v = v, .o = out, .dout = dout, .mask = mask, .B = B, .Tq = Tq, .Tk = Tk, .nh = nh, .hd = hd,
                .scale = scale};
  attn_blocks(&j);
  kcpu_pool_run(j.pool, B * nh, attn_bwd_task, &j);
}
