/* tests/model/train_step_cuda_test.c: three full training steps of the tiny
 * RDT (loss, backward, global-norm clipping, AdamW, EMA, as rdt train runs
 * them) on the CUDA backend against the CPU backend, from the same weights
 * and batches.
 *
 * F32 activations: losses and gradient norms agree within 1e-5, the weight
 * updates (weights after minus before) and the EMA within 1e-4 (an update is
 * about lr times the sign of the gradient at first, so it carries the
 * gradients' rounding differences at full scale where a gradient is near 0).
 * BF16 activations, against the CPU rounding its activations to BF16 where
 * CUDA stores them (k_set_act_rounding): losses and gradient norms within
 * 2e-2, weight updates and EMA closer to it than to the fp32 CPU's (whose
 * losses must still be within 2e-2).  Exits 77 (skipped) without a GPU; ctest
 * label cuda. */
#include "model_util.h"
#include "train/ema.h"
#include "train/optim.h"

#define STEPS 3

typedef struct {
  float loss[STEPS];
  double norm[STEPS];
  float *delta, *ema;   /* weights after minus before; EMA weights */
} run;

/* STEPS training steps on backend b from the weights of seed 40. */
static run train(k_backend *b, const rdt_model_config *c) {
  run r;
  rdt_model *m = rdt_model_new(b, c);
  float *w0 = random_params(m, 40);
  size_t n = rdt_model_numel(m);
  rdt_adamw opt;
  rdt_adamw_cfg ac = {0.9, 0.999, 1e-8, 0.01};
  rdt_adamw_init(&opt, b, &ac, n);
  rdt_ema ema;
  rdt_ema_cfg ec = {0, 1.0, 0.75, 0.0, 0.9999};
  rdt_ema_init(&ema, b, &ec, rdt_model_params(m), n);
  for (int s = 0; s < STEPS; s++) {
    test_batch tb = random_batch(c, 3, 6, 50 + (uint64_t)s);
    rdt_model_zero_grad(m);
    CHECK(rdt_model_loss(m, &tb.in, tb.gt, tb.noise, tb.t, 1, 1.0f, &r.loss[s]) == 0);
    r.norm[s] = rdt_grad_norm(b, rdt_model_grads(m), n);
    /* as rdt train: clipping, AdamW, EMA and the compute copy in one pass */
    rdt_adamw_ema_step(&opt, &ema, rdt_model_params(m), rdt_model_grads(m), rdt_grad_clip_coef(r.norm[s], 1.0), 1e-3,
                       rdt_model_compute_copy(m));
    free_batch(&tb);
  }
  r.delta = rdt_malloc(n * sizeof(float)), r.ema = rdt_malloc(n * sizeof(float));
  k_download(b, r.delta, rdt_model_params(m), n * sizeof(float));
  k_download(b, r.ema, ema.w, n * sizeof(float));
  for (size_t i = 0; i < n; i++) r.delta[i] -= w0[i];
  free(w0);
  rdt_ema_free(&ema);
  rdt_adamw_free(&opt);
  rdt_model_free(m);
  return r;
}

static double rel(const float *a, const float *b, size_t n) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
  return sqrt(d / (s > 0 ? s : 1));
}

int main(void) {
  if (!k_cuda_available()) {
    fprintf(stderr, "skipped: no CUDA device visible\n");
    return 77;
  }
  rdt_model_config c = tiny_config();
  k_backend *cpu = k_open("cpu", 1), *gpu = k_open("cuda", 0);
  CHECK_MSG(cpu && gpu, "%s", rdt_error());
  if (!cpu || !gpu) return test_done();
  size_t n;
  {
    rdt_model *m = rdt_model_new(cpu, &c);
    n = rdt_model_numel(m);
    rdt_model_free(m);
  }
  run ref = train(cpu, &c);
  k_backend *cpu16 = k_open("cpu", 1);
  CHECK(cpu16 && k_set_act_rounding(cpu16, RDT_BF16) == 0);
  run ref16 = train(cpu16, &c);
  k_close(cpu16);
  rdt_dtype types[2] = {RDT_F32, RDT_BF16};
  for (int k = 0; k < 2; k++) {
    CHECK(k_set_act_dtype(gpu, types[k]) == 0);
    run r = train(gpu, &c);
    const int f32 = types[k] == RDT_F32;
    const run *want = f32 ? &ref : &ref16;
    const char *name = f32 ? "F32" : "BF16 (vs CPU rounding to BF16)";
    double tol = f32 ? 1e-5 : 2e-2;
    for (int s = 0; s < STEPS; s++) {
      double el = fabs((double)r.loss[s] - want->loss[s]) / fabs(want->loss[s]);
      double en = fabs(r.norm[s] - want->norm[s]) / want->norm[s];
      fprintf(stderr, "  %s step %d: loss %.7g vs %.7g (rel %.2e), grad norm %.7g vs %.7g (rel %.2e)\n", name, s + 1,
              r.loss[s], want->loss[s], el, r.norm[s], want->norm[s], en);
      CHECK_MSG(el < tol, "%s step %d: loss relative error %.3g", name, s + 1, el);
      CHECK_MSG(en < tol, "%s step %d: grad norm relative error %.3g", name, s + 1, en);
      if (!f32) {   /* BF16 storage itself: against the fp32 CPU, losses within 2e-2 */
        double e32 = fabs((double)r.loss[s] - ref.loss[s]) / fabs(ref.loss[s]);
        CHECK_MSG(e32 < 2e-2, "BF16 step %d: loss relative error %.3g against fp32", s + 1, e32);
      }
    }
    double ed = rel(r.delta, want->delta, n), ee = rel(r.ema, want->ema, n);
    fprintf(stderr, "  %s: weight updates relative error %.2e, EMA %.2e\n", name, ed, ee);
    if (f32) {
      CHECK_MSG(ed < 1e-4, "weight updates relative error %.3g", ed);
      CHECK_MSG(ee < 1e-4, "EMA relative error %.3g", ee);
    } else {
      double ed32 = rel(r.delta, ref.delta, n), ee32 = rel(r.ema, ref.ema, n);
      fprintf(stderr, "  BF16 vs fp32 CPU: weight updates relative error %.2e, EMA %.2e\n", ed32, ee32);
      CHECK_MSG(ed < ed32 && ee < ee32, "BF16: updates %.3g / EMA %.3g not closer to the BF16 reference than to fp32 "
                "(%.3g / %.3g)", ed, ee, ed32, ee32);
    }
    free(r.delta), free(r.ema);
  }
  free(ref.delta), free(ref.ema), free(ref16.delta), free(ref16.ema);
  k_close(gpu);
  k_close(cpu);
  return test_done();
}
