/* model/cmd_predict.c: `rdt predict` -- run the model on inputs from a
 * safetensors file (upstream RDTRunner argument names) and write every output
 * to another, for parity checks against other implementations (docs/PREDICT.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/log.h"
#include "model/rdt_cmd.h"

typedef enum { MODE_FORWARD, MODE_SAMPLE, MODE_LOSS } predict_mode;

/* One expected input: name, dtype class and shape pattern.  Shape entries:
 * 'B' batch, 'L' language length, 'I' img_cond_len, 'H' horizon, 'D' state dim,
 * 'l' lang_token_dim, 'i' img_token_dim, '1' one. */
typedef struct {
  const char *name;
  const char *shape;
  int kind;            /* 0 F32, 1 U8/BOOL mask, 2 I64 */
  unsigned modes;      /* bit per predict_mode */
} input_spec;

#define ALL 7u
static const input_spec inputs[] = {
  {"lang_tokens", "BLl", 0, ALL},
  {"lang_attn_mask", "BL", 1, ALL},
  {"img_tokens", "BIi", 0, ALL},
  {"state_tokens", "B1D", 0, ALL},
  {"action_mask", "B1D", 0, ALL},
  {"ctrl_freqs", "B", 0, ALL},
  {"noisy_action", "BHD", 0, 1u << MODE_FORWARD},
  {"timesteps", "B", 2, 1u << MODE_FORWARD | 1u << MODE_LOSS},
  {"noise", "BHD", 0, 1u << MODE_SAMPLE | 1u << MODE_LOSS},
  {"action_gt", "BHD", 0, 1u << MODE_LOSS},
};
#define NINPUTS ((int)(sizeof inputs / sizeof inputs[0]))

/* Collected problems, reported together. */
typedef struct {
  char text[1800];
  int count;
} problems;

static void problem(problems *p, const char *fmt, ...) RDT_PRINTF(2, 3);
static void problem(problems *p, const char *fmt, ...) {
  size_t len = strlen(p->text);
  if (p->count++ && len + 2 < sizeof p->text) strcat(p->text, "; "), len += 2;
  va_list ap;
  va_start(ap, fmt);
  if (len < sizeof p->text) vsnprintf(p->text + len, sizeof p->text - len, fmt, ap);
  va_end(ap);
}

/* The value of one shape letter (-1: B or L not known yet). */
static int64_t dim_value(char c, const rdt_model_config *cfg, int64_t B, int64_t L) {
  switch (c) {
    case 'B': return B;
    case 'L': return L;
    case 'I': return cfg->img_cond_len;
    case 'H': return cfg->pred_horizon;
    case 'D': return cfg->state_token_dim;
    case 'l': return cfg->lang_token_dim;
    case 'i': return cfg->img_token_dim;
    default: return 1;
  }
}

/* The expected shape of spec as text ("[B=2, 64, 128]"). */
static void expected_shape(const input_spec *s, const rdt_model_config *cfg, int64_t B, int64_t L, char *buf,
                           size_t len) {
  size_t n = 0;
  n += snprintf(buf + n, len - n, "[");
  for (int d = 0; s->shape[d] && n < len; d++) {
    int64_t v = dim_value(s->shape[d], cfg, B, L);
    const char *sep = d ? ", " : "";
    if (s->shape[d] == 'B' || s->shape[d] == 'L') n += snprintf(buf + n, len - n, "%s%c=%lld", sep, s->shape[d], (long long)v);
    else n += snprintf(buf + n, len - n, "%s%lld", sep, (long long)v);
  }
  if (n < len) snprintf(buf + n, len - n, "]");
}

/* Check every input of mode against the config: names, dtypes, shapes and
 * values, all problems in one error.  B and L come from the inputs. */
