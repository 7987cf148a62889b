/* model/rdt_forward.c: activation planning, the forward pass (conditions and
 * denoiser trunk), the training loss and the DPM-Solver++ sampling loop.
 *
 * The forward pass has two stages.  rdt_conditions runs the language and image
 * adaptors, adds their position embeddings and computes every block's
 * cross-attention K and V (after k-norm); rdt_trunk embeds the timestep,
 * control frequency, state and actions and runs the blocks and final layer.
 * Sampling runs the first stage once per call (condition caching) and the
 * second once per denoising step.  Every numeric step is a kernels.h op. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "model/rdt_internal.h"

/* ================================================================ activation plan */

/* The plan is built twice: a sizing pass (arena NULL) only adds up the
 * aligned sizes, then one zero-filled arena of that size is allocated and the
 * same build carves every buffer from it (DESIGN: one activation arena sized
 * at start-up).  The sizing pass hands out a dummy non-NULL address. */
#define PLAN_ALIGN 256
static void *plan_bytes(rdt_model *m, size_t bytes) {
  rdt_plan *p = &m->plan;
  size_t at = p->bytes;
  p->bytes += (bytes + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
  p->nbuf++;
  return p->arena ? (char *)p->arena + at : (void *)(uintptr_t)PLAN_ALIGN;
}
static void *plan_act(rdt_model *m, size_t n) { return plan_bytes(m, n * k_act_size(m->b)); }
static float *plan_f32(rdt_model *m, size_t n) { return plan_bytes(m, n * sizeof(float)); }

void rdt_plan_free(rdt_model *m) {
  rdt_plan *p = &m->plan;
  if (p->arena) k_free(m->b, p->arena);
  free(p->xs);
  free(p->blk);
  memset(p, 0, sizeof *p);
}

/* Buffers of a Linear stack over rows tokens.  Inference keeps only the output;
 * the hidden layers share two scratch buffers. */
static void plan_mlp(rdt_model *m, rdt_mlp_act *a, const rdt_mlp_params *p, size_t rows, int train) {
  void *ys = NULL, *gs = NULL;
  size_t width = 0;
  for (int i = 0; i < p->n; i++) width = (size_t)p->out[i] > width ? (size_t)p->out[i] : width;
  if (!train && p->n > 1) ys = plan_act(m, rows * width), gs = plan_act(m, rows * width);
  for (int i = 0; i < p->n; i++) {
    int last = i == p->n - 1;
    a->y[i] = train || last ? plan_act(m, rows * p->out[i]) : ys;
    if (i > 0) a->g[i] = train ? plan_act(m, rows * p->out[i - 1]) : gs;
  }
}

/* Query-side buffers of one block (N tokens). */
static void plan_block_query(rdt_model *m, rdt_block_act *a, size_t N) {
  int H = m->cfg.hidden_size, nh = m->cfg.num_heads;
  size_t NH = N * H, lrows = (size_t)m->plan.B * nh * rdt_T(m);
  a->xn1 = plan_act(m, NH), a->q_raw = plan_act(m, NH), a->k_raw = plan_act(m, NH);
  a->v = plan_act(m, NH), a->qn = plan_act(m, NH), a->kn = plan_act(m, NH), a->att = plan_act(m, NH);
  a->rstd1 = plan_f32(m, N), a->rstd_q = plan_f32(m, N * nh), a->rstd_k = plan_f32(m, N * nh);
  a->lse = plan_f32(m, lrows);
  a->xn2 = plan_act(m, NH), a->cq_raw = plan_act(m, NH), a->cqn = plan_act(m, NH), a->catt = plan_act(m, NH);
  a->rstd2 = plan_f32(m, N), a->rstd_cq = plan_f32(m, N * nh), a->clse = plan_f32(m, lrows);
  a->xn3 = plan_act(m, NH), a->h = plan_act(m, NH), a->g = plan_act(m, NH);
  a->rstd3 = plan_f32(m, N);
}

/* Buffers for the backward pass. */
static void plan_backward(rdt_model *m, size_t N, size_t cond_rows, size_t ad_rows) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  size_t H = c->hidden_size, chunk = (size_t)p->B * c->pred_horizon * c->action_dim;
  p->dx = plan_act(m, N * H), p->d1 = plan_act(m, N * H), p->d2 = plan_act(m, N * H);
  p->d3 = plan_act(m, N * H), p->dk = plan_act(m, N * H), p->dv = plan_act(m, N * H);
  p->dfout = plan_act(m, N * c->action_dim), p->dpred = plan_act(m, chunk);
  p->dck = plan_act(m, cond_rows * H), p->dck_raw = plan_act(m, cond_rows * H);
  p->dcv = plan_act(m, cond_rows * H);
  p->dlang_cond = plan_act(m, (size_t)p->B * p->L * H);
  p->dimg_cond = plan_act(m, (size_t)p->B * c->img_cond_len * H);
  p->dad1 = plan_act(m, ad_rows * H), p->dad2 = plan_act(m, ad_rows * H);
  p->demb1 = plan_act(m, (size_t)p->B * H), p->demb2 = plan_act(m, (size_t)p->B * H);
}

