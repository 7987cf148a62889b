/* kernels/bench_kernels.c: `rdt bench kernels` -- throughput of the ops that
 * dominate RDT on one backend, at RDT-170M and RDT-1B shapes, as JSON.
 *
 * Shapes: a denoising pass sees B x 67 tokens (timestep, frequency, state and
 * 64 action tokens); cross-attention reads up to 1024 language tokens or 4374
 * image tokens (6 images x 729 SigLIP patches); 32 heads (head size 32 for
 * 170M, 64 for 1B).  Each case runs once to warm up, then repeats until
 * --min_time seconds have passed; the mean time per call is reported.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/commands.h"
#include "core/error.h"
#include "core/flags.h"
#include "core/json.h"
#include "core/rng.h"
#include "kernels/kernels.h"

#define BENCH_TOKENS 67
#define BENCH_LANG 1024
#define BENCH_IMAGE 4374
#define BENCH_HEADS 32

typedef struct {
  k_backend *b;
  int batch;
  double min_time;
  rdt_rng rng;
  rdt_jw w;
} bench;

typedef struct {
  const char *name;
  int hidden;
} model_size;

static const model_size sizes[] = {{"rdt-170m", 1024}, {"rdt-1b", 2048}};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* An activation buffer of n random values in [-1, 1). */
static void *rand_act(bench *bn, size_t n) {
  float *h = rdt_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = (float)(2.0 * rdt_rng_uniform(&bn->rng) - 1.0);
  void *d = k_alloc(bn->b, n * k_act_size(bn->b));
  k_upload_act(bn->b, d, h, n);
  free(h);
  return d;
}

/* An F32 buffer of n random values in [lo, hi). */
static float *rand_f32(bench *bn, size_t n, double lo, double hi) {
  float *h = rdt_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = (float)(lo + (hi - lo) * rdt_rng_uniform(&bn->rng));
  float *d = k_alloc(bn->b, n * sizeof(float));
  k_upload(bn->b, d, h, n * sizeof(float));
  free(h);
  return d;
}

