/* model/bench_encoders.c: `rdt bench encoders` -- SigLIP images/s and T5
 * tokens/s on a backend, printed as one JSON object.
 *
 * With --vision_encoder / --text_encoder the real checkpoints run at full
 * depth.  Without them the encoders run with random weights at the real
 * widths (SigLIP so400m-patch14-384, T5 v1.1-XXL) written to a temporary
 * folder in the real dtype (bf16), but only a few layers deep; the full-depth
 * figures are extrapolated per layer (embeddings and final norms cost under
 * 1% of a layer) and marked so in the output.  T5 is measured with its weights
 * resident and streamed per layer (what a CPU machine too small for the F32
 * copy of the XXL runs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "core/flags.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "model/siglip.h"
#include "model/t5.h"

enum { SIGLIP_SO400M_LAYERS = 27, T5_XXL_LAYERS = 24 };

typedef struct {
  int repeat;
  rdt_jw *w;
} bench_ctx;

/* SigLIP so400m-patch14-384 sizes with `layers` layers. */
static siglip_config so400m(int layers) {
  return (siglip_config){1152, 4304, layers, 16, 3, 384, 14, 1e-6f};
}

/* T5 v1.1-XXL encoder sizes with `layers` blocks (vocab 32128). */
static t5_config xxl(int layers) {
  return (t5_config){4096, 64, 10240, layers, 64, 32, 128, 32128, 1e-6f, T5_GATED_GELU};
}

/* Seconds per call of siglip_encode on n random images (one warm-up pass). */
static double time_siglip(siglip *m, int n, int repeat) {
  const siglip_config *c = siglip_cfg(m);
  size_t per = (size_t)c->num_channels * c->image_size * c->image_size;
  float *img = rdt_malloc((size_t)n * per * sizeof *img);
  float *out = rdt_malloc((size_t)n * siglip_tokens(m) * c->hidden_size * sizeof *out);
  rdt_rng r;
  rdt_rng_seed(&r, 1, 0);
  for (size_t i = 0; i < (size_t)n * per; i++) img[i] = (float)(2.0 * rdt_rng_uniform(&r) - 1.0);
  siglip_encode(m, img, n, out);
  double t0 = rdt_now();
  for (int i = 0; i < repeat; i++) siglip_encode(m, img, n, out);
  double dt = (rdt_now() - t0) / repeat;
  free(img), free(out);
  return dt;
}

/* Seconds per t5_encode of B x L random ids (one warm-up pass); -1 on error. */
static double time_t5(t5 *m, int B, int L, int repeat) {
  const t5_config *c = t5_cfg(m);
  int32_t *ids = rdt_malloc((size_t)B * L * sizeof *ids);
  float *out = rdt_malloc((size_t)B * L * c->d_model * sizeof *out);
  rdt_rng r;
  rdt_rng_seed(&r, 2, 0);
  for (int i = 0; i < B * L; i++) ids[i] = (int32_t)rdt_rng_below(&r, (uint64_t)c->vocab_size);
  double dt = -1;
  if (t5_encode(m, ids, NULL, B, L, out) == 0) {
    double t0 = rdt_now();
    for (int i = 0; i < repeat; i++) t5_encode(m, ids, NULL, B, L, out);
    dt = (rdt_now() - t0) / repeat;
  }
  free(ids), free(out);
  return dt;
}

