/* model/rdt_backward.c: gradients of the training loss for every parameter.
 *
 * Runs after rdt_model_loss's forward pass (a training plan keeps every
 * activation, or with checkpointing every block's input, and the blocks run
 * forward again here) with dpred = d loss / d pred in the plan.  Gradient buffers of
 * the network's activations are overwritten; parameter gradients accumulate
 * into the model's gradient buffer. */
#include <math.h>
#include "model/rdt_internal.h"

/* Backward of a Linear stack from dy, its output gradient; dx (may be NULL)
 * receives the input gradient, x is the stack input.  s1, s2: scratch of
 * rows x width, distinct from dy. */
static void mlp_backward(rdt_model *m, const rdt_mlp_params *p, const rdt_mlp_act *a, const void *x,
                         void *dy, void *dx, int rows, int silu, void *s1, void *s2) {
  k_backend *b = m->b;
  for (int i = p->n - 1; i >= 0; i--) {
    const void *in = i > 0 ? a->g[i] : x;
    void *din = i > 0 ? s1 : dx;
    k_linear_backward(b, din, rdt_g(m, p->w[i]), rdt_g(m, p->b[i]), dy, in, rdt_w(m, p->w[i]), rows,
                      p->out[i], p->in[i], 0);
    if (i == 0) break;
    size_t n = (size_t)rows * p->out[i - 1];
    if (silu) k_silu_backward(b, s2, s1, a->y[i - 1], n, 0);
    else k_gelu_backward(b, s2, s1, a->y[i - 1], n, 0);
    dy = s2;   /* the next layer reads s2 and writes s1 */
  }
}

/* Backward of one block; p->dx holds d(block output) and becomes d(block input).
 * dcond accumulates the gradient of the block's condition tokens. */
static void block_backward(rdt_model *m, int i, void *dcond) {
  rdt_plan *p = &m->plan;
  const rdt_block_params *w = &m->blocks[i];
  const rdt_block_act *a = &p->blk[i];
  k_backend *b = m->b;
  int B = m->cur_B, T = rdt_T(m), H = m->cfg.hidden_size, nh = m->cfg.num_heads, hd = rdt_hd(m);
  int N = B * T, Lc = i % 2 == 0 ? m->cur_L : m->cfg.img_cond_len, rows = B * Lc;
  const uint8_t *mask = i % 2 == 0 && m->cur_mask ? p->lang_mask : NULL;
  const void *cond = i % 2 == 0 ? p->lang_cond : p->img_cond;
  float scale = 1.0f / sqrtf((float)hd);
  size_t HH = (size_t)H * H;
  void *s0 = p->xs[3 * i], *s1 = p->xs[3 * i + 1], *s2 = p->xs[3 * i + 2];
  void *dx = p->dx, *d1 = p->d1, *d2 = p->d2, *d3 = p->d3;
  /* MLP */
  k_linear_backward(b, d1, rdt_g(m, w->fc2_w), rdt_g(m, w->fc2_b), dx, a->g, rdt_w(m, w->fc2_w), N, H, H, 0);
  k_gelu_backward(b, d2, d1, a->h, (size_t)N * H, 0);
  k_linear_backward(b, d1, rdt_g(m, w->fc1_w), rdt_g(m, w->fc1_b), d2, a->xn3, rdt_w(m, w->fc1_w), N, H, H, 0);
  k_rmsnorm_backward(b, dx, rdt_g(m, w->norm3), d1, s2, rdt_p(m, w->norm3), a->rstd3, N, H, 1);
  /* cross-attention: query side */
  k_linear_backward(b, d1, rdt_g(m, w->cproj_w), rdt_g(m, w->cproj_b), dx, a->catt, rdt_w(m, w->cproj_w), N,
                    H, H, 0);
  k_attention_backward(b, d2, p->dck, p->dcv, d1, a->cqn, a->ckn, a->cv, a->catt, a->clse, mask, B, T, Lc, nh,
                       hd, scale);
  k_rmsnorm_backward(b, d1, rdt_g(m, w->cq_norm), d2, a->cq_raw, rdt_p(m, w->cq_norm), a->rstd_cq, N * nh, hd, 0);
  k_linear_backward(b, d2, rdt_g(m, w->cq_w), rdt_g(m, w->cq_b), d1, a->xn2, rdt_w(m, w->cq_w), N, H, H, 0);
  k_rmsnorm_backward(b, dx, rdt_g(m, w->norm2), d2, s1, rdt_p(m, w->norm2), a->rstd2, N, H, 1);
  /* cross-attention: condition side (k = kv rows 0..H-1, v = rows H..2H-1) */
  k_rmsnorm_backward(b, p->dck_raw, rdt_g(m, w->ck_norm), p->dck, a->ck_raw, rdt_p(m, w->ck_norm), a->rstd_ck,
                     rows * nh, hd, 0);
  k_linear_backward(b, dcond, rdt_g(m, w->ckv_w), rdt_g(m, w->ckv_b), p->dck_raw, cond, rdt_w(m, w->ckv_w),
                    rows, H, H, 1);
  k_linear_backward(b, dcond, rdt_g(m, w->ckv_w + HH), rdt_g(m, w->ckv_b + H), p->dcv, cond,
                    rdt_w(m, w->ckv_w + HH), rows, H, H, 1);
  /* self-attention */
  k_linear_backward(b, d1, rdt_g(m, w->proj_w), rdt_g(m, w->proj_b), dx, a->att, rdt_w(m, w->proj_w), N, H, H, 0);
  k_attention_backward(b, d2, p->dk, p->dv, d1, a->qn, a->kn, a->v, a->att, a->lse, NULL, B, T, T, nh, hd, scale);
  k_rmsnorm_backward(b, d1, rdt_g(m, w->q_norm), d2, a->q_raw, rdt_p(m, w->q_norm), a->rstd_q, N * nh, hd, 0);
  k_linear_backward(b, d3, rdt_g(m, w->qkv_w), rdt_g(m, w->qkv_b), d1, a->xn1, rdt_w(m, w->qkv_w), N, H, H, 0);
  k_rmsnorm_backward(b, d1, rdt_g(m, w->k_norm), p->dk, a->k_raw, rdt_p(m, w->k_norm), a->rstd_k, N * nh, hd, 0);
  k_linear_backward(b, d3, rdt_g(m, w->qkv_w + HH), rdt_g(m, w->qkv_b + H), d1, a->xn1, rdt_w(m, w->qkv_w + HH),
                    N, H, H, 1);
  k_linear_backward(b, d3, rdt_g(m, w->qkv_w + 2 * HH), rdt_g(m, w->qkv_b + 2 * H), p->dv, a->xn1,
                    rdt_w(m, w->qkv_w + 2 * HH), N, H, H, 1);
  k_rmsnorm_backward(b, dx, rdt_g(m, w->norm1), d3, s0, rdt_p(m, w->norm1), a->rstd1, N, H, 1);
}