/* ---------------------------------------------------------------- timing */
typedef void (*bench_fn)(bench *bn, void *ctx);

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median seconds per call of fn over at least 3 calls and --min_time seconds,
 * after one warm-up call (the median shrugs off other processes' bursts). */
static double time_it(bench *bn, bench_fn fn, void *ctx) {
  enum { MAX_REPS = 1000 };
  double times[MAX_REPS], start = now();
  fn(bn, ctx);
  k_sync(bn->b);
  int reps = 0;
  while (reps < MAX_REPS && (reps < 3 || now() - start < bn->min_time)) {
    double t0 = now();
    fn(bn, ctx);
    k_sync(bn->b);
    times[reps++] = now() - t0;
  }
  qsort(times, (size_t)reps, sizeof times[0], compare_double);
  return reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
}

/* ---------------------------------------------------------------- linear */
typedef struct {
  void *x, *W, *y, *dy, *dx;
  float *bias, *dW, *dbias;
  int M, N, K;
} linear_case;

static void run_linear(bench *bn, void *ctx) {
  linear_case *c = ctx;
  k_linear(bn->b, c->y, c->x, c->W, c->bias, c->M, c->N, c->K);
}

static void run_linear_backward(bench *bn, void *ctx) {
  linear_case *c = ctx;
  k_linear_backward(bn->b, c->dx, c->dW, c->dbias, c->dy, c->x, c->W, c->M, c->N, c->K, 0);
}

/* y = x W^T + b, and with backward=1 also dx, dW and dbias (4 M N K flops). */
static void bench_linear(bench *bn, const char *size, const char *name, int M, int N, int K, int backward) {
  k_backend *b = bn->b;
  linear_case c = {rand_act(bn, (size_t)M * K), rand_act(bn, (size_t)N * K), NULL, NULL, NULL,
                   rand_f32(bn, (size_t)N, -1, 1), NULL, NULL, M, N, K};
  if (backward) {
    c.dy = rand_act(bn, (size_t)M * N);
    c.dx = k_alloc(b, (size_t)M * K * k_act_size(b));
    c.dW = k_alloc(b, (size_t)N * K * sizeof(float));
    c.dbias = k_alloc(b, (size_t)N * sizeof(float));
  } else {
    c.y = k_alloc(b, (size_t)M * N * k_act_size(b));
  }
  double s = time_it(bn, backward ? run_linear_backward : run_linear, &c);
  double flops = (backward ? 4.0 : 2.0) * M * N * K;
  jw_obj(&bn->w);
  jw_key(&bn->w, "model"), jw_str(&bn->w, size);
  jw_key(&bn->w, "name"), jw_str(&bn->w, name);
  jw_key(&bn->w, "M"), jw_int(&bn->w, M);
  jw_key(&bn->w, "N"), jw_int(&bn->w, N);
  jw_key(&bn->w, "K"), jw_int(&bn->w, K);
  jw_key(&bn->w, "ms"), jw_num(&bn->w, 1e3 * s);
  jw_key(&bn->w, "gflops"), jw_num(&bn->w, flops / s * 1e-9);
  jw_obj_end(&bn->w);
  k_free(b, c.x), k_free(b, c.W), k_free(b, c.bias), k_free(b, c.y);
  k_free(b, c.dy), k_free(b, c.dx), k_free(b, c.dW), k_free(b, c.dbias);
}

/* ---------------------------------------------------------------- attention */
typedef struct {
  void *q, *k, *v, *out, *dout, *dq, *dk, *dv;
  float *lse;
  uint8_t *mask;
  int B, Tq, Tk, nh, hd;
} attn_case;

static void run_attention(bench *bn, void *ctx) {
  attn_case *c = ctx;
  k_attention(bn->b, c->out, c->lse, c->q, c->k, c->v, c->mask, NULL, c->B, c->Tq, c->Tk, c->nh, c->hd,
              1.0f / sqrtf((float)c->hd));
}

static void run_attention_backward(bench *bn, void *ctx) {
  attn_case *c = ctx;
  k_attention_backward(bn->b, c->dq, c->dk, c->dv, c->dout, c->q, c->k, c->v, c->out, c->lse, c->mask, c->B,
                       c->Tq, c->Tk, c->nh, c->hd, 1.0f / sqrtf((float)c->hd));
}

/* Forward and backward time of one attention shape; masked keys: the last
 * quarter of the language tokens (padding), none for self or image attention. */
static void bench_attention(bench *bn, const char *size, const char *name, int Tk, int hd) {
  k_backend *b = bn->b;
  int B = bn->batch, Tq = BENCH_TOKENS, nh = BENCH_HEADS;
  size_t nq = (size_t)B * Tq * nh * hd, nk = (size_t)B * Tk * nh * hd;
  attn_case c = {rand_act(bn, nq), rand_act(bn, nk), rand_act(bn, nk), k_alloc(b, nq * k_act_size(b)),
                 rand_act(bn, nq), k_alloc(b, nq * k_act_size(b)), k_alloc(b, nk * k_act_size(b)),
                 k_alloc(b, nk * k_act_size(b)), k_alloc(b, (size_t)B * nh * Tq * sizeof(float)), NULL,
                 B, Tq, Tk, nh, hd};
  if (Tk == BENCH_LANG) {
    uint8_t *m = rdt_malloc((size_t)B * Tk);
    for (int i = 0; i < B * Tk; i++) m[i] = i % Tk < Tk * 3 / 4;
    c.mask = k_alloc(b, (size_t)B * Tk);
    k_upload(b, c.mask, m, (size_t)B * Tk);
    free(m);
  }
  double fwd = time_it(bn, run_attention, &c);
  double bwd = time_it(bn, run_attention_backward, &c);
  double flops = 4.0 * B * nh * Tq * Tk * hd;   /* Q K^T and P V */
  jw_obj(&bn->w);
  jw_key(&bn->w, "model"), jw_str(&bn->w, size);
  jw_key(&bn->w, "name"), jw_str(&bn->w, name);
  jw_key(&bn->w, "B"), jw_int(&bn->w, B);
  jw_key(&bn->w, "Tq"), jw_int(&bn->w, Tq);
  jw_key(&bn->w, "Tk"), jw_int(&bn->w, Tk);
  jw_key(&bn->w, "heads"), jw_int(&bn->w, nh);
  jw_key(&bn->w, "head_dim"), jw_int(&bn->w, hd);
  jw_key(&bn->w, "forward_ms"), jw_num(&bn->w, 1e3 * fwd);
  jw_key(&bn->w, "backward_ms"), jw_num(&bn->w, 1e3 * bwd);
  jw_key(&bn->w, "forward_gflops"), jw_num(&bn->w, flops / fwd * 1e-9);
  jw_key(&bn->w, "backward_gflops"), jw_num(&bn->w, 2.5 * flops / bwd * 1e-9);   /* five products */
  jw_obj_end(&bn->w);
  k_free(b, c.q), k_free(b, c.k), k_free(b, c.v), k_free(b, c.out), k_free(b, c.dout);
  k_free(b, c.dq), k_free(b, c.dk), k_free(b, c.dv), k_free(b, c.lse), k_free(b, c.mask);
}

/* ---------------------------------------------------------------- rmsnorm */
typedef struct {
  void *x, *y, *dy, *dx;
  float *w, *rstd, *dw;
  int rows, dim;
} norm_case;

static void run_rmsnorm(bench *bn, void *ctx) {
  norm_case *c = ctx;
  k_rmsnorm(bn->b, c->y, c->rstd, c->x, c->w, c->rows, c->dim, 1e-6f);
}

static void run_rmsnorm_backward(bench *bn, void *ctx) {
  norm_case *c = ctx;
  k_rmsnorm_backward(bn->b, c->dx, c->dw, c->dy, c->x, c->w, c->rstd, c->rows, c->dim, 0);
}

/* Forward (reads x, writes y) and backward (reads x, dy, writes dx) in GB/s of activations. */
static void bench_rmsnorm(bench *bn, const char *size, const char *name, int rows, int dim) {
  k_backend *b = bn->b;
  size_t n = (size_t)rows * dim, bytes = n * k_act_size(b);
  norm_case c = {rand_act(bn, n), k_alloc(b, bytes), rand_act(bn, n), k_alloc(b, bytes),
                 rand_f32(bn, (size_t)dim, 0.5, 1.5), k_alloc(b, (size_t)rows * sizeof(float)),
                 k_alloc(b, (size_t)dim * sizeof(float)), rows, dim};
  double fwd = time_it(bn, run_rmsnorm, &c), bwd = time_it(bn, run_rmsnorm_backward, &c);
  jw_obj(&bn->w);
  jw_key(&bn->w, "model"), jw_str(&bn->w, size);
  jw_key(&bn->w, "name"), jw_str(&bn->w, name);
  jw_key(&bn->w, "rows"), jw_int(&bn->w, rows);
  jw_key(&bn->w, "dim"), jw_int(&bn->w, dim);
  jw_key(&bn->w, "forward_ms"), jw_num(&bn->w, 1e3 * fwd);
  jw_key(&bn->w, "forward_gbps"), jw_num(&bn->w, 2.0 * bytes / fwd * 1e-9);
  jw_key(&bn->w, "backward_ms"), jw_num(&bn->w, 1e3 * bwd);
  jw_key(&bn->w, "backward_gbps"), jw_num(&bn->w, 3.0 * bytes / bwd * 1e-9);
  jw_obj_end(&bn->w);
  k_free(b, c.x), k_free(b, c.y), k_free(b, c.dy), k_free(b, c.dx);
  k_free(b, c.w), k_free(b, c.rstd), k_free(b, c.dw);
}

/* ---------------------------------------------------------------- host stall */
/* GPU op profiles showed the first product of each call (the language
 * adaptor's 32 x 2048 x 4096, after the batch's uploads) holding the host for
 * 6.6 ms at batch 1 and 25 ms at batch 8, where the product itself should take
 * microseconds.  This case separates the suspects: host time of k_upload_act
 * of the image tokens (4374 x 1152 floats from pageable memory), host time of
 * that product's k_linear call right after it, and after a plain k_sync, and
 * its time to completion.  Medians of 7 rounds, host clock. */
static void bench_stall(bench *bn) {
  k_backend *b = bn->b;
  enum { ROUNDS = 7 };
  const int M = 32, N = 2048, K = 4096;
  size_t nimg = (size_t)BENCH_IMAGE * 1152;
  float *host = rdt_malloc(nimg * sizeof(float));
  for (size_t i = 0; i < nimg; i++) host[i] = (float)(2.0 * rdt_rng_uniform(&bn->rng) - 1.0);
  void *img = k_alloc(b, nimg * k_act_size(b)), *x = rand_act(bn, (size_t)M * K), *W = rand_act(bn, (size_t)N * K);
  void *y = k_alloc(b, (size_t)M * N * k_act_size(b));
  float *bias = rand_f32(bn, (size_t)N, -1, 1);
  double up[ROUNDS], after_up[ROUNDS], after_sync[ROUNDS], done[ROUNDS];
  k_linear(b, y, x, W, bias, M, N, K);   /* warm-up: algorithm lookup, module loading */
  k_sync(b);
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now();
    k_upload_act(b, img, host, nimg);
    double t1 = now();
    k_linear(b, y, x, W, bias, M, N, K);
    double t2 = now();
    k_sync(b);
    double t3 = now();
    k_linear(b, y, x, W, bias, M, N, K);
    double t4 = now();
    k_sync(b);
    up[r] = t1 - t0, after_up[r] = t2 - t1, after_sync[r] = t4 - t3, done[r] = now() - t3;
  }
  double *cols[4] = {up, after_up, after_sync, done};
  for (int c = 0; c < 4; c++) qsort(cols[c], ROUNDS, sizeof(double), compare_double);
  jw_obj(&bn->w);
  jw_key(&bn->w, "upload_act_image_tokens_ms"), jw_num(&bn->w, 1e3 * up[ROUNDS / 2]);
  jw_key(&bn->w, "linear_32x2048x4096_host_ms_after_upload"), jw_num(&bn->w, 1e3 * after_up[ROUNDS / 2]);
  jw_key(&bn->w, "linear_32x2048x4096_host_ms_after_sync"), jw_num(&bn->w, 1e3 * after_sync[ROUNDS / 2]);
  jw_key(&bn->w, "linear_32x2048x4096_done_ms_after_sync"), jw_num(&bn->w, 1e3 * done[ROUNDS / 2]);
  jw_obj_end(&bn->w);
  k_free(b, img), k_free(b, x), k_free(b, W), k_free(b, y), k_free(b, bias);
  free(host);
}

