/* tests/model/diffusion_test.c: DDPM alphas_cumprod against the closed form and
 * the DPM-Solver++ schedule against values worked out by hand from diffusers
 * 0.27.2 (set_timesteps linspace spacing, lower_order_final, final sigma 0). */
#include <stdint.h>
#include "test.h"
#include "model/diffusion.h"

/* cos^2((s + 0.008) / 1.008 * pi / 2) */
static double abar_fn(double s) {
  double c = cos((s + 0.008) / 1.008 * M_PI / 2);
  return c * c;
}

/* alphas_cumprod[t] = prod_{i<=t} (1 - beta_i) = abar((t+1)/T) / abar(0) while
 * no beta is clipped; the last beta (i = 999) is clipped to 0.999. */
static void t_alphas_cumprod(void) {
  rdt_ddpm d;
  CHECK(rdt_ddpm_init(&d, 1000, "squaredcos_cap_v2") == 0);
  int ts[3] = {0, 1, 500};
  for (int i = 0; i < 3; i++) {
    double want = abar_fn((ts[i] + 1) / 1000.0) / abar_fn(0);
    CHECK_CLOSE(d.alphas_cumprod[ts[i]], want, 2e-6, 0);
  }
  double want998 = abar_fn(999 / 1000.0) / abar_fn(0);
  CHECK_CLOSE(d.alphas_cumprod[998], want998, 1e-4, 0);
  CHECK_CLOSE(d.alphas_cumprod[999], want998 * (1 - 0.999), 1e-4, 0);
  CHECK_CLOSE(d.betas[999], 0.999, 1e-7, 0);
  CHECK_CLOSE(d.betas[0], 1 - abar_fn(0.001) / abar_fn(0), 1e-6, 0);   /* 4.13e-5 */
  /* add_noise coefficients */
  float a, c;
  rdt_ddpm_noise_coefs(&d, 500, &a, &c);
  CHECK_CLOSE(a * a + c * c, 1.0, 1e-6, 0);
  CHECK_CLOSE(a, sqrt(abar_fn(0.501) / abar_fn(0)), 2e-6, 0);
  CHECK(rdt_ddpm_init(&d, 1000, "linear") == -1);
  rdt_ddpm_free(&d);
}

/* 5 steps: linspace(0, 999, 6) = 0, 199.8, 399.6, 599.4, 799.2, 999 -> rounded,
 * reversed, last dropped.  Orders: first step 1 (no history), last step 1
 * (lower_order_final), else 2. */
static void t_dpm_5(void) {
  rdt_ddpm d;
  rdt_dpm s;
  CHECK(rdt_ddpm_init(&d, 1000, "squaredcos_cap_v2") == 0);
  CHECK(rdt_dpm_init(&s, &d, 5) == 0);
  int64_t want[5] = {999, 799, 599, 400, 200};
  int order[5] = {1, 2, 2, 2, 1};
  CHECK(s.steps == 5);
  for (int k = 0; k < 5; k++) {
    CHECK_MSG(s.timesteps[k] == want[k], "step %d: %lld", k, (long long)s.timesteps[k]);
    CHECK_MSG(s.order[k] == order[k], "step %d: order %d", k, s.order[k]);
  }
  /* sigmas = sqrt((1 - abar) / abar) at the timesteps, then 0 */
  for (int k = 0; k < 5; k++) {
    double ab = d.alphas_cumprod[want[k]];
    CHECK_CLOSE(s.sigmas[k], sqrt((1 - ab) / ab), 1e-6, 0);
  }
  CHECK(s.sigmas[5] == 0);
  /* the last step maps to sigma 0: x' = x0 prediction exactly */
  CHECK_CLOSE(s.cx[4], 0, 0, 1e-12);
  CHECK_CLOSE(s.c0[4], 1, 1e-6, 0);
  CHECK(s.c1[4] == 0);
  /* first-order step 0 from the published DPM-Solver++ formula (double):
   * x' = (sigma_t / sigma_s) x - alpha_t (exp(-h) - 1) x0 */
  double st = s.sigmas[1], ss = s.sigmas[0];
  double at = 1 / sqrt(st * st + 1), as = 1 / sqrt(ss * ss + 1);
  double lt = log(at) - log(st * at), ls = log(as) - log(ss * as), h = lt - ls;
  CHECK_CLOSE(s.cx[0], (st * at) / (ss * as), 1e-5, 0);
  CHECK_CLOSE(s.c0[0], -at * (exp(-h) - 1), 1e-5, 0);
  /* second-order midpoint step 1: D0 = m0, D1 = (m0 - m1) / r0 */
  double s1 = s.sigmas[0], s0 = s.sigmas[1], s2 = s.sigmas[2];
  double a0 = 1 / sqrt(s0 * s0 + 1), a1 = 1 / sqrt(s1 * s1 + 1), a2 = 1 / sqrt(s2 * s2 + 1);
  double l0 = log(a0 / (s0 * a0)), l1 = log(a1 / (s1 * a1)), l2 = log(a2 / (s2 * a2));
  double hh = l2 - l0, r0 = (l0 - l1) / hh, e = a2 * (exp(-hh) - 1);
  CHECK_CLOSE(s.cx[1], (s2 * a2) / (s0 * a0), 1e-5, 0);
  CHECK_CLOSE(s.c0[1], -e - 0.5 * e / r0, 1e-5, 0);
  CHECK_CLOSE(s.c1[1], 0.5 * e / r0, 1e-5, 1e-7);
  rdt_dpm_free(&s);
  rdt_ddpm_free(&d);
}

/* 10 steps: linspace(0, 999, 11) = 0, 99.9, ..., 499.5 (rounds half to even:
 * 500), ..., 999. */
static void t_dpm_10(void) {
  rdt_ddpm d;
  rdt_dpm s;
  CHECK(rdt_ddpm_init(&d, 1000, "squaredcos_cap_v2") == 0);
  CHECK(rdt_dpm_init(&s, &d, 10) == 0);
  int64_t want[10] = {999, 899, 799, 699, 599, 500, 400, 300, 200, 100};
  for (int k = 0; k < 10; k++) {
    CHECK_MSG(s.timesteps[k] == want[k], "step %d: %lld", k, (long long)s.timesteps[k]);
    CHECK(s.order[k] == (k == 0 || k == 9 ? 1 : 2));
  }
  rdt_dpm_free(&s);
  CHECK(rdt_dpm_init(&s, &d, 1) == 0);
  CHECK(s.timesteps[0] == 999 && s.order[0] == 1 && s.c0[0] == 1.0f);
  rdt_dpm_free(&s);
  CHECK(rdt_dpm_init(&s, &d, 0) == -1);
  rdt_ddpm_free(&d);
}

int main(void) {
  RUN(t_alphas_cumprod);
  RUN(t_dpm_5);
  RUN(t_dpm_10);
  return test_done();
}