/* Allocate every buffer for batch B and language length L. */
static void plan_build(rdt_model *m, int B, int L, int train) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  p->B = B, p->L = L, p->train = train, p->ckpt = train && m->checkpointing;
  int share = !train || p->ckpt;   /* one set of block internals for every block */
  int depth = c->depth, H = c->hidden_size, nh = c->num_heads, D = c->action_dim;
  size_t N = (size_t)B * rdt_T(m), Nl = (size_t)B * L, Ni = (size_t)B * c->img_cond_len;
  size_t Na = (size_t)B * (1 + c->pred_horizon), chunk = (size_t)B * c->pred_horizon * D;
  size_t cond_rows = Nl > Ni ? Nl : Ni, ad_rows = cond_rows > Na ? cond_rows : Na;
  p->lang_in = plan_act(m, Nl * c->lang_token_dim);
  p->img_in = plan_act(m, Ni * c->img_token_dim);
  p->sa_in = plan_act(m, Na * 2 * c->state_token_dim);
  p->state_in = plan_act(m, (size_t)B * D), p->amask_in = plan_act(m, (size_t)B * D);
  p->lang_mask = plan_bytes(m, Nl);
  plan_mlp(m, &p->lang, &m->lang, Nl, train);
  plan_mlp(m, &p->img, &m->img, Ni, train);
  plan_mlp(m, &p->state, &m->state, Na, train);
  plan_mlp(m, &p->temb, &m->temb, B, train);
  plan_mlp(m, &p->femb, &m->femb, B, train);
  plan_mlp(m, &p->fin, &m->final_mlp, N, train);
  p->t_freq = plan_act(m, (size_t)B * RDT_FREQ_DIM), p->f_freq = plan_act(m, (size_t)B * RDT_FREQ_DIM);
  p->lang_cond = plan_act(m, Nl * H), p->img_cond = plan_act(m, Ni * H);
  p->xs = rdt_calloc(3 * depth + 1, sizeof *p->xs);
  p->blk = rdt_calloc(depth, sizeof *p->blk);
  void *ping[2] = {NULL, NULL};
  if (!train) ping[0] = plan_act(m, N * H), ping[1] = plan_act(m, N * H);
  for (int k = 0; k <= 3 * depth; k++) p->xs[k] = train ? plan_act(m, N * H) : ping[k % 2];
  void *ck_shared = train ? NULL : plan_act(m, cond_rows * H);
  for (int i = 0; i < depth; i++) {
    rdt_block_act *a = &p->blk[i];
    if (!share || i == 0) plan_block_query(m, a, N);
    else *a = p->blk[0];
    size_t rows = i % 2 == 0 ? Nl : Ni;      /* even blocks: language, odd: image */
    if (p->ckpt && i >= 2) {                 /* recomputed per block: one set per kind */
      const rdt_block_act *k = &p->blk[i % 2];
      a->ckn = k->ckn, a->cv = k->cv, a->ck_raw = k->ck_raw, a->rstd_ck = k->rstd_ck;
      continue;
    }
    a->ckn = plan_act(m, rows * H), a->cv = plan_act(m, rows * H);
    a->ck_raw = train ? plan_act(m, rows * H) : ck_shared;
    a->rstd_ck = train ? plan_f32(m, rows * nh) : NULL;
  }
  p->tmp = plan_act(m, N * H), p->xf = plan_act(m, N * H), p->rstdf = plan_f32(m, N);
  p->gt = plan_act(m, chunk), p->noise = plan_act(m, chunk), p->xt = plan_act(m, chunk);
  p->pred = plan_act(m, chunk), p->m_prev = plan_act(m, chunk), p->mix_tmp = plan_act(m, chunk);
  if (train) plan_backward(m, N, cond_rows, ad_rows);
}