/* ---------------------------------------------------------------- command */
int rdt_bench_kernels(int argc, char **argv) {
  const char *backend = NULL, *model = NULL;
  int64_t threads = 0, batch = 1;
  double min_time = 0.3;
  const rdt_flag flags[] = {
    {"backend", RDT_FLAG_STR, &backend, "cpu", "cpu, cuda or cuda:N"},
    {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
    {"batch", RDT_FLAG_INT, &batch, "1", "samples per call (67 tokens each)"},
    {"model", RDT_FLAG_STR, &model, "all", "shapes of rdt-170m, rdt-1b or all"},
    {"min_time", RDT_FLAG_FLOAT, &min_time, "0.3", "seconds to repeat each case"},
  };
  int rc = rdt_flags_parse("bench kernels", "bench kernels: GFLOP/s of linear layers, attention times and RmsNorm GB/s\n"
                           "at RDT shapes, as JSON on stdout",
                           flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, NULL, NULL);
  if (rc == 1) return 0;
  if (rc < 0) rdt_die_last();
  if (batch < 1 || batch > 1024) rdt_die("--batch must be in 1..1024, got %lld", (long long)batch);
  if (threads < 0) rdt_die("--threads must be >= 0, got %lld", (long long)threads);
  int want_170m = !strcmp(model, "all") || !strcmp(model, "rdt-170m");
  int want_1b = !strcmp(model, "all") || !strcmp(model, "rdt-1b");
  if (!want_170m && !want_1b) rdt_die("--model must be rdt-170m, rdt-1b or all, got '%s'", model);

  bench bn = {.batch = (int)batch, .min_time = min_time};
  bn.b = k_open(backend, (int)threads);
  if (!bn.b) rdt_die_last();
  rdt_rng_seed(&bn.rng, 1, 0);
  jw_init(&bn.w, 1);
  jw_obj(&bn.w);
  jw_key(&bn.w, "backend"), jw_str(&bn.w, k_name(bn.b));
  jw_key(&bn.w, "threads"), jw_int(&bn.w, k_threads(bn.b));
  jw_key(&bn.w, "activation_dtype"), jw_str(&bn.w, rdt_dtype_name(k_act_dtype(bn.b)));
  jw_key(&bn.w, "batch"), jw_int(&bn.w, batch);
  int M = (int)batch * BENCH_TOKENS, Mimg = (int)batch * BENCH_IMAGE;
  const char *section[] = {"linear", "linear_backward"};
  for (int back = 0; back < 2; back++) {
    jw_key(&bn.w, section[back]);
    jw_arr(&bn.w);
    for (int s = 0; s < 2; s++) {
      if (!(s ? want_1b : want_170m)) continue;
      int H = sizes[s].hidden;
      bench_linear(&bn, sizes[s].name, "tokens qkv", M, 3 * H, H, back);
      bench_linear(&bn, sizes[s].name, "tokens mlp", M, H, H, back);
      if (!back) bench_linear(&bn, sizes[s].name, "image kv", Mimg, 2 * H, H, back);
    }
    jw_arr_end(&bn.w);
  }
  jw_key(&bn.w, "attention");
  jw_arr(&bn.w);
  for (int s = 0; s < 2; s++) {
    if (!(s ? want_1b : want_170m)) continue;
    int hd = sizes[s].hidden / BENCH_HEADS;
    bench_attention(&bn, sizes[s].name, "self", BENCH_TOKENS, hd);
    bench_attention(&bn, sizes[s].name, "cross language", BENCH_LANG, hd);
    bench_attention(&bn, sizes[s].name, "cross image", BENCH_IMAGE, hd);
  }
  jw_arr_end(&bn.w);
  jw_key(&bn.w, "rmsnorm");
  jw_arr(&bn.w);
  for (int s = 0; s < 2; s++) {
    if (!(s ? want_1b : want_170m)) continue;
    int H = sizes[s].hidden;
    bench_rmsnorm(&bn, sizes[s].name, "tokens", M, H);
    bench_rmsnorm(&bn, sizes[s].name, "image keys per head", Mimg * BENCH_HEADS, H / BENCH_HEADS);
  }
  jw_arr_end(&bn.w);
  jw_key(&bn.w, "host_stall");
  bench_stall(&bn);
  jw_obj_end(&bn.w);
  char *out = jw_finish(&bn.w);
  printf("%s\n", out);
  free(out);
  k_close(bn.b);
  return 0;
}