/* The SigLIP section: real weights from dir, or random so400m with `layers` layers in tmp. */
static int bench_siglip(k_backend *b, const bench_ctx *x, const char *dir, const char *tmp, int layers, int n) {
  char *path = NULL;
  int full = SIGLIP_SO400M_LAYERS;
  if (!dir) {
    siglip_config c = so400m(layers);
    path = rdt_path_join(tmp, "siglip");
    if (siglip_write_random(&c, path, RDT_BF16, 7) < 0) return -1;
  }
  siglip *m = siglip_load(b, dir ? dir : path, ENC_AUTO);
  if (path) rdt_rmtree(path);
  free(path);
  if (!m) return -1;
  const siglip_config *c = siglip_cfg(m);
  if (dir) full = layers = c->num_layers;
  double dt = time_siglip(m, n, x->repeat);
  double full_dt = dt * (double)full / (double)(layers > 0 ? layers : 1);
  rdt_jw *w = x->w;
  jw_key(w, "siglip");
  jw_obj(w);
  jw_key(w, "weights"), jw_str(w, dir ? dir : "random, so400m-patch14-384 widths, bf16 file");
  jw_key(w, "hidden"), jw_int(w, c->hidden_size);
  jw_key(w, "tokens_per_image"), jw_int(w, siglip_tokens(m));
  jw_key(w, "layers_run"), jw_int(w, layers);
  jw_key(w, "layers_full"), jw_int(w, full);
  jw_key(w, "extrapolated"), jw_bool(w, !dir);
  jw_key(w, "images_per_pass"), jw_int(w, n);
  jw_key(w, "seconds_per_pass"), jw_num(w, dt);
  jw_key(w, "images_per_s"), jw_num(w, n / full_dt);
  jw_key(w, "seconds_per_image"), jw_num(w, full_dt / n);
  jw_obj_end(w);
  siglip_free(m);
  return 0;
}

/* One T5 measurement (resident or streamed) as a JSON object member. */
static int bench_t5_mode(k_backend *b, const bench_ctx *x, const char *path, enc_mode mode, int layers,
                         int full, int B, int L) {
  t5 *m = t5_load(b, path, mode);
  if (!m) return -1;
  double dt = time_t5(m, B, L, x->repeat);
  t5_free(m);
  if (dt < 0) return -1;
  double full_dt = dt * (double)full / (double)layers;
  rdt_jw *w = x->w;
  jw_key(w, mode == ENC_STREAM ? "streamed" : "resident");
  jw_obj(w);
  jw_key(w, "seconds_per_pass"), jw_num(w, dt);
  jw_key(w, "tokens_per_s"), jw_num(w, (double)B * L / full_dt);
  jw_key(w, "seconds_per_pass_full_depth"), jw_num(w, full_dt);
  jw_obj_end(w);
  return 0;
}

/* The T5 section: real weights from dir, or random XXL with `layers` blocks in tmp. */
static int bench_t5(k_backend *b, const bench_ctx *x, const char *dir, const char *tmp, int layers, int B, int L) {
  char *path = NULL;
  t5_config c = xxl(layers);
  if (!dir) {
    path = rdt_path_join(tmp, "t5");
    if (t5_write_random(&c, path, RDT_BF16, 8) < 0) return -1;
  } else {
    t5 *probe = t5_load(b, dir, ENC_STREAM);   /* read the real depth cheaply */
    if (!probe) return -1;
    c = *t5_cfg(probe);
    layers = c.num_layers;
    t5_free(probe);
  }
  int full = dir ? layers : T5_XXL_LAYERS;
  rdt_jw *w = x->w;
  jw_key(w, "t5");
  jw_obj(w);
  jw_key(w, "weights"), jw_str(w, dir ? dir : "random, v1.1-XXL widths, bf16 file");
  jw_key(w, "d_model"), jw_int(w, c.d_model);
  jw_key(w, "layers_run"), jw_int(w, layers);
  jw_key(w, "layers_full"), jw_int(w, full);
  jw_key(w, "extrapolated"), jw_bool(w, !dir);
  jw_key(w, "sequences_per_pass"), jw_int(w, B);
  jw_key(w, "tokens_per_sequence"), jw_int(w, L);
  int rc = bench_t5_mode(b, x, dir ? dir : path, ENC_STREAM, layers, full, B, L);
  size_t linear = (size_t)layers * ((size_t)4 * c.d_model * c.num_heads * c.d_kv + (size_t)3 * c.d_model * c.d_ff);
  if (rc == 0 && !enc_choose_stream(b, ENC_AUTO, linear))   /* resident only where it fits */
    rc = bench_t5_mode(b, x, dir ? dir : path, ENC_RESIDENT, layers, full, B, L);
  jw_obj_end(w);
  if (path) rdt_rmtree(path);
  free(path);
  return rc;
}

