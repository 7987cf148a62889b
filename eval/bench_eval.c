/* eval/bench_eval.c: the evaluation policy's latency for one full action
 * chunk -- observation -> model inputs (image preprocessing, noise), vision
 * encoder, language, the sampler (all denoising steps), chunk -> 64 LIBERO
 * actions -- at batch 1 and at batch W, the way `rdt eval --workers W` asks
 * for it (one batched call, and row by row).  Random camera images and
 * state; the checkpoint when given, else random weights.  Prints one JSON
 * object.  Entry point rdt_bench_eval_policy (for `rdt bench`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/flags.h"
#include "core/json.h"
#include "core/progress.h"
#include "eval/policy.h"

/* The entry point of `rdt bench eval-policy` (cli/main.c). */
int rdt_bench_eval_policy(int argc, char **argv);   /* declared for cli/commands.h */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of n values (sorts them). */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Random observations: joints, gripper, eef pose, both cameras at t-1 and t. */
static void random_obs(rdt_rng *r, int size, uint8_t *pixels, rdt_raw_obs *o) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < 7; i++) o->joint_pos[i] = rdt_rng_uniform(r) - 0.5;
  o->gripper_qpos[0] = 0.02, o->gripper_qpos[1] = -0.02;
  for (int i = 0; i < 3; i++) o->eef_pos[i] = rdt_rng_uniform(r), o->eef_ori[i] = rdt_rng_uniform(r) - 0.5;
  o->h = o->w = size;
  size_t frame = (size_t)size * size * 3;
  for (size_t i = 0; i < 4 * frame; i++) pixels[i] = (uint8_t)rdt_rng_below(r, 256);
  for (int c = 0; c < RDT_RAW_CAMERAS; c++)
    for (int h = 0; h < RDT_IMG_HISTORY; h++) o->image[c][h] = pixels + (size_t)(c * 2 + h) * frame;
}

typedef struct {
  double prepare, run, actions, total;   /* medians, seconds */
} chunk_times;

/* Time `repeat` full chunks of B rows after `warmup` untimed ones. */
static int time_chunks(eval_policy *p, int B, int size, int warmup, int repeat, chunk_times *out) {
  eval_request **q = rdt_malloc((size_t)B * sizeof *q);
  rdt_raw_obs *o = rdt_malloc((size_t)B * sizeof *o);
  uint8_t *pixels = rdt_malloc((size_t)B * 4 * size * size * 3);
  double *t[4];
  for (int k = 0; k < 4; k++) t[k] = rdt_malloc((size_t)repeat * sizeof(double));
  rdt_rng r;
  rdt_rng_seed(&r, 1, (uint64_t)B);
  for (int i = 0; i < B; i++) {
    q[i] = eval_request_new(p);
    random_obs(&r, size, pixels + (size_t)i * 4 * size * size * 3, &o[i]);
  }
  int rc = 0;
  for (int it = 0; rc == 0 && it < warmup + repeat; it++) {
    double t0 = rdt_now();
    for (int i = 0; i < B && rc == 0; i++) rc = eval_policy_prepare(p, &o[i], 0, &r, q[i]);
    double t1 = rdt_now();
    if (rc == 0) rc = eval_policy_run(p, q, B);
    double t2 = rdt_now(), a[SIM_ACTION_DIM];
    for (int i = 0; i < B; i++)
      for (int k = 0; k < eval_policy_model_config(p)->pred_horizon; k++) eval_policy_action(p, q[i], k, &o[i], a);
    double t3 = rdt_now();
    if (it >= warmup) {
      int j = it - warmup;
      t[0][j] = t1 - t0, t[1][j] = t2 - t1, t[2][j] = t3 - t2, t[3][j] = t3 - t0;
    }
  }
  out->prepare = median(t[0], repeat), out->run = median(t[1], repeat);
  out->actions = median(t[2], repeat), out->total = median(t[3], repeat);
  for (int i = 0; i < B; i++) eval_request_free(q[i]);
  for (int k = 0; k < 4; k++) free(t[k]);
  free(q), free(o), free(pixels);
  return rc;
}

/* One JSON member with the times of a setting, in milliseconds. */
static void write_times(rdt_jw *w, const char *key, int B, const chunk_times *c) {
  jw_key(w, key);
  jw_obj(w);
  jw_key(w, "batch"), jw_int(w, B);
  jw_key(w, "prepare_ms"), jw_num(w, c->prepare * 1e3);
  jw_key(w, "encode_and_sample_ms"), jw_num(w, c->run * 1e3);
  jw_key(w, "actions_ms"), jw_num(w, c->actions * 1e3);
  jw_key(w, "chunk_ms"), jw_num(w, c->total * 1e3);
  jw_key(w, "per_env_chunk_ms"), jw_num(w, c->total * 1e3 / B);
  jw_obj_end(w);
}

