/* train/bench_train.c: `rdt bench train` -- the time of one training step
 * (forward + backward + clipping + AdamW + EMA, as the trainer runs it) on a
 * synthetic batch with random weights; prints one JSON object with step time,
 * samples/s and the model FLOPs, so MFU can be reported against a peak.
 *
 * The synthetic image tokens are put on the device once, as `rdt train`
 * gets them from the SigLIP encoder running there (rdt_batch.img_tokens_dev);
 * --host_tokens uploads them from host memory every step instead (161 MB per
 * step for RDT-1B at batch 8, which a real run does not move).
 *
 * FLOPs count 2 per multiply-add of every matrix product of the RDT
 * transformer and its adaptors (the frozen encoders are not run: their tokens
 * are random), forward, times 3 for forward + backward (the usual
 * convention; the adaptors' first layers need no input gradient, so this
 * slightly overcounts).  Per sample, with H hidden, T = horizon + 3 tokens,
 * L language and I image tokens, D = 128:
 *   adaptors   L (Dl H + H^2) + I (Di H + H^2) + (horizon + 1)(2 D H + 2 H^2)
 *   embedders  2 (256 H + H^2)
 *   per block  T 4H^2 + 2 T^2 H  (self-attention)
 *              T 2H^2 + C 2H^2 + 2 T C H  (cross-attention, C = L on even
 *                                          blocks, I on odd ones)
 *              T 2H^2  (MLP, ratio 1)
 *   final      T (H^2 + H D)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "core/error.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/rng.h"
#include "model/rdt_cmd.h"
#include "train/dist.h"
#include "train/ema.h"
#include "train/optim.h"

/* Forward multiply-adds of one sample (see the file comment). */
static double forward_macs(const rdt_model_config *c, int L) {
  double H = c->hidden_size, T = c->pred_horizon + 3, I = c->img_cond_len, D = c->state_token_dim;
  double macs = L * (c->lang_token_dim * H + H * H) + I * (c->img_token_dim * H + H * H) +
                (c->pred_horizon + 1) * (2 * D * H + 2 * H * H) + 2 * (256 * H + H * H);
  for (int i = 0; i < c->depth; i++) {
    double C = i % 2 == 0 ? L : I;
    macs += T * 4 * H * H + 2 * T * T * H;
    macs += T * 2 * H * H + C * 2 * H * H + 2 * T * C * H;
    macs += T * 2 * H * H;
  }
  return macs + T * (H * H + H * D);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Random host floats ~U(-1, 1). */
static float *random_floats(size_t n, rdt_rng *r) {
  float *x = rdt_malloc(n * sizeof(float) + 1);
  for (size_t i = 0; i < n; i++) x[i] = (float)(2 * rdt_rng_uniform(r) - 1);
  return x;
}

/* The synthetic batch: random conditions, state, mask, chunk, noise, timesteps. */
typedef struct {
  rdt_batch in;
  float *actions, *noise;
  int64_t *timesteps;
} synth_batch;

static void synth_new(synth_batch *s, const rdt_model_config *c, int B, int L, uint64_t seed) {
  rdt_rng r;
  rdt_rng_seed(&r, seed, 99);
  size_t D = (size_t)c->state_token_dim, chunk = (size_t)B * c->pred_horizon * D;
  float *mask = rdt_malloc((size_t)B * D * sizeof(float));
  float *freq = rdt_malloc((size_t)B * sizeof(float));
  for (size_t i = 0; i < (size_t)B * D; i++) mask[i] = i % D < 40;
  for (int i = 0; i < B; i++) freq[i] = 20;
  s->in = (rdt_batch){B, L, random_floats((size_t)B * L * c->lang_token_dim, &r), NULL,
                      random_floats((size_t)B * c->img_cond_len * c->img_token_dim, &r),
                      random_floats((size_t)B * D, &r), mask, freq, NULL};
  s->actions = random_floats(chunk, &r);
  s->noise = rdt_malloc(chunk * sizeof(float));
  for (size_t i = 0; i < chunk; i++) s->noise[i] = (float)rdt_rng_normal(&r);
  s->timesteps = rdt_malloc((size_t)B * sizeof(int64_t));
  for (int i = 0; i < B; i++) s->timesteps[i] = (int64_t)rdt_rng_below(&r, (uint64_t)c->num_train_timesteps);
}

static void synth_free(synth_batch *s) {
  free((void *)s->in.lang_tokens), free((void *)s->in.img_tokens), free((void *)s->in.state_tokens);
  free((void *)s->in.action_mask), free((void *)s->in.ctrl_freqs);
  free(s->actions), free(s->noise), free(s->timesteps);
}

/* One training step as the trainer makes it; returns the loss.  sharded: the
 * optimizer holds one ZeRO-1 shard, so the compute copy is refreshed after
 * the update as the trainer does after its all-gather (not made here). */
static float train_step(rdt_model *m, const synth_batch *s, rdt_adamw *opt, rdt_ema *ema, int sharded) {
  k_backend *b = rdt_model_backend(m);
  float loss, *grads = rdt_model_grads(m);
  size_t n = rdt_model_numel(m);
  rdt_model_zero_grad(m);
  if (rdt_model_loss(m, &s->in, s->actions, s->noise, s->timesteps, 1, 1.0f, &loss) != 0) rdt_die_last();
  double norm = rdt_grad_norm(b, grads, n);
  rdt_adamw_ema_step(opt, ema, rdt_model_params(m), grads, rdt_grad_clip_coef(norm, 1.0), 1e-4,
                     sharded ? NULL : rdt_model_compute_copy(m));
  if (sharded) rdt_model_params_changed(m);
  k_sync(b);
  return loss;
}

int rdt_bench_train(int argc, char **argv) {
  const char *config = NULL, *device = NULL, *precision = NULL;
  int64_t batch = 4, steps = 3, warmup = 1, threads = 0, lang_len = 32, seed = 0, zero_world = 1;
  double peak = 0;
  int ckpt = 0, host_tokens = 0;
  rdt_flag flags[] = {
      {"config", RDT_FLAG_STR, &config, NULL, "model config (YAML with dotted overrides, or config.json)"},
      {"batch", RDT_FLAG_INT, &batch, "4", "samples per step"},
      {"steps", RDT_FLAG_INT, &steps, "3", "timed steps"},
      {"warmup", RDT_FLAG_INT, &warmup, "1", "untimed steps first"},
      {"device", RDT_FLAG_STR, &device, "cpu", "cpu or cuda[:N]"},
      {"mixed_precision", RDT_FLAG_STR, &precision, "bf16", "CUDA activation dtype: bf16 or no"},
      {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
      {"lang_len", RDT_FLAG_INT, &lang_len, "32", "language tokens per sample"},
      {"peak_tflops", RDT_FLAG_FLOAT, &peak, "0", "device peak for MFU (0: none on CPU, 989.4 bf16 on H100/H200)"},
      {"seed", RDT_FLAG_INT, &seed, "0", "seed of the random weights and batch"},
      {"gradient_checkpointing", RDT_FLAG_BOOL, &ckpt, "false", "recompute each block's activations in the backward pass"},
      {"host_tokens", RDT_FLAG_BOOL, &host_tokens, "false",
       "upload the image tokens from host memory every step (default: on the device, as the encoder leaves them)"},
      {"zero_world", RDT_FLAG_INT, &zero_world, "1",
       "the memory of one rank of N under --zero_stage 1: AdamW moments and EMA for 1/N of the parameters "
       "(the all-gather is not made or timed)"},
  };
  rdt_overrides ov;
  rdt_cmd_flags("bench train", "Time of one training step on a synthetic batch (JSON).", flags,
                (int)(sizeof flags / sizeof flags[0]), argc, argv, &ov, NULL);
  if (!config) rdt_die("rdt bench train needs --config");
  if (batch < 1 || steps < 1 || warmup < 0) rdt_die("--batch and --steps must be positive, --warmup >= 0");
  if (zero_world < 1 || zero_world > 65536) rdt_die("--zero_world must be in 1..65536");
  rdt_model_config cfg;
  if (rdt_cmd_model_config(config, &ov, NULL, &cfg) != 0) rdt_die_last();
  if (lang_len < 1 || lang_len > cfg.max_lang_cond_len) rdt_die("--lang_len must be in 1..%d", cfg.max_lang_cond_len);
  k_backend *b = rdt_cmd_backend(device, (int)threads, precision);
  if (!b) rdt_die_last();
  /* On H100/H200 also the measured ceiling: an 8192^3 bf16 product ran at
   * about 800 TFLOP/s on the lent machines (.library/device/KINDS.md). */
  double ceiling = 0;
  if (k_kind_of(b) == K_CUDA && k_act_dtype(b) == RDT_BF16 && (strstr(k_name(b), "H100") || strstr(k_name(b), "H200"))) {
    if (peak == 0) peak = 989.4;   /* dense bf16 tensor-core peak of the SXM parts */
    ceiling = 800;
  }
  rdt_model *m = rdt_model_new(b, &cfg);
  if (!m) rdt_die_last();
  rdt_model_init(m, (uint64_t)seed);
  rdt_model_set_checkpointing(m, ckpt);
  size_t lo, shard;   /* rank 0's shard, as --zero_stage 1 cuts it */
  rdt_shard_range((int)zero_world, 0, rdt_model_numel(m), &lo, &shard);
  rdt_adamw opt;
  rdt_adamw_cfg ac = {0.9, 0.999, 1e-8, 0.01};
  rdt_adamw_init_shard(&opt, b, &ac, lo, shard);
  rdt_ema ema;
  rdt_ema_cfg ec = {cfg.ema_update_after_step, cfg.ema_inv_gamma, cfg.ema_power, cfg.ema_min_value, cfg.ema_max_value};
  rdt_ema_init_shard(&ema, b, &ec, rdt_model_params(m), lo, shard);
  synth_batch s;
  synth_new(&s, &cfg, (int)batch, (int)lang_len, (uint64_t)seed);
  void *img_dev = NULL;
  if (!host_tokens) {
    size_t img_n = (size_t)batch * cfg.img_cond_len * cfg.img_token_dim;
    img_dev = k_alloc(b, img_n * k_act_size(b));
    k_upload_act(b, img_dev, s.in.img_tokens, img_n);
    s.in.img_tokens_dev = img_dev;
  }
  double *t = rdt_malloc((size_t)steps * sizeof(double)), sum = 0;
  float first = 0, last = 0;
  for (int64_t i = 0; i < warmup + steps; i++) {
    double t0 = rdt_now();
    last = train_step(m, &s, &opt, &ema, zero_world > 1);
    if (i == 0) first = last;
    if (i >= warmup) t[i - warmup] = rdt_now() - t0, sum += t[i - warmup];
  }
  qsort(t, (size_t)steps, sizeof *t, cmp_double);
  double med = steps % 2 ? t[steps / 2] : 0.5 * (t[steps / 2 - 1] + t[steps / 2]);
  double flops = 3.0 * 2.0 * forward_macs(&cfg, (int)lang_len) * (double)batch;
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "bench"), jw_str(&w, "train");
  jw_key(&w, "config"), jw_str(&w, config);
  jw_key(&w, "device"), jw_str(&w, k_name(b));
  jw_key(&w, "threads"), jw_int(&w, k_threads(b));
  jw_key(&w, "activations"), jw_str(&w, rdt_dtype_name(k_act_dtype(b)));
  jw_key(&w, "parameters"), jw_int(&w, (int64_t)rdt_model_numel(m));
  jw_key(&w, "batch"), jw_int(&w, batch);
  jw_key(&w, "lang_len"), jw_int(&w, lang_len);
  jw_key(&w, "img_tokens"), jw_int(&w, cfg.img_cond_len);
  jw_key(&w, "img_tokens_from"), jw_str(&w, host_tokens ? "host" : "device");
  jw_key(&w, "steps"), jw_int(&w, steps);
  jw_key(&w, "gradient_checkpointing"), jw_bool(&w, ckpt);
  jw_key(&w, "zero_world"), jw_int(&w, zero_world);
  jw_key(&w, "activation_bytes"), jw_int(&w, (int64_t)rdt_model_activation_bytes(m));
  jw_key(&w, "device_bytes_in_use"), jw_int(&w, (int64_t)k_bytes_in_use(b));
  jw_key(&w, "step_time_s"), jw_num(&w, med);
  jw_key(&w, "step_time_mean_s"), jw_num(&w, sum / (double)steps);
  jw_key(&w, "samples_per_s"), jw_num(&w, (double)batch / med);
  jw_key(&w, "model_flops_per_step"), jw_num(&w, flops);
  double tflops = flops / med / 1e12;   /* recomputation not counted */
  jw_key(&w, "achieved_tflops"), jw_num(&w, tflops);
  /* without a peak or ceiling (NAN), jw_num writes null */
  jw_key(&w, "peak_tflops"), jw_num(&w, peak > 0 ? peak : NAN);
  jw_key(&w, "mfu"), jw_num(&w, peak > 0 ? tflops / peak : NAN);
  jw_key(&w, "gemm_ceiling_tflops"), jw_num(&w, ceiling > 0 ? ceiling : NAN);
  jw_key(&w, "mfu_of_gemm_ceiling"), jw_num(&w, ceiling > 0 ? tflops / ceiling : NAN);
  jw_key(&w, "loss_first"), jw_num(&w, first);
  jw_key(&w, "loss_last"), jw_num(&w, last);
  jw_obj_end(&w);
  char *json = jw_finish(&w);
  printf("%s\n", json);
  free(json);
  free(t);
  synth_free(&s);
  k_free(b, img_dev);
  rdt_ema_free(&ema);
  rdt_adamw_free(&opt);
  rdt_model_free(m);
  rdt_overrides_free(&ov);
  k_close(b);
  return 0;
}