static int check_inputs(const rdt_st *st, predict_mode mode, const rdt_model_config *cfg, int *B, int *L) {
  problems p = {{0}, 0};
  int64_t nb = -1, nl = -1;
  /* batch and language length from whichever tensors carry them */
  for (int i = 0; i < NINPUTS; i++) {
    const rdt_tensor *t = rdt_st_find(st, inputs[i].name);
    if (!t || !(inputs[i].modes >> mode & 1) || t->ndim != (int)strlen(inputs[i].shape)) continue;
    if (nb < 0) nb = t->shape[0];
    if (nl < 0 && inputs[i].shape[1] == 'L') nl = t->shape[1];
  }
  char want[96], got[96];
  for (int i = 0; i < NINPUTS; i++) {
    const input_spec *s = &inputs[i];
    if (!(s->modes >> mode & 1)) continue;
    const rdt_tensor *t = rdt_st_find(st, s->name);
    if (!t) {
      expected_shape(s, cfg, nb, nl, want, sizeof want);
      problem(&p, "missing %s %s", s->name, want);
      continue;
    }
    int dtype_ok = s->kind == 0 ? t->dtype == RDT_F32
                 : s->kind == 1 ? (t->dtype == RDT_U8 || t->dtype == RDT_BOOL) : t->dtype == RDT_I64;
    if (!dtype_ok)
      problem(&p, "%s has dtype %s, expected %s", s->name, rdt_dtype_name(t->dtype),
              s->kind == 0 ? "F32" : s->kind == 1 ? "U8 or BOOL" : "I64");
    int shape_ok = t->ndim == (int)strlen(s->shape);
    for (int d = 0; shape_ok && d < t->ndim; d++) shape_ok = t->shape[d] == dim_value(s->shape[d], cfg, nb, nl);
    if (!shape_ok) {
      expected_shape(s, cfg, nb, nl, want, sizeof want);
      problem(&p, "%s has shape %s, expected %s", s->name, rdt_shape_str(t->ndim, t->shape, got, sizeof got), want);
    } else if (dtype_ok && s->kind == 2) {
      for (int64_t k = 0; k < t->shape[0]; k++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + k * sizeof v, sizeof v);   /* the file may not align it */
        if (v < 0 || v >= cfg->num_train_timesteps) {
          problem(&p, "%s[%lld] = %lld is outside [0, %d)", s->name, (long long)k, (long long)v,
                  cfg->num_train_timesteps);
          break;
        }
      }
    } else if (dtype_ok && s->kind == 1) {
      const uint8_t *v = t->data;
      for (int64_t k = 0; k < rdt_numel(t); k++)
        if (v[k] > 1) {
          problem(&p, "%s holds %d (expected 0 or 1)", s->name, v[k]);
          break;
        }
    }
  }
  for (int i = 0; i < rdt_st_count(st); i++) {
    const char *name = rdt_st_get(st, i)->name;
    int known = 0;
    for (int k = 0; k < NINPUTS; k++) known |= strcmp(name, inputs[k].name) == 0 && (inputs[k].modes >> mode & 1);
    if (!known) problem(&p, "unexpected input %s", name);
  }
  if (nb < 1) problem(&p, "batch size %lld: no usable input gives a batch of at least 1", (long long)nb);
  if (nl > cfg->max_lang_cond_len || nl == 0)
    problem(&p, "language length %lld must be in 1..%d", (long long)nl, cfg->max_lang_cond_len);
  if (p.count) return rdt_fail("%s: %d problem(s) with the inputs for this mode: %s", rdt_st_path(st), p.count, p.text);
  *B = (int)nb, *L = (int)nl;
  return 0;
}

/* Aligned copies of the inputs (a file's data offsets need not be aligned). */
typedef struct {
  void *v[NINPUTS];
} input_copies;

/* A malloc'd copy of an input tensor (already checked), kept in c. */
static void *in_data(const rdt_st *st, input_copies *c, const char *name) {
  const rdt_tensor *t = rdt_st_find(st, name);
  for (int i = 0; i < NINPUTS; i++)
    if (strcmp(inputs[i].name, name) == 0) {
      c->v[i] = rdt_malloc(t->nbytes + 1);
      memcpy(c->v[i], t->data, t->nbytes);
      return c->v[i];
    }
  return NULL;
}

/* A host output tensor kept until the writer saves. */
typedef struct {
  int n;
  float **data;
} outputs;

