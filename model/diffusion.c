/* model/diffusion.c: DDPM betas and DPM-Solver++ coefficients (diffusers 0.27.2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "model/diffusion.h"

/* ================================================================ DDPM */

/* alpha_bar of the squaredcos_cap_v2 schedule at s in [0, 1]. */
static double cos_alpha_bar(double s) {
  double c = cos((s + 0.008) / 1.008 * M_PI / 2);
  return c * c;
}

int rdt_ddpm_init(rdt_ddpm *d, int num_train_timesteps, const char *beta_schedule) {
  memset(d, 0, sizeof *d);
  if (strcmp(beta_schedule, "squaredcos_cap_v2") != 0)
    return rdt_fail("noise_scheduler.beta_schedule '%s' is not supported (RDT uses squaredcos_cap_v2)",
                    beta_schedule);
  if (num_train_timesteps < 2)
    return rdt_fail("noise_scheduler.num_train_timesteps %d must be at least 2", num_train_timesteps);
  int T = num_train_timesteps;
  d->num_train_timesteps = T;
  d->betas = rdt_malloc(sizeof(float) * T);
  d->alphas_cumprod = rdt_malloc(sizeof(float) * T);
  double cum = 1.0;   /* torch.cumprod on the CPU accumulates f32 in double */
  for (int i = 0; i < T; i++) {
    double beta = 1.0 - cos_alpha_bar((double)(i + 1) / T) / cos_alpha_bar((double)i / T);
    d->betas[i] = (float)(beta < 0.999 ? beta : 0.999);
    float alpha = 1.0f - d->betas[i];
    cum *= alpha;
    d->alphas_cumprod[i] = (float)cum;
  }
  return 0;
}

void rdt_ddpm_free(rdt_ddpm *d) {
  free(d->betas);
  free(d->alphas_cumprod);
  memset(d, 0, sizeof *d);
}

void rdt_ddpm_noise_coefs(const rdt_ddpm *d, int64_t t, float *a, float *c) {
  float abar = d->alphas_cumprod[t];
  *a = sqrtf(abar);
  *c = sqrtf(1.0f - abar);
}

/* ================================================================ DPM-Solver++ */

/* numpy.linspace(0, stop, num)[i]: i * step + start, the last one exactly stop. */
static double np_linspace_at(double stop, int num, int i) {
  if (i == num - 1) return stop;
  return (double)i * (stop / (num - 1));
}

/* alpha_t, sigma_t and lambda_t of a sigma, in f32 as the scheduler's tensors. */
static void sigma_terms(float sig, float *alpha, float *sigma, float *lambda) {
  *alpha = 1.0f / sqrtf(sig * sig + 1.0f);
  *sigma = sig * *alpha;
  *lambda = logf(*alpha) - logf(*sigma);   /* +inf at sigma 0 */
}

int rdt_dpm_init(rdt_dpm *s, const rdt_ddpm *d, int num_inference_steps) {
  memset(s, 0, sizeof *s);
  int n = num_inference_steps, T = d->num_train_timesteps;
  if (n < 1 || n > T)
    return rdt_fail("noise_scheduler.num_inference_timesteps %d must be in 1..%d", n, T);
  s->steps = n;
  s->timesteps = rdt_malloc(sizeof(int64_t) * n);
  s->sigmas = rdt_malloc(sizeof(float) * (n + 1));
  s->order = rdt_malloc(sizeof(int) * n);
  s->cx = rdt_calloc(n, sizeof(float));
  s->c0 = rdt_calloc(n, sizeof(float));
  s->c1 = rdt_calloc(n, sizeof(float));
  s->alpha = rdt_malloc(sizeof(float) * n);
  s->sigma = rdt_malloc(sizeof(float) * n);
  /* set_timesteps, spacing "linspace" (lambda_min_clipped = -inf, so the last
   * timestep is T): linspace(0, T-1, n+1).round()[::-1][:-1]; round half to even. */
  for (int k = 0; k < n; k++) {
    int64_t t = (int64_t)nearbyint(np_linspace_at(T - 1, n + 1, n - k));
    s->timesteps[k] = t;
    float abar = d->alphas_cumprod[t];
    s->sigmas[k] = sqrtf((1.0f - abar) / abar);
  }
  s->sigmas[n] = 0.0f;   /* final_sigmas_type "zero" */
  /* step(): the first step and the last (lower_order_final) are first order. */
  for (int k = 0; k < n; k++) {
    s->order[k] = (k == 0 || k == n - 1) ? 1 : 2;
    float a_t, s_t, l_t, a_s0, s_s0, l_s0;
    sigma_terms(s->sigmas[k + 1], &a_t, &s_t, &l_t);
    sigma_terms(s->sigmas[k], &a_s0, &s_s0, &l_s0);
    s->alpha[k] = a_s0;
    s->sigma[k] = s_s0;
    float h = l_t - l_s0;
    float e = a_t * (expf(-h) - 1.0f);   /* alpha_t (exp(-h) - 1) */
    s->cx[k] = s_t / s_s0;
    if (s->order[k] == 1) {
      s->c0[k] = -e;                     /* x' = cx x - e m0 */
    } else {
      float a_s1, s_s1, l_s1;
      sigma_terms(s->sigmas[k - 1], &a_s1, &s_s1, &l_s1);
      float r0 = (l_s0 - l_s1) / h;
      /* midpoint: x' = cx x - e D0 - 0.5 e D1, D0 = m0, D1 = (m0 - m1) / r0 */
      s->c0[k] = -e - 0.5f * e / r0;
      s->c1[k] = 0.5f * e / r0;
    }
  }
  return 0;
}

void rdt_dpm_free(rdt_dpm *s) {
  free(s->timesteps);
  free(s->sigmas);
  free(s->order);
  free(s->cx);
  free(s->c0);
  free(s->c1);
  free(s->alpha);
  free(s->sigma);
  memset(s, 0, sizeof *s);
}