int rdt_plan_ensure(rdt_model *m, int B, int L, int train) {
  rdt_plan *p = &m->plan;
  if (p->nbuf && B <= p->B && L <= p->L && train <= p->train && p->ckpt == (p->train && m->checkpointing))
    return 0;
  int nb = p->nbuf && p->B > B ? p->B : B, nl = p->nbuf && p->L > L ? p->L : L;
  int nt = p->nbuf && p->train > train ? p->train : train;
  rdt_plan_free(m);
  plan_build(m, nb, nl, nt);   /* sizing */
  size_t bytes = p->bytes;
  rdt_plan_free(m);
  p->arena = k_alloc(m->b, bytes ? bytes : 1);
  plan_build(m, nb, nl, nt);   /* carving */
  RDT_ASSERT(p->bytes == bytes);
  m->plan_gen++;
  return 0;
}

size_t rdt_model_activation_bytes(const rdt_model *m) { return m->plan.bytes; }

/* ================================================================ inputs */

int rdt_check_batch(const rdt_model *m, const rdt_batch *in) {
  RDT_CHECK(in->B >= 1, "batch size %d must be at least 1", in->B);
  RDT_CHECK(in->L >= 1 && in->L <= m->cfg.max_lang_cond_len, "language length %d must be in 1..%d", in->L,
            m->cfg.max_lang_cond_len);
  RDT_CHECK(in->lang_tokens && (in->img_tokens || in->img_tokens_dev) && in->state_tokens && in->action_mask &&
                in->ctrl_freqs,
            "batch is missing an input (lang_tokens, img_tokens, state_tokens, action_mask, ctrl_freqs)");
  return 0;
}

/* Check timesteps are in [0, num_train_timesteps). */
static int check_timesteps(const rdt_model *m, const int64_t *t, int B) {
  for (int i = 0; i < B; i++)
    RDT_CHECK(t[i] >= 0 && t[i] < m->cfg.num_train_timesteps, "timesteps[%d] = %lld is outside [0, %d)", i,
              (long long)t[i], m->cfg.num_train_timesteps);
  return 0;
}

void rdt_upload_batch(rdt_model *m, const rdt_batch *in) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  int B = in->B, L = in->L, D = c->state_token_dim;
  m->cur_B = B, m->cur_L = L;
  k_upload_act(m->b, p->lang_in, in->lang_tokens, (size_t)B * L * c->lang_token_dim);
  size_t img_n = (size_t)B * c->img_cond_len * c->img_token_dim;
  if (in->img_tokens_dev) k_copy(m->b, p->img_in, in->img_tokens_dev, img_n * k_act_size(m->b));
  else k_upload_act(m->b, p->img_in, in->img_tokens, img_n);
  k_upload_act(m->b, p->state_in, in->state_tokens, (size_t)B * D);
  k_upload_act(m->b, p->amask_in, in->action_mask, (size_t)B * D);
  m->cur_mask = in->lang_mask != NULL;
  if (in->lang_mask) k_upload(m->b, p->lang_mask, in->lang_mask, (size_t)B * L);
  m->cur_freqs = rdt_realloc(m->cur_freqs, sizeof(float) * B);
  memcpy(m->cur_freqs, in->ctrl_freqs, sizeof(float) * B);
}

