/* tests/model/grad_test.c: every parameter gradient of the tiny RDT against
 * central finite differences of the training loss (f32 model, loss summed in
 * double here from the model's predictions), with a language mask; plus the
 * gradient scale and accumulation contract and activation recomputation. */
#include "model_util.h"

static rdt_model_config cfg;
static k_backend *be;

/* The training loss (prediction_type sample: MSE against action_gt) in double,
 * from the model's own forward pass. */
static double loss_at(rdt_model *m, const test_batch *tb, double *pred_buf) {
  float loss;
  size_t n = (size_t)tb->in.B * cfg.pred_horizon * cfg.action_dim;
  float *pred = rdt_malloc(n * sizeof(float));
  CHECK(rdt_model_loss(m, &tb->in, tb->gt, tb->noise, tb->t, 0, 1.0f, &loss) == 0);
  CHECK(rdt_model_activation(m, "pred", pred, n) == 0);
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)pred[i] - tb->gt[i];
    s += d * d;
    if (pred_buf) pred_buf[i] = pred[i];
  }
  free(pred);
  return s / n;
}

/* Set one master parameter (and refresh compute copies). */
static void set_param(rdt_model *m, size_t idx, float v) {
  k_upload(be, rdt_model_params(m) + idx, &v, sizeof v);
  rdt_model_params_changed(m);
}

static void t_gradients(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  float *p = random_params(m, 21);
  test_batch tb = random_batch(&cfg, 2, 6, 22);
  size_t n = rdt_model_numel(m);
  float *g = rdt_malloc(n * sizeof(float));
  float loss;
  rdt_model_zero_grad(m);
  CHECK(rdt_model_loss(m, &tb.in, tb.gt, tb.noise, tb.t, 1, 1.0f, &loss) == 0);
  k_download(be, g, rdt_model_grads(m), n * sizeof(float));
  double base = loss_at(m, &tb, NULL);
  CHECK_CLOSE(loss, base, 1e-5, 0);
  rdt_rng r;
  rdt_rng_seed(&r, 5, 0);
  double worst = 0;
  const char *worst_name = "";
  int checked = 0;
  for (int k = 0; k < rdt_model_param_count(m); k++) {
    const rdt_param_info *t = rdt_model_param(m, k);
    /* the largest gradient, and two random elements among those within 5x of it */
    size_t top = 0;
    for (size_t i = 1; i < t->numel; i++)
      if (fabsf(g[t->offset + i]) > fabsf(g[t->offset + top])) top = i;
    double gmax = fabsf(g[t->offset + top]);
    CHECK_MSG(gmax > 0, "%s: gradient is all zero", t->name);
    size_t picks[3] = {top, top, top};
    for (int j = 1; j < 3; j++)
      for (int tries = 0; tries < 1000; tries++) {
        size_t i = (size_t)rdt_rng_below(&r, t->numel);
        if (fabsf(g[t->offset + i]) >= 0.2 * gmax) {
          picks[j] = i;
          break;
        }
      }
    for (int j = 0; j < 3; j++) {
      size_t idx = t->offset + picks[j];
      float w = p[idx];
      double h = 1e-2;
      set_param(m, idx, (float)(w + h));
      double lp = loss_at(m, &tb, NULL);
      set_param(m, idx, (float)(w - h));
      double lm = loss_at(m, &tb, NULL);
      set_param(m, idx, w);
      double step = (double)(float)(w + h) - (double)(float)(w - h);   /* the step f32 actually took */
      double fd = (lp - lm) / step, an = g[idx];
      double rel = fabs(fd - an) / fmax(fabs(fd), fabs(an));
      CHECK_MSG(rel < 1e-2, "%s[%zu]: analytic %.6g, finite difference %.6g (rel %.3g)", t->name, picks[j], an, fd, rel);
      if (rel > worst) worst = rel, worst_name = t->name;
      checked++;
    }
  }
  fprintf(stderr, "  %d elements of %d tensors; worst relative error %.3g (%s)\n", checked,
          rdt_model_param_count(m), worst, worst_name);
  free(g), free(p);
  free_batch(&tb);
  rdt_model_free(m);
}

