/* model/bench_model.c: `rdt bench policy` -- latency of one action chunk
 * (rdt_model_sample: num_inference_timesteps denoising steps) with condition
 * caching on and off, on random weights; prints one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/rng.h"
#include "model/rdt_cmd.h"

/* Median of n values (sorts them). */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Random host floats ~U(-1, 1). */
static float *random_floats(size_t n, rdt_rng *r) {
  float *x = rdt_malloc(n * sizeof(float) + 1);
  for (size_t i = 0; i < n; i++) x[i] = (float)(2 * rdt_rng_uniform(r) - 1);
  return x;
}

/* Time `repeat` samples after `warmup` untimed ones; per-run seconds into t. */
static void time_sample(rdt_model *m, const rdt_batch *in, const float *noise, float *out, int warmup, int repeat,
                        double *t) {
  k_backend *b = rdt_model_backend(m);
  for (int i = 0; i < warmup + repeat; i++) {
    double t0 = rdt_now();
    if (rdt_model_sample(m, in, noise, out) != 0) rdt_die_last();
    k_sync(b);
    if (i >= warmup) t[i - warmup] = rdt_now() - t0;
  }
}

/* One JSON member with the median and every run in milliseconds. */
static void write_times(rdt_jw *w, const char *key, double *t, int n) {
  jw_key(w, key);
  jw_obj(w);
  jw_key(w, "runs_ms");
  jw_arr(w);
  for (int i = 0; i < n; i++) jw_num(w, t[i] * 1e3);
  jw_arr_end(w);
  jw_key(w, "median_ms");
  jw_num(w, median(t, n) * 1e3);
  jw_obj_end(w);
}

int rdt_bench_policy(int argc, char **argv) {
  const char *config = NULL, *device = NULL, *precision = NULL;
  int64_t batch = 1, threads = 0, repeat = 3, warmup = 1, lang_len = 32, seed = 0;
  int no_cache = 0;
  rdt_flag flags[] = {
    {"config", RDT_FLAG_STR, &config, NULL, "model config (YAML with dotted overrides, or config.json)"},
    {"batch", RDT_FLAG_INT, &batch, "1", "batch size (environments per call)"},
    {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
    {"no_cache", RDT_FLAG_BOOL, &no_cache, "false", "only measure without condition caching"},
    {"device", RDT_FLAG_STR, &device, "cpu", "cpu or cuda[:N]"},
    {"mixed_precision", RDT_FLAG_STR, &precision, "bf16", "CUDA activation dtype: bf16 or no"},
    {"lang_len", RDT_FLAG_INT, &lang_len, "32", "language tokens per sample"},
    {"repeat", RDT_FLAG_INT, &repeat, "3", "timed runs per setting"},
    {"warmup", RDT_FLAG_INT, &warmup, "1", "untimed runs first"},
    {"seed", RDT_FLAG_INT, &seed, "0", "seed of the random weights and inputs"},
  };
  rdt_overrides ov;
  rdt_cmd_flags("bench policy", "Latency of one action chunk (all denoising steps) on random weights.", flags,
                (int)(sizeof flags / sizeof flags[0]), argc, argv, &ov, NULL);
  if (!config) rdt_die("rdt bench policy needs --config");
  if (batch < 1 || repeat < 1 || warmup < 0) rdt_die("--batch and --repeat must be positive, --warmup >= 0");
  rdt_model_config cfg;
  if (rdt_cmd_model_config(config, &ov, NULL, &cfg) != 0) rdt_die_last();
  if (lang_len < 1 || lang_len > cfg.max_lang_cond_len) rdt_die("--lang_len must be in 1..%d", cfg.max_lang_cond_len);
  k_backend *b = rdt_cmd_backend(device, (int)threads, precision);
  if (!b) rdt_die_last();
  rdt_model *m = rdt_model_new(b, &cfg);
  if (!m) rdt_die_last();
  rdt_model_init(m, (uint64_t)seed);

  int B = (int)batch, L = (int)lang_len, D = cfg.state_token_dim;
  rdt_rng r;
  rdt_rng_seed(&r, (uint64_t)seed, 1);
  size_t chunk = (size_t)B * cfg.pred_horizon * cfg.action_dim;
  float *lang = random_floats((size_t)B * L * cfg.lang_token_dim, &r);
  float *img = random_floats((size_t)B * cfg.img_cond_len * cfg.img_token_dim, &r);
  float *state = random_floats((size_t)B * D, &r), *noise = random_floats(chunk, &r);
  float *amask = rdt_malloc(sizeof(float) * B * D), *freqs = rdt_malloc(sizeof(float) * B);
  float *out = rdt_malloc(sizeof(float) * chunk);
  for (int i = 0; i < B * D; i++) amask[i] = 1.0f;
  for (int i = 0; i < B; i++) freqs[i] = 20.0f;
  rdt_batch in = {.B = B, .L = L, .lang_tokens = lang, .lang_mask = NULL, .img_tokens = img,
                  .state_tokens = state, .action_mask = amask, .ctrl_freqs = freqs};
  double *cached = rdt_malloc(sizeof(double) * repeat), *uncached = rdt_malloc(sizeof(double) * repeat);
  if (!no_cache) {
    rdt_model_set_cond_cache(m, 1);
    time_sample(m, &in, noise, out, (int)warmup, (int)repeat, cached);
  }
  rdt_model_set_cond_cache(m, 0);
  time_sample(m, &in, noise, out, no_cache ? (int)warmup : 0, (int)repeat, uncached);

  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "bench"), jw_str(&w, "policy");
  jw_key(&w, "config"), jw_str(&w, config);
  jw_key(&w, "device"), jw_str(&w, k_name(b));
  jw_key(&w, "threads"), jw_int(&w, k_threads(b));
  jw_key(&w, "activation_dtype"), jw_str(&w, rdt_dtype_name(k_act_dtype(b)));
  jw_key(&w, "parameters"), jw_int(&w, (int64_t)rdt_model_numel(m));
  jw_key(&w, "hidden_size"), jw_int(&w, cfg.hidden_size);
  jw_key(&w, "depth"), jw_int(&w, cfg.depth);
  jw_key(&w, "batch"), jw_int(&w, B);
  jw_key(&w, "lang_len"), jw_int(&w, L);
  jw_key(&w, "img_tokens"), jw_int(&w, cfg.img_cond_len);
  jw_key(&w, "denoising_steps"), jw_int(&w, cfg.num_inference_timesteps);
  jw_key(&w, "activation_mib"), jw_num(&w, rdt_model_activation_bytes(m) / 1048576.0);
  if (!no_cache) write_times(&w, "cached", cached, (int)repeat);
  write_times(&w, "uncached", uncached, (int)repeat);
  jw_obj_end(&w);
  char *text = jw_finish(&w);
  printf("%s\n", text);
  free(text);
  free(lang), free(img), free(state), free(noise), free(amask), free(freqs), free(out), free(cached), free(uncached);
  rdt_model_free(m);
  k_close(b);
  rdt_overrides_free(&ov);
  return 0;
}