void rdt_set_actions(rdt_model *m, const void *actions) {
  rdt_plan *p = &m->plan;
  int B = m->cur_B, h = m->cfg.pred_horizon, D = m->cfg.state_token_dim;
  k_backend *b = m->b;
  /* Each batch item: [state, mask] then [action_k, mask] for the horizon. */
  k_copy2d(b, p->sa_in, (1 + h) * 2 * D, p->state_in, D, B, D, 0);
  for (int i = 0; i < B; i++) {
    void *row = k_act_at(b, p->sa_in, (size_t)i * (1 + h) * 2 * D);
    k_copy2d(b, k_act_at(b, row, 2 * D), 2 * D, k_act_at(b, actions, (size_t)i * h * D), D, h, D, 0);
    k_copy2d(b, k_act_at(b, row, D), 2 * D, k_act_at(b, p->amask_in, (size_t)i * D), 0, 1 + h, D, 0);
  }
}

/* ================================================================ stages */

/* A Linear stack over rows tokens: Linear, then (act, Linear) per extra layer
 * (act = SiLU for the embedders, GELU-tanh otherwise).  Output in a->y[n-1]. */
static void mlp_forward(rdt_model *m, const rdt_mlp_params *p, rdt_mlp_act *a, const void *x, int rows,
                        int silu) {
  for (int i = 0; i < p->n; i++) {
    const void *in = i > 0 ? a->g[i] : x, *W = rdt_w(m, p->w[i]);
    const float *bias = rdt_p(m, p->b[i]);
    if (i > 0 && silu) k_silu(m->b, a->g[i], a->y[i - 1], (size_t)rows * p->out[i - 1]);
    if (i + 1 < p->n && !silu)   /* GELU of this output is the next layer's input: one op */
      k_linear_gelu(m->b, a->y[i], a->g[i + 1], in, W, bias, rows, p->out[i], p->in[i]);
    else
      k_linear(m->b, a->y[i], in, W, bias, rows, p->out[i], p->in[i]);
  }
}

/* An adaptor's output plus its position embedding into cond. */
static void condition(rdt_model *m, const rdt_mlp_params *p, rdt_mlp_act *a, const void *x, void *cond,
                      int len, size_t pos) {
  int B = m->cur_B, H = m->cfg.hidden_size;
  mlp_forward(m, p, a, x, B * len, 0);
  k_copy(m->b, cond, a->y[p->n - 1], (size_t)B * len * H * k_act_size(m->b));
  k_add_pos(m->b, cond, rdt_p(m, pos), B, len, H);
}

/* Block i's cross-attention K and V (after k-norm) from its condition. */
static void cond_kv(rdt_model *m, int i) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  const rdt_block_params *w = &m->blocks[i];
  rdt_block_act *a = &p->blk[i];
  int H = c->hidden_size, nh = c->num_heads, hd = rdt_hd(m);
  const void *cond = i % 2 == 0 ? p->lang_cond : p->img_cond;
  int rows = m->cur_B * (i % 2 == 0 ? m->cur_L : c->img_cond_len);
  size_t HH = (size_t)H * H;
  k_linear(m->b, a->ck_raw, cond, rdt_w(m, w->ckv_w), rdt_p(m, w->ckv_b), rows, H, H);
  k_linear(m->b, a->cv, cond, rdt_w(m, w->ckv_w + HH), rdt_p(m, w->ckv_b + H), rows, H, H);
  k_rmsnorm(m->b, a->ckn, a->rstd_ck, a->ck_raw, rdt_p(m, w->ck_norm), rows * nh, hd, RDT_NORM_EPS);
}

void rdt_conditions(rdt_model *m) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  condition(m, &m->lang, &p->lang, p->lang_in, p->lang_cond, m->cur_L, m->lang_pos);
  condition(m, &m->img, &p->img, p->img_in, p->img_cond, c->img_cond_len, m->img_pos);
  if (p->ckpt) return;   /* with recomputation each block computes its own, when it runs */
  for (int i = 0; i < c->depth; i++) cond_kv(m, i);
}

/* One RDTBlock: x += attn(norm1 x); x += cross_attn(norm2 x, cond); x += ffn(norm3 x).
 * chained (the trunk's pass): norm1 x is already in the block's xn1, made by
 * the previous block's last residual add (or the trunk for block 0), and the
 * block's own last residual add makes the next block's norm1 (or the final
 * norm) in the same op.  A recomputation (checkpointing) runs unchained: the
 * block makes its own norm1 and leaves the next block's buffers alone. */