/* Open the policy in one batch mode and time batch 1 and batch W. */
static int bench_mode(rdt_jw *w, const char *key, const rdt_config *cfg, eval_policy_opts po, eval_batch_mode mode,
                      int W, int size, int warmup, int repeat) {
  po.batch = mode;
  eval_policy *p = eval_policy_open(cfg, &po);
  const char *text = "close the top drawer of the cabinet";
  if (!p || eval_policy_instructions(p, &text, 1) != 0) {
    eval_policy_free(p);
    return -1;
  }
  chunk_times one, many;
  int rc = time_chunks(p, 1, size, warmup, repeat, &one);
  if (rc == 0) rc = time_chunks(p, W, size, warmup, repeat, &many);
  if (rc == 0) {
    jw_key(w, key);
    jw_obj(w);
    jw_key(w, "device"), jw_str(w, eval_policy_describe(p));
    write_times(w, "batch_1", 1, &one);
    write_times(w, "batch_w", W, &many);
    jw_obj_end(w);
  }
  eval_policy_free(p);
  return rc;
}

int rdt_bench_eval_policy(int argc, char **argv) {
  const char *config = NULL, *pretrained = NULL, *vision = NULL, *text = NULL, *lang = NULL, *device = NULL;
  const char *precision = NULL;
  int64_t batch = 8, threads = 0, repeat = 3, warmup = 1, size = 128;
  rdt_flag flags[] = {
    {"config", RDT_FLAG_STR, &config, NULL, "model config (YAML)"},
    {"pretrained", RDT_FLAG_STR, &pretrained, NULL, "weights (default: random)"},
    {"vision_encoder", RDT_FLAG_STR, &vision, NULL, "SigLIP folder (configs without tiny encoders)"},
    {"text_encoder", RDT_FLAG_STR, &text, NULL, "T5 folder"},
    {"precomp_lang_embed", RDT_FLAG_STR, &lang, NULL, "precomputed instruction embeddings instead of T5"},
    {"batch", RDT_FLAG_INT, &batch, "8", "W: environments whose queries share a call"},
    {"image_size", RDT_FLAG_INT, &size, "128", "camera image side"},
    {"device", RDT_FLAG_STR, &device, "cpu", "cpu or cuda[:N]"},
    {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
    {"mixed_precision", RDT_FLAG_STR, &precision, "bf16", "CUDA activation dtype: bf16 or no"},
    {"repeat", RDT_FLAG_INT, &repeat, "3", "timed chunks per setting"},
    {"warmup", RDT_FLAG_INT, &warmup, "1", "untimed chunks first"},
  };
  int rc = rdt_flags_parse("bench eval-policy", "Latency of the evaluation policy for one full action chunk "
                           "(observation to 64 LIBERO actions) at batch 1 and batch W.",
                           flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, NULL, NULL);
  if (rc == 1) return 0;
  if (rc != 0) rdt_die_last();
  if (!config) rdt_die("rdt bench eval-policy needs --config");
  if (batch < 1 || repeat < 1 || warmup < 0 || size < 16) rdt_die("--batch, --repeat >= 1, --warmup >= 0, --image_size >= 16");
  rdt_config *cfg = rdt_config_load(config);
  if (!cfg) rdt_die_last();
  eval_policy_opts po = {pretrained, text, vision, lang, device, (int)threads, precision, EVAL_BATCH_AUTO};
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "bench"), jw_str(&w, "eval_policy");
  jw_key(&w, "config"), jw_str(&w, config);
  jw_key(&w, "weights"), jw_str(&w, pretrained ? pretrained : "random");
  jw_key(&w, "image_size"), jw_int(&w, size);
  if (bench_mode(&w, "batched", cfg, po, EVAL_BATCH_ONE, (int)batch, (int)size, (int)warmup, (int)repeat) != 0 ||
      bench_mode(&w, "rows", cfg, po, EVAL_BATCH_ROWS, (int)batch, (int)size, (int)warmup, (int)repeat) != 0)
    rdt_die_last();
  jw_obj_end(&w);
  char *out = jw_finish(&w);
  printf("%s\n", out);
  free(out);
  rdt_config_free(cfg);
  return 0;
}
