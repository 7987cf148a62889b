/* model/rdt_params.c: the model object, its parameter layout, upstream
 * initialisation, and loading/saving by upstream state-dict names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "model/rdt_internal.h"

/* ================================================================ layout */

/* Index of name in a table, or -1. */
static int table_find(const rdt_param_info *t, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0) return i;
  return -1;
}

/* Offset of a tensor named by fmt with one int; it must be in the table. */
static size_t offset_of(const rdt_model *m, const char *fmt, int i) {
  char name[96];
  snprintf(name, sizeof name, fmt, i);
  int k = rdt_model_param_find(m, name);
  RDT_ASSERT(k >= 0);
  return m->table[k].offset;
}

/* Weight/bias offsets and sizes of a Linear stack.  Layer i is named by
 * layer_fmt with base + step * i (e.g. "img_adaptor.%d", 0, 2); depth 0 is one
 * bare Linear named layer_fmt itself. */
static void mlp_layout(const rdt_model *m, rdt_mlp_params *p, const char *layer_fmt, int depth, int base,
                       int step) {
  char layer[80], name[96];
  p->n = depth ? depth : 1;
  for (int i = 0; i < p->n; i++) {
    snprintf(layer, sizeof layer, layer_fmt, base + step * i);
    snprintf(name, sizeof name, "%s.weight", layer);
    int k = rdt_model_param_find(m, name);
    RDT_ASSERT(k >= 0);
    p->w[i] = m->table[k].offset;
    p->out[i] = (int)m->table[k].shape[0];
    p->in[i] = (int)m->table[k].shape[1];
    snprintf(name, sizeof name, "%s.bias", layer);
    p->b[i] = offset_of(m, name, 0);
  }
}

/* Per-block offsets by upstream name. */
static void block_layout(rdt_model *m, int i) {
  rdt_block_params *p = &m->blocks[i];
#define OFF(field, suffix) p->field = offset_of(m, "model.blocks.%d." suffix, i)
  OFF(norm1, "norm1.weight");
  OFF(qkv_w, "attn.qkv.weight");
  OFF(qkv_b, "attn.qkv.bias");
  OFF(q_norm, "attn.q_norm.weight");
  OFF(k_norm, "attn.k_norm.weight");
  OFF(proj_w, "attn.proj.weight");
  OFF(proj_b, "attn.proj.bias");
  OFF(cq_w, "cross_attn.q.weight");
  OFF(cq_b, "cross_attn.q.bias");
  OFF(ckv_w, "cross_attn.kv.weight");
  OFF(ckv_b, "cross_attn.kv.bias");
  OFF(cq_norm, "cross_attn.q_norm.weight");
  OFF(ck_norm, "cross_attn.k_norm.weight");
  OFF(cproj_w, "cross_attn.proj.weight");
  OFF(cproj_b, "cross_attn.proj.bias");
  OFF(norm2, "norm2.weight");
  OFF(fc1_w, "ffn.fc1.weight");
  OFF(fc1_b, "ffn.fc1.bias");
  OFF(fc2_w, "ffn.fc2.weight");
  OFF(fc2_b, "ffn.fc2.bias");
  OFF(norm3, "norm3.weight");
#undef OFF
}

/* Each block's parameters form one range of the flat buffer, the blocks in
 * order (the table lists them so; checked here, the gradient hook relies on it). */
static void block_ranges(rdt_model *m) {
  int depth = m->cfg.depth;
  m->block_lo = rdt_calloc(depth, sizeof *m->block_lo);
  m->block_hi = rdt_calloc(depth, sizeof *m->block_hi);
  size_t *count = rdt_calloc(depth, sizeof *count);
  for (int i = 0; i < depth; i++) m->block_lo[i] = m->numel;
  for (int k = 0; k < m->ntable; k++) {
    const rdt_param_info *t = &m->table[k];
    int i;
    if (sscanf(t->name, "model.blocks.%d.", &i) != 1 || i < 0 || i >= depth) continue;
    if (t->offset < m->block_lo[i]) m->block_lo[i] = t->offset;
    if (t->offset + t->numel > m->block_hi[i]) m->block_hi[i] = t->offset + t->numel;
    count[i] += t->numel;
  }
  for (int i = 0; i < depth; i++) {
    RDT_ASSERT(count[i] == m->block_hi[i] - m->block_lo[i]);
    RDT_ASSERT(i == 0 || m->block_lo[i] == m->block_hi[i - 1]);
  }
  free(count);
}