/* grad_scale multiplies the gradient; calls accumulate until zero_grad. */
static void t_scale_accumulate(void) {
  rdt_model *m = rdt_model_new(be, &cfg);
  float *p = random_params(m, 31);
  test_batch tb = random_batch(&cfg, 2, 4, 32);
  size_t n = rdt_model_numel(m);
  float *g1 = rdt_malloc(4 * n), *g2 = rdt_malloc(4 * n);
  float loss;
  rdt_model_zero_grad(m);
  CHECK(rdt_model_loss(m, &tb.in, tb.gt, tb.noise, tb.t, 1, 1.0f, &loss) == 0);
  k_download(be, g1, rdt_model_grads(m), 4 * n);
  CHECK(rdt_model_loss(m, &tb.in, tb.gt, tb.noise, tb.t, 1, 0.5f, &loss) == 0);
  k_download(be, g2, rdt_model_grads(m), 4 * n);
  double e = 0, s = 0;
  for (size_t i = 0; i < n; i++) e += fabs(g2[i] - 1.5 * g1[i]), s += fabs(g1[i]);
  CHECK_MSG(e < 1e-5 * s, "accumulated gradient off by %.3g (of %.3g)", e, s);
  rdt_model_zero_grad(m);
  k_download(be, g2, rdt_model_grads(m), 4 * n);
  for (size_t i = 0; i < n; i++) CHECK(g2[i] == 0);
  free(g1), free(g2), free(p);
  free_batch(&tb);
  rdt_model_free(m);
}

/* Activation recomputation: the same loss and gradients, bitwise, from less
 * memory; sampling through a checkpointed training plan unchanged too.  Depth
 * 4, so blocks 2 and 3 share the condition K/V of blocks 0 and 1. */
static void t_checkpointing(void) {
  rdt_model_config c = cfg;
  c.depth = 4;
  rdt_model *m[2];
  float *g[2], *act[2], loss[2];
  size_t bytes[2], n = 0, na = (size_t)2 * c.pred_horizon * c.action_dim;
  test_batch tb = random_batch(&c, 2, 5, 41);
  for (int k = 0; k < 2; k++) {
    m[k] = rdt_model_new(be, &c);
    free(random_params(m[k], 40));
    rdt_model_set_checkpointing(m[k], k);
    n = rdt_model_numel(m[k]);
    g[k] = rdt_malloc(4 * n), act[k] = rdt_malloc(4 * na);
    rdt_model_zero_grad(m[k]);
    CHECK(rdt_model_loss(m[k], &tb.in, tb.gt, tb.noise, tb.t, 1, 1.0f, &loss[k]) == 0);
    k_download(be, g[k], rdt_model_grads(m[k]), 4 * n);
    bytes[k] = rdt_model_activation_bytes(m[k]);
    CHECK(rdt_model_sample(m[k], &tb.in, tb.noise, act[k]) == 0);
  }
  CHECK_MSG(memcmp(&loss[0], &loss[1], sizeof loss[0]) == 0, "loss %.9g vs %.9g", loss[0], loss[1]);
  CHECK_MSG(memcmp(g[0], g[1], 4 * n) == 0, "gradients differ with checkpointing");
  CHECK_MSG(memcmp(act[0], act[1], 4 * na) == 0, "samples differ with checkpointing");
  CHECK_MSG(bytes[1] < bytes[0] * 3 / 4, "activation bytes %zu with checkpointing, %zu without", bytes[1], bytes[0]);
  fprintf(stderr, "  activations: %zu bytes, %zu with checkpointing\n", bytes[0], bytes[1]);
  for (int k = 0; k < 2; k++) free(g[k]), free(act[k]), rdt_model_free(m[k]);
  free_batch(&tb);
}

int main(void) {
  cfg = tiny_config();
  be = k_open("cpu", 1);
  if (!be) return fprintf(stderr, "%s\n", rdt_error()), 1;
  RUN(t_gradients);
  RUN(t_scale_accumulate);
  RUN(t_checkpointing);
  k_close(be);
  return test_done();
}