void rdt_block_forward(rdt_model *m, int i, int chained) {
  rdt_plan *p = &m->plan;
  const rdt_block_params *w = &m->blocks[i];
  rdt_block_act *a = &p->blk[i];
  k_backend *b = m->b;
  int B = m->cur_B, T = rdt_T(m), H = m->cfg.hidden_size, nh = m->cfg.num_heads, hd = rdt_hd(m);
  int N = B * T, Lc = i % 2 == 0 ? m->cur_L : m->cfg.img_cond_len;
  const uint8_t *mask = i % 2 == 0 && m->cur_mask ? p->lang_mask : NULL;
  float scale = 1.0f / sqrtf((float)hd), eps = RDT_NORM_EPS;
  size_t HH = (size_t)H * H, NH = (size_t)N * H;
  void *s0 = p->xs[3 * i], *s1 = p->xs[3 * i + 1], *s2 = p->xs[3 * i + 2], *s3 = p->xs[3 * i + 3];
  if (p->ckpt) cond_kv(m, i);
  /* self-attention: qkv split into q, k, v row blocks of the weight */
  if (!chained) k_rmsnorm(b, a->xn1, a->rstd1, s0, rdt_p(m, w->norm1), N, H, eps);
  k_linear(b, a->q_raw, a->xn1, rdt_w(m, w->qkv_w), rdt_p(m, w->qkv_b), N, H, H);
  k_linear(b, a->k_raw, a->xn1, rdt_w(m, w->qkv_w + HH), rdt_p(m, w->qkv_b + H), N, H, H);
  k_linear(b, a->v, a->xn1, rdt_w(m, w->qkv_w + 2 * HH), rdt_p(m, w->qkv_b + 2 * H), N, H, H);
  k_rmsnorm_pair(b, a->qn, a->rstd_q, a->q_raw, rdt_p(m, w->q_norm), a->kn, a->rstd_k, a->k_raw, rdt_p(m, w->k_norm),
                 N * nh, hd, eps);
  k_attention(b, a->att, a->lse, a->qn, a->kn, a->v, NULL, NULL, B, T, T, nh, hd, scale);
  k_linear(b, p->tmp, a->att, rdt_w(m, w->proj_w), rdt_p(m, w->proj_b), N, H, H);
  /* residual, then the cross-attention's norm, in one op */
  k_add_rmsnorm(b, s1, a->xn2, a->rstd2, s0, p->tmp, rdt_p(m, w->norm2), N, H, eps);
  /* cross-attention to the block's condition (K/V from rdt_conditions) */
  k_linear(b, a->cq_raw, a->xn2, rdt_w(m, w->cq_w), rdt_p(m, w->cq_b), N, H, H);
  k_rmsnorm(b, a->cqn, a->rstd_cq, a->cq_raw, rdt_p(m, w->cq_norm), N * nh, hd, eps);
  k_attention(b, a->catt, a->clse, a->cqn, a->ckn, a->cv, mask, NULL, B, T, Lc, nh, hd, scale);
  k_linear(b, p->tmp, a->catt, rdt_w(m, w->cproj_w), rdt_p(m, w->cproj_b), N, H, H);
  /* residual and the MLP's norm; MLP, ratio 1 */
  k_add_rmsnorm(b, s2, a->xn3, a->rstd3, s1, p->tmp, rdt_p(m, w->norm3), N, H, eps);
  k_linear_gelu(b, a->h, a->g, a->xn3, rdt_w(m, w->fc1_w), rdt_p(m, w->fc1_b), N, H, H);
  k_linear(b, p->tmp, a->g, rdt_w(m, w->fc2_w), rdt_p(m, w->fc2_b), N, H, H);
  if (!chained) {
    k_add(b, s3, s2, p->tmp, NH);
  } else if (i + 1 < m->cfg.depth) {   /* residual, then the next block's norm1 */
    rdt_block_act *nx = &p->blk[i + 1];
    k_add_rmsnorm(b, s3, nx->xn1, nx->rstd1, s2, p->tmp, rdt_p(m, m->blocks[i + 1].norm1), N, H, eps);
  } else {                             /* residual, then the final layer's norm */
    k_add_rmsnorm(b, s3, p->xf, p->rstdf, s2, p->tmp, rdt_p(m, m->final_norm), N, H, eps);
  }
}