void rdt_model_set_grad_hook(rdt_model *m, rdt_grad_ready_fn fn, void *ctx) {
  m->grad_hook = fn, m->grad_hook_ctx = ctx;
}

rdt_model *rdt_model_new(k_backend *b, const rdt_model_config *cfg) {
  if (rdt_model_config_check(cfg) != 0) return NULL;
  rdt_model *m = rdt_calloc(1, sizeof *m);
  m->b = b;
  m->cfg = *cfg;
  m->cond_cache = 1;
  if (rdt_ddpm_init(&m->ddpm, cfg->num_train_timesteps, cfg->beta_schedule) != 0 ||
      rdt_dpm_init(&m->dpm, &m->ddpm, cfg->num_inference_timesteps) != 0) {
    rdt_model_free(m);
    return NULL;
  }
  m->ntable = rdt_param_table(cfg, &m->table);
  m->numel = rdt_param_total(m->table, m->ntable);
  m->params = k_alloc(b, m->numel * sizeof(float));
  m->wc = k_weight_copy(b, m->params, m->numel);
  m->x_pos = offset_of(m, "model.x_pos_embed", 0);
  m->lang_pos = offset_of(m, "model.lang_cond_pos_embed", 0);
  m->img_pos = offset_of(m, "model.img_cond_pos_embed", 0);
  mlp_layout(m, &m->temb, "model.t_embedder.mlp.%d", 2, 0, 2);
  mlp_layout(m, &m->femb, "model.freq_embedder.mlp.%d", 2, 0, 2);
  mlp_layout(m, &m->final_mlp, "model.final_layer.ffn_final.fc%d", 2, 1, 1);
  m->final_norm = offset_of(m, "model.final_layer.norm_final.weight", 0);
  mlp_layout(m, &m->lang, cfg->lang_adaptor.depth ? "lang_adaptor.%d" : "lang_adaptor",
             cfg->lang_adaptor.depth, 0, 2);
  mlp_layout(m, &m->img, cfg->img_adaptor.depth ? "img_adaptor.%d" : "img_adaptor",
             cfg->img_adaptor.depth, 0, 2);
  mlp_layout(m, &m->state, cfg->state_adaptor.depth ? "state_adaptor.%d" : "state_adaptor",
             cfg->state_adaptor.depth, 0, 2);
  m->blocks = rdt_calloc(cfg->depth, sizeof *m->blocks);
  for (int i = 0; i < cfg->depth; i++) block_layout(m, i);
  block_ranges(m);
  return m;
}

void rdt_model_free(rdt_model *m) {
  if (!m) return;
  k_graph_free(m->b, m->graph);
  rdt_plan_free(m);
  if (m->params) {
    k_weight_copy_free(m->b, m->wc, m->params);
    k_free(m->b, m->params);
  }
  if (m->grads) k_free(m->b, m->grads);
  rdt_ddpm_free(&m->ddpm);
  rdt_dpm_free(&m->dpm);
  free(m->blocks);
  free(m->block_lo);
  free(m->block_hi);
  free(m->table);
  free(m->cur_freqs);
  free(m);
}