/* Add an F32 output of the given shape; returns its buffer. */
static float *add_output(rdt_st_writer *w, outputs *o, const char *name, int ndim, const int64_t *shape) {
  size_t n = (size_t)rdt_shape_numel(ndim, shape);
  o->data = rdt_realloc(o->data, sizeof *o->data * (o->n + 1));
  float *buf = o->data[o->n++] = rdt_malloc(n * sizeof(float) + 1);
  if (rdt_st_writer_add(w, name, RDT_F32, ndim, shape, buf) != 0) rdt_die("output %s written twice", name);
  return buf;
}

/* The adaptor outputs of the last call. */
static void add_intermediates(rdt_model *m, rdt_st_writer *w, outputs *o, int B, int L) {
  const rdt_model_config *c = rdt_model_cfg(m);
  struct { const char *name; int64_t rows; } it[3] = {
    {"lang_cond", L}, {"img_cond", c->img_cond_len}, {"state_action_traj", 1 + c->pred_horizon}};
  for (int i = 0; i < 3; i++) {
    int64_t shape[3] = {B, it[i].rows, c->hidden_size};
    float *buf = add_output(w, o, it[i].name, 3, shape);
    if (rdt_model_activation(m, it[i].name, buf, (size_t)rdt_shape_numel(3, shape)) != 0) rdt_die_last();
  }
}

/* Every parameter gradient as grad.<name>. */
static void add_grads(rdt_model *m, rdt_st_writer *w, outputs *o) {
  size_t n = rdt_model_numel(m);
  float *g = rdt_malloc(n * sizeof(float));
  k_download(rdt_model_backend(m), g, rdt_model_grads(m), n * sizeof(float));
  char name[128];
  for (int i = 0; i < rdt_model_param_count(m); i++) {
    const rdt_param_info *t = rdt_model_param(m, i);
    snprintf(name, sizeof name, "grad.%s", t->name);
    float *buf = add_output(w, o, name, t->ndim, t->shape);
    memcpy(buf, g + t->offset, t->numel * sizeof(float));
  }
  free(g);
}