void rdt_trunk(rdt_model *m, const float *t_host, void *pred) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  k_backend *b = m->b;
  int B = m->cur_B, T = rdt_T(m), H = c->hidden_size, h = c->pred_horizon, D = c->action_dim;
  int N = B * T;
  /* tokens [t, ctrl_freq, state, actions] + x_pos_embed */
  k_timestep_embed(b, p->t_freq, t_host, B, RDT_FREQ_DIM);
  mlp_forward(m, &m->temb, &p->temb, p->t_freq, B, 1);
  k_timestep_embed(b, p->f_freq, m->cur_freqs, B, RDT_FREQ_DIM);
  mlp_forward(m, &m->femb, &p->femb, p->f_freq, B, 1);
  mlp_forward(m, &m->state, &p->state, p->sa_in, B * (1 + h), 0);
  void *x0 = p->xs[0];
  k_copy2d(b, x0, T * H, p->temb.y[1], H, B, H, 0);
  k_copy2d(b, k_act_at(b, x0, H), T * H, p->femb.y[1], H, B, H, 0);
  k_copy2d(b, k_act_at(b, x0, 2 * H), T * H, p->state.y[m->state.n - 1], (1 + h) * H, B, (1 + h) * H, 0);
  k_add_pos(b, x0, rdt_p(m, m->x_pos), B, T, H);
  /* the blocks, chained: each one's last residual add also makes the next
   * norm (the final norm after the last block) */
  k_rmsnorm(b, p->blk[0].xn1, p->blk[0].rstd1, x0, rdt_p(m, m->blocks[0].norm1), N, H, RDT_NORM_EPS);
  for (int i = 0; i < c->depth; i++) rdt_block_forward(m, i, 1);
  /* final layer (its norm done above), then keep the action tokens */
  mlp_forward(m, &m->final_mlp, &p->fin, p->xf, N, 0);
  k_copy2d(b, pred, h * D, k_act_at(b, p->fin.y[1], 3 * D), T * D, B, h * D, 0);
}

/* ================================================================ public compute */

/* Validate, plan and upload the conditioning inputs of a call. */
static int prepare(rdt_model *m, const rdt_batch *in, int train) {
  if (rdt_check_batch(m, in) != 0) return -1;
  rdt_plan_ensure(m, in->B, in->L, train);
  rdt_upload_batch(m, in);
  return 0;
}

/* Timesteps as the floats the embedder takes. */
static float *timestep_floats(const int64_t *t, int B) {
  float *f = rdt_malloc(sizeof(float) * B);
  for (int i = 0; i < B; i++) f[i] = (float)t[i];
  return f;
}

int rdt_model_loss(rdt_model *m, const rdt_batch *in, const float *action_gt, const float *noise,
                   const int64_t *timesteps, int backward, float grad_scale, float *loss) {
  if (check_timesteps(m, timesteps, in->B) != 0 || prepare(m, in, backward) != 0) return -1;
  rdt_plan *p = &m->plan;
  int B = in->B;
  size_t chunk = (size_t)m->cfg.pred_horizon * m->cfg.action_dim;
  k_upload_act(m->b, p->gt, action_gt, B * chunk);
  k_upload_act(m->b, p->noise, noise, B * chunk);
  float *a = rdt_malloc(sizeof(float) * B), *c = rdt_malloc(sizeof(float) * B);
  for (int i = 0; i < B; i++) rdt_ddpm_noise_coefs(&m->ddpm, timesteps[i], &a[i], &c[i]);
  k_mix(m->b, p->xt, p->gt, p->noise, a, c, B, chunk);
  rdt_set_actions(m, p->xt);
  rdt_conditions(m);
  float *t = timestep_floats(timesteps, B);
  rdt_trunk(m, t, p->pred);
  const void *target = strcmp(m->cfg.prediction_type, "epsilon") == 0 ? p->noise : p->gt;
  *loss = k_mse_loss(m->b, backward ? p->dpred : NULL, p->pred, target, B * chunk, grad_scale);
  if (backward) rdt_model_grads(m), rdt_backward(m);
  free(t);
  free(a);
  free(c);
  return 0;
}