const rdt_model_config *rdt_model_cfg(const rdt_model *m) { return &m->cfg; }
k_backend *rdt_model_backend(const rdt_model *m) { return m->b; }
int rdt_model_param_count(const rdt_model *m) { return m->ntable; }
const rdt_param_info *rdt_model_param(const rdt_model *m, int i) { return &m->table[i]; }
size_t rdt_model_numel(const rdt_model *m) { return m->numel; }
float *rdt_model_params(rdt_model *m) { return m->params; }
float *rdt_model_grads(rdt_model *m) {
  if (!m->grads) m->grads = k_alloc(m->b, m->numel * sizeof(float));   /* zero-filled */
  return m->grads;
}
void rdt_model_set_cond_cache(rdt_model *m, int on) { m->cond_cache = on; }
void rdt_model_set_checkpointing(rdt_model *m, int on) { m->checkpointing = on != 0; }

int rdt_model_param_find(const rdt_model *m, const char *name) { return table_find(m->table, m->ntable, name); }

void rdt_model_zero_grad(rdt_model *m) { k_memset0(m->b, rdt_model_grads(m), m->numel * sizeof(float)); }

void rdt_model_params_changed(rdt_model *m) {
  if (m->wc != (void *)m->params) k_weight_refresh(m->b, m->wc, m->params, m->numel);
}

void *rdt_model_compute_copy(rdt_model *m) { return m->wc != (void *)m->params ? m->wc : NULL; }

/* ================================================================ initialisation */

/* MAE's get_1d_sincos_pos_embed_from_grid for one position into out[dim]:
 * [sin(p w_0..), cos(p w_0..)], w_i = 1e4^(-i / (dim/2)). */
static void sincos_1d(double *out, int dim, double pos) {
  int half = dim / 2;
  for (int i = 0; i < half; i++) {
    double w = 1.0 / pow(10000.0, (double)i / half);
    out[i] += sin(pos * w);
    out[half + i] += cos(pos * w);
  }
}

/* Upstream get_multimodal_cond_pos_embed into rows [tokens, D] (added to the
 * zeroed output).  With embed_modality the first D/2 dims hold the sincos of
 * the modality index and positions use the last D/2; otherwise positions use
 * all D.  Image grids split the position dims evenly over axes longer than 1;
 * negative sizes get no position embedding along that axis. */
static void multimodal_pos(double *out, int D, const rdt_pos_config *p, int embed_modality) {
  int pos_dim = embed_modality ? D / 2 : D;
  size_t row = 0;
  for (int k = 0; k < p->n; k++) {
    const rdt_pos_modality *mod = &p->m[k];
    size_t count = 1;
    for (int a = 0; a < mod->ndim; a++) count *= (size_t)abs(mod->size[a]);
    int valid = 0;
    for (int a = 0; a < mod->ndim; a++) valid += mod->size[a] > 1;
    int dim_each = valid ? (pos_dim / valid) & ~1 : 0;
    for (size_t r = 0; r < count; r++, row++) {
      double *o = out + row * D;
      if (embed_modality) sincos_1d(o, D / 2, k);
      double *pe = o + D - pos_dim;
      if (mod->ndim == 1) {            /* a sequence: sincos of the index, or of 0 when negative */
        sincos_1d(pe, pos_dim, mod->size[0] > 0 ? (double)r : 0.0);
        continue;
      }
      size_t rest = r;                  /* grid coordinates, last axis fastest */
      int coord[RDT_POS_MAX_GRID], v = 0;
      for (int a = mod->ndim - 1; a >= 0; a--) {
        coord[a] = (int)(rest % (size_t)abs(mod->size[a]));
        rest /= (size_t)abs(mod->size[a]);
      }
      for (int a = 0; a < mod->ndim; a++)
        if (mod->size[a] > 1) sincos_1d(pe + (v++) * dim_each, dim_each, coord[a]);
    }
  }
}

/* A condition position embedding [len, D]: multimodal without the modality
 * part, or plain 1-D sincos over 0..len-1 when the config is None. */
static void cond_pos(double *out, int D, int len, const rdt_pos_config *p) {
  if (p->n > 0) {
    multimodal_pos(out, D, p, 0);
    return;
  }
  for (int r = 0; r < len; r++) sincos_1d(out + (size_t)r * D, D, r);
}