/* Backward of a condition stream: its position embedding and adaptor. */
static void condition_backward(rdt_model *m, const rdt_mlp_params *w, const rdt_mlp_act *a, const void *x,
                               void *dcond, int len, size_t pos) {
  rdt_plan *p = &m->plan;
  int B = m->cur_B, H = m->cfg.hidden_size;
  k_add_pos_backward(m->b, rdt_g(m, pos), dcond, B, len, H);
  mlp_backward(m, w, a, x, dcond, NULL, B * len, 0, p->dad1, p->dad2);
}

/* Backward of an embedder ([B, H] row `row` of the token gradient). */
static void embedder_backward(rdt_model *m, const rdt_mlp_params *w, const rdt_mlp_act *a, const void *x, int row) {
  rdt_plan *p = &m->plan;
  k_backend *b = m->b;
  int B = m->cur_B, T = rdt_T(m), H = m->cfg.hidden_size;
  k_copy2d(b, p->demb1, H, k_act_at(b, p->dx, (size_t)row * H), T * H, B, H, 0);
  mlp_backward(m, w, a, x, p->demb1, NULL, B, 1, p->demb2, p->d3);
}

/* Tell the gradient hook that [lo, hi) is final. */
static void grad_ready(rdt_model *m, size_t lo, size_t hi) {
  if (m->grad_hook && hi > lo) m->grad_hook(m->grad_hook_ctx, m->grads, lo, hi - lo);
}

void rdt_backward(rdt_model *m) {
  rdt_plan *p = &m->plan;
  const rdt_model_config *c = &m->cfg;
  k_backend *b = m->b;
  int B = m->cur_B, T = rdt_T(m), H = c->hidden_size, h = c->pred_horizon, D = c->action_dim;
  int N = B * T, Na = B * (1 + h);
  size_t as = k_act_size(b);
  /* final layer: only the action tokens have a gradient */
  k_memset0(b, p->dfout, (size_t)N * D * as);
  k_copy2d(b, k_act_at(b, p->dfout, 3 * D), T * D, p->dpred, h * D, B, h * D, 0);
  mlp_backward(m, &m->final_mlp, &p->fin, p->xf, p->dfout, p->d1, N, 0, p->d2, p->d3);
  k_rmsnorm_backward(b, p->dx, rdt_g(m, m->final_norm), p->d1, p->xs[3 * c->depth], rdt_p(m, m->final_norm),
                     p->rstdf, N, H, 0);
  /* blocks, last first; condition gradients accumulate over blocks */
  k_memset0(b, p->dlang_cond, (size_t)B * m->cur_L * H * as);
  k_memset0(b, p->dimg_cond, (size_t)B * c->img_cond_len * H * as);
  for (int i = c->depth - 1; i >= 0; i--) {
    if (p->ckpt) rdt_block_forward(m, i, 0);   /* recompute the block's internals (and K/V) */
    block_backward(m, i, i % 2 == 0 ? p->dlang_cond : p->dimg_cond);
    grad_ready(m, m->block_lo[i], m->block_hi[i]);
  }
  /* token embedding: x_pos_embed, t, ctrl_freq, state and action tokens */
  k_add_pos_backward(b, rdt_g(m, m->x_pos), p->dx, B, T, H);
  embedder_backward(m, &m->temb, &p->temb, p->t_freq, 0);
  embedder_backward(m, &m->femb, &p->femb, p->f_freq, 1);
  k_copy2d(b, p->d1, (1 + h) * H, k_act_at(b, p->dx, 2 * (size_t)H), T * H, B, (1 + h) * H, 0);
  mlp_backward(m, &m->state, &p->state, p->sa_in, p->d1, NULL, Na, 0, p->dad1, p->dad2);
  /* conditions */
  condition_backward(m, &m->lang, &p->lang, p->lang_in, p->dlang_cond, m->cur_L, m->lang_pos);
  condition_backward(m, &m->img, &p->img, p->img_in, p->dimg_cond, c->img_cond_len, m->img_pos);
  grad_ready(m, 0, m->block_lo[0]);
  grad_ready(m, m->block_hi[c->depth - 1], m->numel);
}
