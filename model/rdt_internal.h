/* model/rdt_internal.h: the model object and its activation plan, shared by
 * model/rdt_params.c, rdt_forward.c and rdt_backward.c (not a public header). */
#ifndef RDT_MODEL_RDT_INTERNAL_H
#define RDT_MODEL_RDT_INTERNAL_H

#include "model/diffusion.h"
#include "model/rdt.h"

#define RDT_NORM_EPS 1e-6f
#define RDT_FREQ_DIM 256       /* TimestepEmbedder frequency_embedding_size */
#define RDT_MAX_ADAPTOR 16

/* Offsets (in floats) of one block's parameters. */
typedef struct {
  size_t norm1, qkv_w, qkv_b, q_norm, k_norm, proj_w, proj_b;
  size_t cq_w, cq_b, ckv_w, ckv_b, cq_norm, ck_norm, cproj_w, cproj_b;
  size_t norm2, fc1_w, fc1_b, fc2_w, fc2_b, norm3;
} rdt_block_params;

/* Offsets of a Linear stack (adaptor or embedder MLP): weight and bias per layer. */
typedef struct {
  int n;
  size_t w[RDT_MAX_ADAPTOR], b[RDT_MAX_ADAPTOR];
  int in[RDT_MAX_ADAPTOR], out[RDT_MAX_ADAPTOR];
} rdt_mlp_params;

/* One block's activations.  In an inference plan the query-side buffers of
 * all blocks alias one set; the condition K/V stay per block (the cache). */
typedef struct {
  void *xn1, *q_raw, *k_raw, *v, *qn, *kn, *att;
  float *rstd1, *rstd_q, *rstd_k, *lse;
  void *xn2, *cq_raw, *cqn, *catt;
  float *rstd2, *rstd_cq, *clse;
  void *ck_raw, *ckn, *cv;           /* condition side [B * Lc, H] */
  float *rstd_ck;
  void *xn3, *h, *g;
  float *rstd3;
} rdt_block_act;

/* A Linear stack's activations: y[i] = layer i output, g[i] = act(y[i-1]). */
typedef struct {
  void *y[RDT_MAX_ADAPTOR], *g[RDT_MAX_ADAPTOR];
} rdt_mlp_act;

typedef struct {
  int B, L;            /* capacity */
  int train;           /* every activation kept for a backward pass */
  int ckpt;            /* training plan with recomputation: block internals shared */
  int nbuf;            /* buffers carved (0: no plan yet) */
  void *arena;         /* one backend allocation holding every buffer */
  size_t bytes;        /* its size */
  /* inputs */
  void *lang_in, *img_in, *sa_in, *state_in, *amask_in;
  uint8_t *lang_mask;
  /* condition stage */
  rdt_mlp_act lang, img, state, temb, femb, fin;
  void *t_freq, *f_freq;
  void *lang_cond, *img_cond;        /* adaptor outputs + pos embeds */
  /* trunk */
  void **xs;                         /* 3 * depth + 1 residual states [B, T, H] */
  rdt_block_act *blk;
  void *tmp;                         /* sublayer outputs [B, T, H] */
  void *xf;                          /* final norm output; fin.y[1] = final output */
  float *rstdf;
  /* loss and sampling */
  void *gt, *noise, *xt, *pred, *m_prev, *mix_tmp;
  /* backward */
  void *dx, *d1, *d2, *d3, *dk, *dv, *dfout, *dpred;
  void *dck, *dck_raw, *dcv, *dlang_cond, *dimg_cond, *dad1, *dad2, *demb1, *demb2;
} rdt_plan;

struct rdt_model {
  k_backend *b;
  rdt_model_config cfg;
  rdt_param_info *table;
  int ntable;
  size_t numel;
  float *params, *grads;             /* device F32 master and gradient */
  void *wc;                          /* compute copy of params (== params on CPU F32) */
  size_t x_pos, lang_pos, img_pos;   /* offsets of the position embeddings */
  rdt_mlp_params temb, femb, lang, img, state, final_mlp;
  size_t final_norm;
  rdt_block_params *blocks;
  rdt_ddpm ddpm;
  rdt_dpm dpm;
  int cond_cache;
  int checkpointing;                 /* rdt_model_set_checkpointing */
  size_t *block_lo, *block_hi;       /* each block's parameters: [lo, hi) in floats */
  rdt_grad_ready_fn grad_hook;       /* rdt_model_set_grad_hook */
  void *grad_hook_ctx;
  rdt_plan plan;
  int cur_B, cur_L;                  /* batch of the last call */
  int cur_mask;                      /* the last call had a language mask */
  float *cur_freqs;                  /* its control frequencies [cur_B] (host) */
  int plan_gen;                      /* counts plan (re)builds */
  /* The denoising loop recorded as a graph (CUDA, cached conditions): the
   * graph, the key of what it was recorded for, and the key last seen. */
  void *graph;
  uint64_t graph_key, graph_seen;
};

/* Geometry helpers. */
static inline int rdt_T(const rdt_model *m) { return m->cfg.pred_horizon + 3; }
static inline int rdt_hd(const rdt_model *m) { return m->cfg.hidden_size / m->cfg.num_heads; }

/* Compute copy of the weight at float offset off; its master and gradient. */
static inline const void *rdt_w(const rdt_model *m, size_t off) { return k_act_at(m->b, m->wc, off); }
static inline const float *rdt_p(const rdt_model *m, size_t off) { return m->params + off; }
static inline float *rdt_g(const rdt_model *m, size_t off) { return m->grads + off; }

/* rdt_forward.c */
int rdt_plan_ensure(rdt_model *m, int B, int L, int train);
void rdt_plan_free(rdt_model *m);
int rdt_check_batch(const rdt_model *m, const rdt_batch *in);
void rdt_upload_batch(rdt_model *m, const rdt_batch *in);
void rdt_conditions(rdt_model *m);
void rdt_set_actions(rdt_model *m, const void *actions);
void rdt_trunk(rdt_model *m, const float *t_host, void *pred);
/* Block i of the trunk (its K/V first, with checkpointing); chained: its
 * norm1 was made by the previous block and it makes the next one's (the
 * trunk's pass), else it makes its own and touches nothing of the next
 * block (a recomputation). */
void rdt_block_forward(rdt_model *m, int i, int chained);
/* rdt_backward.c */
void rdt_backward(rdt_model *m);

#endif
