/* sim/render.h: offscreen camera images of a MuJoCo model, as robosuite's
 * MjRenderContextOffscreen makes them.
 *
 * GL: OSMesa (software) or EGL (GPU), chosen once per process from RDT_GL
 * (egl | osmesa); unset: EGL when an NVIDIA device node exists, else OSMesa.
 * The GL library is loaded at run time (dlopen), so the binary does not
 * depend on either.  One GL context per renderer, created and used in one
 * thread.
 *
 * Rendering matches robosuite: MjvScene with 1000 geoms, default MjvOption
 * with geom group 0 (collision) hidden, fixed camera, mjv_updateScene with
 * all categories, mjr_render with MuJoCo's default flags (shadows,
 * reflections, skybox) and the model's multisampling, mjr_readPixels (bottom
 * row first).  The fast mode turns off shadows, reflections and MSAA.
 */
#ifndef RDT_SIM_RENDER_H
#define RDT_SIM_RENDER_H

#include <stdint.h>
#include <mujoco/mujoco.h>

typedef struct sim_renderer sim_renderer;

/* A renderer for images up to size x size, made in the calling thread.
 * NULL + rdt_error() when no GL is available. */
sim_renderer *sim_renderer_new(mjModel *m, int size, int fast);
void sim_renderer_free(sim_renderer *r);

/* Render camera cam (model camera id) at size x size into rgb (size*size*3,
 * bottom row first).  Must be called from the creating thread.  0 or -1. */
int sim_renderer_draw(sim_renderer *r, const mjModel *m, mjData *d, int cam, int size, uint8_t *rgb);

/* Frustum culling of geoms outside the camera's view (default on; the
 * image is unchanged, see render.c). */
void sim_renderer_set_culling(sim_renderer *r, int on);

/* "osmesa" or "egl": the backend this process uses (loads it on first call);
 * NULL + rdt_error() if none loads. */
const char *sim_gl_backend(void);

#endif