int rdt_model_forward(rdt_model *m, const rdt_batch *in, const float *noisy_action, const int64_t *timesteps,
                      float *pred) {
  if (check_timesteps(m, timesteps, in->B) != 0 || prepare(m, in, 0) != 0) return -1;
  rdt_plan *p = &m->plan;
  size_t n = (size_t)in->B * m->cfg.pred_horizon * m->cfg.action_dim;
  k_upload_act(m->b, p->xt, noisy_action, n);
  rdt_set_actions(m, p->xt);
  rdt_conditions(m);
  float *t = timestep_floats(timesteps, in->B);
  rdt_trunk(m, t, p->pred);
  free(t);
  k_download_act(m->b, pred, p->pred, n);
  return 0;
}

/* Swap two buffer pointers. */
static void swap_ptr(void **a, void **b) {
  void *t = *a;
  *a = *b;
  *b = t;
}

/* The denoising steps from p->xt (the noise) to p->xt (the sample), with the
 * conditions in place.  The buffers rotate during the loop and are put back
 * in order at the end, so every call queues the same ops on the same buffers
 * (what a recorded graph needs). */
static void sample_steps(rdt_model *m, int B) {
  rdt_plan *p = &m->plan;
  const rdt_dpm *s = &m->dpm;
  int eps_pred = strcmp(m->cfg.prediction_type, "epsilon") == 0;
  size_t chunk = (size_t)m->cfg.pred_horizon * m->cfg.action_dim;
  float *t = rdt_malloc(sizeof(float) * B), *ca = rdt_malloc(sizeof(float) * B);
  float *cb = rdt_malloc(sizeof(float) * B), *one = rdt_malloc(sizeof(float) * B);
  void *x = p->xt, *m0 = p->pred, *m1 = p->m_prev, *tmp = p->mix_tmp;
  for (int k = 0; k < s->steps; k++) {
    for (int i = 0; i < B; i++) t[i] = (float)s->timesteps[k], one[i] = 1.0f;
    if (!m->cond_cache) rdt_conditions(m);
    rdt_set_actions(m, x);
    rdt_trunk(m, t, m0);
    if (eps_pred) {   /* x0 = (x - sigma_t eps) / alpha_t */
      for (int i = 0; i < B; i++) ca[i] = 1.0f / s->alpha[k], cb[i] = -s->sigma[k] / s->alpha[k];
      k_mix(m->b, tmp, x, m0, ca, cb, B, chunk);
      swap_ptr(&tmp, &m0);
    }
    for (int i = 0; i < B; i++) ca[i] = s->cx[k], cb[i] = s->c0[k];
    k_mix(m->b, tmp, x, m0, ca, cb, B, chunk);
    if (s->order[k] == 2) {
      for (int i = 0; i < B; i++) cb[i] = s->c1[k];
      k_mix(m->b, x, tmp, m1, one, cb, B, chunk);
    } else {
      swap_ptr(&x, &tmp);
    }
    swap_ptr(&m0, &m1);   /* this step's prediction becomes the previous one */
  }
  if (x != p->xt) k_copy(m->b, p->xt, x, B * chunk * k_act_size(m->b));
  free(t);
  free(ca);
  free(cb);
  free(one);
}

/* Run sample_steps as a recorded graph when the backend can (CUDA, unless
 * RDT_CUDA_GRAPH=0; k_graph_begin says no otherwise): a call whose key
 * (sizes, buffers, weights, control frequencies) matches the previous call's
 * records the loop once (the first call ran it directly, so every library
 * kernel is loaded), later calls replay it.  0 when it ran nothing. */