int rdt_cmd_predict(int argc, char **argv) {
  const char *pretrained = NULL, *config = NULL, *in_path = NULL, *out_path = NULL, *mode_s = NULL;
  const char *device = NULL, *precision = NULL;
  int grads = 0, intermediates = 0, no_cache = 0, cpu_bf16 = 0;
  int64_t threads = 0;
  rdt_flag flags[] = {
    {"pretrained", RDT_FLAG_STR, &pretrained, NULL, "weights: .safetensors, pytorch_model.bin, shard index or folder"},
    {"config", RDT_FLAG_STR, &config, NULL, "model config (default: the config.json beside the weights)"},
    {"inputs", RDT_FLAG_STR, &in_path, NULL, "input tensors (.safetensors, upstream RDTRunner argument names)"},
    {"output", RDT_FLAG_STR, &out_path, NULL, "output .safetensors (written atomically)"},
    {"mode", RDT_FLAG_STR, &mode_s, "forward", "forward, sample or loss"},
    {"device", RDT_FLAG_STR, &device, "cpu", "cpu or cuda[:N]"},
    {"mixed_precision", RDT_FLAG_STR, &precision, "bf16", "CUDA activation dtype: bf16 or no (fp32); CPU is fp32"},
    {"cpu_bf16", RDT_FLAG_BOOL, &cpu_bf16, "false",
     "cpu: round activations to bf16 where CUDA stores them (the reference for --device cuda in bf16)"},
    {"grads", RDT_FLAG_BOOL, &grads, "false", "mode loss: also write grad.<parameter> for every parameter"},
    {"intermediates", RDT_FLAG_BOOL, &intermediates, "false", "also write lang_cond, img_cond, state_action_traj"},
    {"no_cache", RDT_FLAG_BOOL, &no_cache, "false", "mode sample: recompute the conditions every step"},
    {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
  };
  rdt_overrides ov;
  rdt_cmd_flags(argv[0], "Run RDT on explicit inputs and write every output (parity checks; docs/PREDICT.md).",
                flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, &ov, NULL);
  if (!pretrained || !in_path || !out_path) rdt_die("rdt predict needs --pretrained, --inputs and --output");
  predict_mode mode = strcmp(mode_s, "forward") == 0 ? MODE_FORWARD
                    : strcmp(mode_s, "sample") == 0  ? MODE_SAMPLE
                    : strcmp(mode_s, "loss") == 0    ? MODE_LOSS
                                                     : (rdt_die("--mode must be forward, sample or loss, not '%s'", mode_s), 0);
  if (grads && mode != MODE_LOSS) rdt_die("--grads needs --mode loss");
  rdt_model_config cfg;
  if (rdt_cmd_model_config(config, &ov, pretrained, &cfg) != 0) rdt_die_last();
  rdt_st *in = rdt_st_open(in_path);
  if (!in) rdt_die_last();
  int B = 0, L = 0;
  if (check_inputs(in, mode, &cfg, &B, &L) != 0) rdt_die_last();
  rdt_st *wst = rdt_st_open(pretrained);
  if (!wst) rdt_die_last();
  k_backend *b = rdt_cmd_backend(device, (int)threads, precision);
  if (!b) rdt_die_last();
  if (cpu_bf16 && k_kind_of(b) != K_CPU)
    rdt_die("--cpu_bf16 is a CPU mode (the reference for --device cuda --mixed_precision bf16), not for %s", k_name(b));
  if (cpu_bf16 && k_set_act_rounding(b, RDT_BF16) != 0) rdt_die_last();
  rdt_model *m = rdt_model_new(b, &cfg);
  if (!m || rdt_model_load(m, wst, NULL) != 0) rdt_die_last();
  rdt_st_close(wst);
  rdt_model_set_cond_cache(m, !no_cache);

  input_copies ic = {{0}};
  rdt_batch batch = {.B = B, .L = L, .lang_tokens = in_data(in, &ic, "lang_tokens"),
                     .lang_mask = in_data(in, &ic, "lang_attn_mask"), .img_tokens = in_data(in, &ic, "img_tokens"),
                     .state_tokens = in_data(in, &ic, "state_tokens"), .action_mask = in_data(in, &ic, "action_mask"),
                     .ctrl_freqs = in_data(in, &ic, "ctrl_freqs")};
  rdt_st_writer *w = rdt_st_writer_new();
  outputs o = {0, NULL};
  int64_t chunk[3] = {B, cfg.pred_horizon, cfg.action_dim};
  rdt_st_writer_meta(w, "mode", mode_s);
  rdt_st_writer_meta(w, "device", k_name(b));
  rdt_st_writer_meta(w, "activations", cpu_bf16 ? "F32 rounded to BF16" : rdt_dtype_name(k_act_dtype(b)));
  int rc = 0;
  if (mode == MODE_FORWARD) {
    rc = rdt_model_forward(m, &batch, in_data(in, &ic, "noisy_action"), in_data(in, &ic, "timesteps"),
                           add_output(w, &o, "pred", 3, chunk));
  } else if (mode == MODE_SAMPLE) {
    rc = rdt_model_sample(m, &batch, in_data(in, &ic, "noise"), add_output(w, &o, "action_pred", 3, chunk));
  } else {
    float *loss = add_output(w, &o, "loss", 0, chunk);
    if (grads) rdt_model_zero_grad(m);
    rc = rdt_model_loss(m, &batch, in_data(in, &ic, "action_gt"), in_data(in, &ic, "noise"), in_data(in, &ic, "timesteps"), grads,
                        1.0f, loss);
    if (rc == 0) rdt_info("loss %.9g", *loss);
  }
  if (rc != 0) rdt_die_last();
  if (intermediates) add_intermediates(m, w, &o, B, L);
  if (grads) add_grads(m, w, &o);
  if (rdt_st_writer_save(w, out_path) != 0) rdt_die_last();
  rdt_info("wrote %s (mode %s, batch %d, language length %d, %s)", out_path, mode_s, B, L, k_name(b));
  rdt_st_writer_free(w);
  for (int i = 0; i < o.n; i++) free(o.data[i]);
  free(o.data);
  for (int i = 0; i < NINPUTS; i++) free(ic.v[i]);
  rdt_model_free(m);
  k_close(b);
  rdt_st_close(in);
  rdt_overrides_free(&ov);
  return 0;
}