int rdt_bench_encoders(int argc, char **argv) {
  const char *device = NULL, *vision = NULL, *text = NULL, *precision = NULL, *only = NULL;
  int64_t threads = 0, siglip_layers = 0, t5_layers = 0, images = 0, batch = 0, tokens = 0, repeat = 0;
  const rdt_flag flags[] = {
    {"device", RDT_FLAG_STR, &device, "cpu", "backend: cpu, cuda or cuda:N"},
    {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
    {"mixed_precision", RDT_FLAG_STR, &precision, "bf16", "CUDA activations: bf16 or no (f32)"},
    {"vision_encoder", RDT_FLAG_STR, &vision, NULL, "real SigLIP folder (default: random weights)"},
    {"text_encoder", RDT_FLAG_STR, &text, NULL, "real T5 folder (default: random weights)"},
    {"only", RDT_FLAG_STR, &only, NULL, "siglip or t5 (default both)"},
    {"siglip_layers", RDT_FLAG_INT, &siglip_layers, "2", "layers run with random weights (so400m has 27)"},
    {"t5_layers", RDT_FLAG_INT, &t5_layers, "1", "blocks run with random weights (XXL has 24)"},
    {"images", RDT_FLAG_INT, &images, "2", "images per SigLIP pass"},
    {"batch", RDT_FLAG_INT, &batch, "4", "sequences per T5 pass"},
    {"tokens", RDT_FLAG_INT, &tokens, "32", "tokens per sequence"},
    {"repeat", RDT_FLAG_INT, &repeat, "2", "timed passes after one warm-up"},
  };
  const char *summary = "SigLIP images/s and T5 tokens/s (JSON on stdout)";
  int prc = rdt_flags_parse("bench encoders", summary, flags, (int)(sizeof flags / sizeof *flags), argc, argv, NULL, NULL);
  if (prc == 1) return 0;
  if (prc < 0) rdt_die_last();
  if (siglip_layers < 1 || t5_layers < 1 || images < 1 || batch < 1 || tokens < 1 || repeat < 1)
    rdt_die("layer, image, batch, token and repeat counts must be positive");
  if (only && strcmp(only, "siglip") != 0 && strcmp(only, "t5") != 0) rdt_die("--only must be siglip or t5");
  k_backend *b = k_open(device, (int)threads);
  if (!b) rdt_die_last();
  if (k_kind_of(b) == K_CUDA && k_set_act_dtype(b, strcmp(precision, "no") != 0 ? RDT_BF16 : RDT_F32) < 0) rdt_die_last();

  const char *base = getenv("TMPDIR");
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s/rdt-bench-encoders-%d", base && *base ? base : "/tmp", (int)getpid());
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "bench"), jw_str(&w, "encoders");
  jw_key(&w, "backend"), jw_str(&w, k_name(b));
  jw_key(&w, "threads"), jw_int(&w, k_threads(b));
  jw_key(&w, "activations"), jw_str(&w, rdt_dtype_name(k_act_dtype(b)));
  bench_ctx x = {(int)repeat, &w};
  int rc = 0;
  if (!only || strcmp(only, "siglip") == 0) rc = bench_siglip(b, &x, vision, tmp, (int)siglip_layers, (int)images);
  if (rc == 0 && (!only || strcmp(only, "t5") == 0))
    rc = bench_t5(b, &x, text, tmp, (int)t5_layers, (int)batch, (int)tokens);
  jw_obj_end(&w);
  rdt_rmtree(tmp);
  k_close(b);
  if (rc < 0) rdt_die_last();
  char *json = jw_finish(&w);
  printf("%s\n", json);
  free(json);
  return 0;
}
