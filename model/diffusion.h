/* model/diffusion.h: the noise schedules of RDT, as diffusers 0.27.2 computes them.
 *
 * Training uses DDPMScheduler(num_train_timesteps, "squaredcos_cap_v2"): betas
 * from alpha_bar(s) = cos^2((s + 0.008) / 1.008 * pi / 2), beta_i =
 * min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), 0.999) rounded to f32,
 * alphas_cumprod = cumprod(1 - beta) (f32 values, accumulated in double as
 * torch does on the CPU), and add_noise x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
 *
 * Sampling uses DPMSolverMultistepScheduler with the upstream defaults:
 * dpmsolver++, solver_order 2, midpoint, lower_order_final, timestep_spacing
 * linspace, final_sigmas_type zero.  Each step k maps the sample x and the
 * model's x0 predictions m0 (this step) and m1 (the previous step) to
 *   x' = cx[k] x + c0[k] m0 + c1[k] m1            (c1 = 0 for first-order steps)
 */
#ifndef RDT_MODEL_DIFFUSION_H
#define RDT_MODEL_DIFFUSION_H

#include <stdint.h>

typedef struct {
  int num_train_timesteps;
  float *betas;            /* [num_train_timesteps] */
  float *alphas_cumprod;   /* [num_train_timesteps] */
} rdt_ddpm;

/* Build the schedule; only "squaredcos_cap_v2" is supported (as upstream uses).
 * 0 or -1 + rdt_error(). */
int rdt_ddpm_init(rdt_ddpm *d, int num_train_timesteps, const char *beta_schedule);
void rdt_ddpm_free(rdt_ddpm *d);
/* add_noise coefficients for timestep t: *a = sqrt(abar_t), *c = sqrt(1 - abar_t). */
void rdt_ddpm_noise_coefs(const rdt_ddpm *d, int64_t t, float *a, float *c);

typedef struct {
  int steps;
  int64_t *timesteps;      /* [steps], descending (5 steps: 999 799 599 400 200) */
  float *sigmas;           /* [steps + 1], sqrt((1 - abar) / abar); last 0 */
  int *order;              /* [steps], 1 or 2 (5 steps: 1 2 2 2 1) */
  float *cx, *c0, *c1;     /* [steps] update coefficients, see above */
  float *alpha, *sigma;    /* [steps] alpha_t and sigma_t at each step's own
                              timestep (converting an epsilon prediction to x0) */
} rdt_dpm;

/* DPM-Solver++ (order 2) for num_inference_steps (1..num_train_timesteps).
 * 0 or -1 + rdt_error(). */
int rdt_dpm_init(rdt_dpm *s, const rdt_ddpm *d, int num_inference_steps);
void rdt_dpm_free(rdt_dpm *s);

#endif