/* Fill a float array from doubles. */
static void store(float *dst, const double *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* Uniform in (-bound, bound). */
static void fill_uniform(float *x, size_t n, double bound, rdt_rng *r) {
  for (size_t i = 0; i < n; i++) x[i] = (float)((2.0 * rdt_rng_uniform(r) - 1.0) * bound);
}

/* Does s end with suffix? */
static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Initialise one tensor of the table as upstream does (see rdt.h). */
static void init_tensor(const rdt_model *m, const rdt_param_info *t, float *x, rdt_rng *r) {
  const rdt_model_config *c = &m->cfg;
  int H = c->hidden_size;
  const char *n = t->name;
  int inside_rdt = strncmp(n, "model.", 6) == 0;
  int is_weight = has_suffix(n, ".weight");
  if (strstr(n, "pos_embed")) {
    double *tmp = rdt_calloc(t->numel, sizeof(double));
    if (strcmp(n, "model.x_pos_embed") == 0) {
      rdt_pos_config xp = {.n = 4};
      const char *names[4] = {"timestep", "ctrl_freq", "state", "action"};
      for (int i = 0; i < 4; i++) {
        snprintf(xp.m[i].name, sizeof xp.m[i].name, "%s", names[i]);
        xp.m[i].ndim = 1;
        xp.m[i].size[0] = i < 3 ? 1 : c->pred_horizon;
      }
      multimodal_pos(tmp, H, &xp, 1);
    } else if (strcmp(n, "model.lang_cond_pos_embed") == 0) {
      cond_pos(tmp, H, c->max_lang_cond_len, &c->lang_pos);
    } else {
      cond_pos(tmp, H, c->img_cond_len, &c->img_pos);
    }
    store(x, tmp, t->numel);
    free(tmp);
  } else if (t->ndim == 1 && is_weight) {                 /* RmsNorm weights */
    for (size_t i = 0; i < t->numel; i++) x[i] = 1.0f;
  } else if (!inside_rdt) {                               /* adaptors: nn.Linear default */
    int fan_in = (int)(is_weight ? t->shape[1] : m->table[(t - m->table) - 1].shape[1]);
    fill_uniform(x, t->numel, 1.0 / sqrt((double)fan_in), r);
  } else if (strstr(n, "final_layer.ffn_final.fc2") || !is_weight) {
    memset(x, 0, t->numel * sizeof(float));               /* zero final projection, zero biases */
  } else if (strstr(n, "_embedder.mlp.")) {
    for (size_t i = 0; i < t->numel; i++) x[i] = (float)(0.02 * rdt_rng_normal(r));
  } else {                                                /* xavier_uniform */
    fill_uniform(x, t->numel, sqrt(6.0 / (double)(t->shape[0] + t->shape[1])), r);
  }
}

void rdt_model_init(rdt_model *m, uint64_t seed) {
  float *host = rdt_malloc(m->numel * sizeof(float));
  rdt_rng r;
  rdt_rng_seed(&r, seed, 0);
  for (int i = 0; i < m->ntable; i++) init_tensor(m, &m->table[i], host + m->table[i].offset, &r);
  k_upload(m->b, m->params, host, m->numel * sizeof(float));
  free(host);
  rdt_model_params_changed(m);
}

/* ================================================================ load and save */

/* A growing list of names for one kind of problem. */
typedef struct {
  char text[1400];
  int count;
} problem_list;

/* Append one item (the text is capped; the count is not). */
static void problem_add(problem_list *p, const char *fmt, ...) RDT_PRINTF(2, 3);
static void problem_add(problem_list *p, const char *fmt, ...) {
  size_t len = strlen(p->text);
  if (p->count++ > 0 && len + 2 < sizeof p->text) strcat(p->text, ", "), len += 2;
  va_list ap;
  va_start(ap, fmt);
  if (len < sizeof p->text) vsnprintf(p->text + len, sizeof p->text - len, fmt, ap);
  va_end(ap);
}

/* Is t a float tensor with the table's shape? */
static int shape_matches(const rdt_tensor *t, const rdt_param_info *p) {
  if (t->ndim != p->ndim) return 0;
  for (int d = 0; d < p->ndim; d++)
    if (t->shape[d] != p->shape[d]) return 0;
  return 1;
}

static int is_float_dtype(rdt_dtype t) {
  return t == RDT_F32 || t == RDT_BF16 || t == RDT_F16 || t == RDT_F64;
}

int rdt_param_check(const rdt_param_info *table, int n, const rdt_st *st) {
  problem_list missing = {{0}, 0}, unexpected = {{0}, 0}, shape = {{0}, 0};
  char a[96], b[96];
  for (int i = 0; i < n; i++) {
    const rdt_param_info *p = &table[i];
    const rdt_tensor *t = rdt_st_find(st, p->name);
    if (!t) {
      problem_add(&missing, "%s", p->name);
    } else if (!shape_matches(t, p) || !is_float_dtype(t->dtype)) {
      problem_add(&shape, "%s %s %s (expected %s)", p->name, rdt_dtype_name(t->dtype),
                  rdt_shape_str(t->ndim, t->shape, a, sizeof a), rdt_shape_str(p->ndim, p->shape, b, sizeof b));
    }
  }
  for (int i = 0; i < rdt_st_count(st); i++)
    if (table_find(table, n, rdt_st_get(st, i)->name) < 0) problem_add(&unexpected, "%s", rdt_st_get(st, i)->name);
  if (missing.count || unexpected.count || shape.count)
    return rdt_fail("%s: tensors do not match the RDT layout of the config: %d missing [%s]; "
                    "%d unexpected [%s]; %d wrong shape or dtype [%s]", rdt_st_path(st), missing.count,
                    missing.text, unexpected.count, unexpected.text, shape.count, shape.text);
  return 0;
}

int rdt_model_load_host(rdt_model *m, const rdt_st *st, float *host) {
  if (rdt_param_check(m->table, m->ntable, st) != 0)
    return rdt_fail_ctx("(hidden %d, depth %d)", m->cfg.hidden_size, m->cfg.depth);
  for (int i = 0; i < m->ntable; i++)
    rdt_st_to_f32(rdt_st_find(st, m->table[i].name), host + m->table[i].offset);
  return 0;
}

int rdt_model_load(rdt_model *m, const rdt_st *st, float *dst) {
  float *host = rdt_malloc(m->numel * sizeof(float));
  int rc = rdt_model_load_host(m, st, host);
  if (rc == 0) k_upload(m->b, dst ? dst : m->params, host, m->numel * sizeof(float));
  free(host);
  if (rc == 0 && !dst) rdt_model_params_changed(m);
  return rc;
}

int rdt_model_save_host(rdt_model *m, const float *host, const char *path, rdt_dtype dtype) {
  RDT_CHECK(dtype == RDT_F32 || dtype == RDT_BF16, "%s: weights are saved as F32 or BF16, not %s", path,
            rdt_dtype_name(dtype));
  const void *data = host;
  void *bf16 = NULL;
  if (dtype == RDT_BF16) {
    data = bf16 = rdt_malloc(m->numel * sizeof(uint16_t));
    rdt_convert(bf16, RDT_BF16, host, RDT_F32, m->numel);
  }
  size_t esize = rdt_dtype_size(dtype);
  rdt_st_writer *w = rdt_st_writer_new();
  rdt_st_writer_meta(w, "format", "pt");
  for (int i = 0; i < m->ntable; i++) {
    const rdt_param_info *p = &m->table[i];
    rdt_st_writer_add(w, p->name, dtype, p->ndim, p->shape, (const char *)data + p->offset * esize);
  }
  int rc = rdt_st_writer_save(w, path);
  rdt_st_writer_free(w);
  free(bf16);
  return rc;
}

int rdt_model_save(rdt_model *m, const float *src, const char *path, rdt_dtype dtype) {
  float *host = rdt_malloc(m->numel * sizeof(float));
  k_download(m->b, host, src ? src : m->params, m->numel * sizeof(float));
  int rc = rdt_model_save_host(m, host, path, dtype);
  free(host);
  return rc;
}