static int sample_steps_graph(rdt_model *m, int B) {
  if (!m->cond_cache || k_kind_of(m->b) != K_CUDA) return 0;
  rdt_plan *p = &m->plan;
  struct {
    int B, L, mask, gen;
    const void *bufs[5];
  } k = {B, m->cur_L, m->cur_mask, m->plan_gen, {p->xt, p->pred, p->m_prev, p->mix_tmp, m->wc}};
  uint64_t key = rdt_fnv1a(rdt_fnv1a(RDT_FNV_OFFSET, &k, sizeof k), m->cur_freqs, sizeof(float) * B);
  if (m->graph && m->graph_key == key) {
    k_graph_launch(m->b, m->graph);
    return 1;
  }
  if (m->graph_seen != key) {   /* first call with this key: run directly */
    m->graph_seen = key;
    return 0;
  }
  if (k_graph_begin(m->b) != 0) return 0;
  sample_steps(m, B);
  void *g = k_graph_end(m->b);
  if (!g) {
    m->graph_seen = 0;   /* recording failed; nothing ran: the caller runs the loop */
    return 0;
  }
  k_graph_free(m->b, m->graph);
  m->graph = g, m->graph_key = key;
  k_graph_launch(m->b, g);
  return 1;
}

int rdt_model_sample(rdt_model *m, const rdt_batch *in, const float *noise, float *actions) {
  if (prepare(m, in, 0) != 0) return -1;
  rdt_plan *p = &m->plan;
  int B = in->B;
  size_t chunk = (size_t)m->cfg.pred_horizon * m->cfg.action_dim;
  k_upload_act(m->b, p->xt, noise, B * chunk);
  if (m->cond_cache) rdt_conditions(m);
  if (!sample_steps_graph(m, B)) sample_steps(m, B);
  k_mul_rowvec(m->b, p->xt, p->amask_in, B, m->cfg.pred_horizon, m->cfg.action_dim);
  k_download_act(m->b, actions, p->xt, B * chunk);
  return 0;
}

/* ================================================================ activations */

/* The buffer and element count of a named activation of the last call. */
static const void *activation(rdt_model *m, const char *name, size_t *n) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  size_t B = m->cur_B, H = c->hidden_size, T = rdt_T(m), D = c->action_dim;
  int i = -1, used = 0;
  char sub[16];
  *n = 0;
  if (!p->nbuf || !B) return NULL;
  if (strcmp(name, "lang_cond") == 0) return *n = B * m->cur_L * H, p->lang.y[m->lang.n - 1];
  if (strcmp(name, "img_cond") == 0) return *n = B * c->img_cond_len * H, p->img.y[m->img.n - 1];
  if (strcmp(name, "state_action_traj") == 0)
    return *n = B * (1 + c->pred_horizon) * H, p->state.y[m->state.n - 1];
  if (strcmp(name, "pred") == 0) return *n = B * c->pred_horizon * D, p->pred;
  if (!p->train) return NULL;
  if (strcmp(name, "t_emb") == 0) return *n = B * H, p->temb.y[1];
  if (strcmp(name, "freq_emb") == 0) return *n = B * H, p->femb.y[1];
  if (strcmp(name, "x_embed") == 0) return *n = B * T * H, p->xs[0];
  if (strcmp(name, "final") == 0) return *n = B * T * D, p->fin.y[1];
  if (sscanf(name, "block.%d.%15[a-z]%n", &i, sub, &used) == 2 && name[used] == 0 && i >= 0 && i < c->depth) {
    int k = strcmp(sub, "attn") == 0 ? 1 : strcmp(sub, "cross") == 0 ? 2 : strcmp(sub, "ffn") == 0 ? 3 : 0;
    if (k) return *n = B * T * H, p->xs[3 * i + k];
  }
  return NULL;
}

size_t rdt_model_activation_numel(rdt_model *m, const char *name) {
  size_t n;
  return activation(m, name, &n) ? n : 0;
}

int rdt_model_activation(rdt_model *m, const char *name, float *host, size_t n) {
  size_t have;
  const void *buf = activation(m, name, &have);
  RDT_CHECK(buf, "activation '%s' is unknown or was not kept by the last call", name);
  RDT_CHECK(have == n, "activation '%s' has %zu elements, not %zu", name, have, n);
  k_download_act(m->b, host, buf, n);
  return 0;
}
