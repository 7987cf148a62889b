/* sim/render.c: offscreen camera images (see render.h). */
#include "sim/render.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GL/osmesa.h>

#include "core/error.h"
#include "core/log.h"

/* ------------------------------------------------------------------ GL backends */

/* The GL entry points this file uses, loaded from the chosen library. */
typedef struct {
  int egl;                       /* 1: EGL, 0: OSMesa */
  void *lib;
  /* OSMesa */
  OSMesaContext (*osm_create)(GLenum, GLint, GLint, GLint, OSMesaContext);
  GLboolean (*osm_make_current)(OSMesaContext, void *, GLenum, GLsizei, GLsizei);
  void (*osm_destroy)(OSMesaContext);
  /* EGL */
  EGLDisplay display;
  EGLConfig config;
  PFNEGLGETPROCADDRESSPROC get_proc;
  EGLBoolean (*egl_make_current)(EGLDisplay, EGLSurface, EGLSurface, EGLContext);
  EGLContext (*egl_create_context)(EGLDisplay, EGLConfig, EGLContext, const EGLint *);
  EGLBoolean (*egl_destroy_context)(EGLDisplay, EGLContext);
} sim_gl_api;

static sim_gl_api sim_gl;
static pthread_once_t sim_gl_once = PTHREAD_ONCE_INIT;
static char sim_gl_error[512];

/* Load OSMesa. */
static int sim_gl_load_osmesa(void) {
  const char *names[] = {"libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"};
  for (int i = 0; i < 3 && !sim_gl.lib; i++) sim_gl.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!sim_gl.lib) {
    snprintf(sim_gl_error, sizeof sim_gl_error, "cannot load libOSMesa (install Mesa's OSMesa, e.g. libosmesa6)");
    return -1;
  }
  *(void **)&sim_gl.osm_create = dlsym(sim_gl.lib, "OSMesaCreateContextExt");
  *(void **)&sim_gl.osm_make_current = dlsym(sim_gl.lib, "OSMesaMakeCurrent");
  *(void **)&sim_gl.osm_destroy = dlsym(sim_gl.lib, "OSMesaDestroyContext");
  if (!sim_gl.osm_create || !sim_gl.osm_make_current || !sim_gl.osm_destroy) {
    snprintf(sim_gl_error, sizeof sim_gl_error, "libOSMesa lacks OSMesaCreateContextExt/MakeCurrent");
    return -1;
  }
  sim_gl.egl = 0;
  return 0;
}

/* Load EGL and open a display on a device (MUJOCO_EGL_DEVICE_ID selects one). */
static int sim_gl_load_egl(void) {
  sim_gl.lib = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!sim_gl.lib) {
    snprintf(sim_gl_error, sizeof sim_gl_error, "cannot load libEGL.so.1");
    return -1;
  }
  *(void **)&sim_gl.get_proc = dlsym(sim_gl.lib, "eglGetProcAddress");
  if (!sim_gl.get_proc) goto fail;
  PFNEGLQUERYDEVICESEXTPROC query = (PFNEGLQUERYDEVICESEXTPROC)sim_gl.get_proc("eglQueryDevicesEXT");
  PFNEGLGETPLATFORMDISPLAYEXTPROC platform =
      (PFNEGLGETPLATFORMDISPLAYEXTPROC)sim_gl.get_proc("eglGetPlatformDisplayEXT");
  EGLBoolean (*init)(EGLDisplay, EGLint *, EGLint *) = NULL;
  EGLBoolean (*choose)(EGLDisplay, const EGLint *, EGLConfig *, EGLint, EGLint *) = NULL;
  EGLBoolean (*bind)(EGLenum) = NULL;
  *(void **)&init = dlsym(sim_gl.lib, "eglInitialize");
  *(void **)&choose = dlsym(sim_gl.lib, "eglChooseConfig");
  *(void **)&bind = dlsym(sim_gl.lib, "eglBindAPI");
  *(void **)&sim_gl.egl_make_current = dlsym(sim_gl.lib, "eglMakeCurrent");
  *(void **)&sim_gl.egl_create_context = dlsym(sim_gl.lib, "eglCreateContext");
  *(void **)&sim_gl.egl_destroy_context = dlsym(sim_gl.lib, "eglDestroyContext");
  if (!query || !platform || !init || !choose || !bind || !sim_gl.egl_make_current || !sim_gl.egl_create_context)
    goto fail;
  EGLDeviceEXT devices[16];
  EGLint ndev = 0;
  if (!query(16, devices, &ndev) || ndev < 1) goto fail;
  const char *want = getenv("MUJOCO_EGL_DEVICE_ID");
  for (int i = 0; i < ndev; i++) {
    if (want && atoi(want) != i) continue;
    EGLDisplay dpy = platform(EGL_PLATFORM_DEVICE_EXT, devices[i], NULL);
    EGLint major, minor;
    if (dpy == EGL_NO_DISPLAY || !init(dpy, &major, &minor)) continue;
    static const EGLint attribs[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                                     EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_COLOR_BUFFER_TYPE, EGL_RGB_BUFFER,
                                     EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    EGLint n = 0;
    if (!choose(dpy, attribs, &sim_gl.config, 1, &n) || n < 1) continue;
    if (!bind(EGL_OPENGL_API)) continue;
    sim_gl.display = dpy;
    sim_gl.egl = 1;
    return 0;
  }
fail:
  snprintf(sim_gl_error, sizeof sim_gl_error, "EGL: no usable device (libEGL.so.1 with EGL_EXT_device_enumeration)");
  if (sim_gl.lib) dlclose(sim_gl.lib);
  memset(&sim_gl, 0, sizeof sim_gl);
  return -1;
}

/* Choose the backend once per process: RDT_GL, else EGL on NVIDIA machines, else OSMesa. */
static void sim_gl_choose(void) {
  const char *want = getenv("RDT_GL");
  if (want && *want) {
    if (!strcmp(want, "egl")) sim_gl_load_egl();
    else if (!strcmp(want, "osmesa")) sim_gl_load_osmesa();
    else snprintf(sim_gl_error, sizeof sim_gl_error, "RDT_GL=%s: expected egl or osmesa", want);
    return;
  }
  if (access("/dev/nvidia0", F_OK) == 0 && sim_gl_load_egl() == 0) return;
  sim_gl_load_osmesa();
}

/* The backend name, loading it on first use. */
const char *sim_gl_backend(void) {
  pthread_once(&sim_gl_once, sim_gl_choose);
  if (!sim_gl.lib) return rdt_fail("no OpenGL for rendering: %s", sim_gl_error), NULL;
  return sim_gl.egl ? "egl" : "osmesa";
}

/* ------------------------------------------------------------------ renderer */

struct sim_renderer {
  pthread_t thread;
  OSMesaContext osm;
  EGLContext eglc;
  unsigned char *osm_buf;
  int size, fast, cull;
  mjrContext con;
  mjvScene scn;
  mjvOption opt;
  mjvCamera cam;
  mjvPerturb pert;
};

/* Make the renderer's context current in this thread. */
static int sim_renderer_current(sim_renderer *r) {
  if (!pthread_equal(r->thread, pthread_self()))
    return rdt_fail("render: a renderer must be used by the thread that created it");
  int ok = sim_gl.egl ? sim_gl.egl_make_current(sim_gl.display, EGL_NO_SURFACE, EGL_NO_SURFACE, r->eglc)
                      : sim_gl.osm_make_current(r->osm, r->osm_buf, GL_UNSIGNED_BYTE, r->size, r->size);
  RDT_CHECK(ok, "render: cannot make the %s context current", sim_gl.egl ? "EGL" : "OSMesa");
  return 0;
}

/* A renderer in the calling thread. */
sim_renderer *sim_renderer_new(mjModel *m, int size, int fast) {
  if (!sim_gl_backend()) return NULL;
  sim_renderer *r = rdt_calloc(1, sizeof *r);
  r->thread = pthread_self();
  r->size = size;
  r->fast = fast;
  r->cull = 1;
  if (sim_gl.egl) {
    r->eglc = sim_gl.egl_create_context(sim_gl.display, sim_gl.config, EGL_NO_CONTEXT, NULL);
    if (r->eglc == EGL_NO_CONTEXT) {
      free(r);
      return rdt_fail("render: eglCreateContext failed"), NULL;
    }
  } else {
    r->osm = sim_gl.osm_create(OSMESA_RGBA, 24, 8, 0, NULL);
    if (!r->osm) {
      free(r);
      return rdt_fail("render: OSMesaCreateContextExt failed"), NULL;
    }
    r->osm_buf = rdt_calloc((size_t)size * size * 4, 1);
  }
  if (sim_renderer_current(r)) {
    sim_renderer_free(r);
    return NULL;
  }
  /* The offscreen buffer only needs the image size: pixels inside the
   * viewport are the same as in robosuite's 640x480 buffer, and clearing a
   * smaller buffer is cheaper.  No light in these scenes casts shadows, so
   * the shadow map is never drawn: keep it tiny.  Fast mode drops MSAA. */
  m->vis.global.offwidth = size;
  m->vis.global.offheight = size;
  int shadows = 0;
  for (int i = 0; i < m->nlight; i++) shadows |= m->light_castshadow[i];
  if (!shadows) m->vis.quality.shadowsize = 0;
  if (fast) m->vis.quality.offsamples = 0;
  mjv_defaultOption(&r->opt);
  r->opt.geomgroup[0] = 0;
  r->opt.geomgroup[1] = 1;
  mjv_defaultScene(&r->scn);
  mjv_makeScene(m, &r->scn, 1000);
  mjv_defaultCamera(&r->cam);
  r->cam.type = mjCAMERA_FIXED;
  mjv_defaultPerturb(&r->pert);
  mjr_defaultContext(&r->con);
  mjr_makeContext(m, &r->con, mjFONTSCALE_100);
  mjr_setBuffer(mjFB_OFFSCREEN, &r->con);
  if (r->con.currentBuffer != mjFB_OFFSCREEN) {
    sim_renderer_free(r);
    return rdt_fail("render: no offscreen framebuffer"), NULL;
  }
  if (fast) r->scn.flags[mjRND_SHADOW] = 0, r->scn.flags[mjRND_REFLECTION] = 0;
  return r;
}

/* Free a renderer (from its thread). */
void sim_renderer_free(sim_renderer *r) {
  if (!r) return;
  if (pthread_equal(r->thread, pthread_self()) && (r->osm || r->eglc)) {
    sim_renderer_current(r);
    mjr_freeContext(&r->con);
  }
  mjv_freeScene(&r->scn);
  if (r->osm) sim_gl.osm_destroy(r->osm);
  if (r->eglc && sim_gl.egl_destroy_context) sim_gl.egl_destroy_context(sim_gl.display, r->eglc);
  free(r->osm_buf);
  free(r);
}

/* Drop geoms whose bounding sphere lies outside the view frustum.  Their
 * triangles would be clipped away entirely, so the image is unchanged;
 * software GL then skips transforming and lighting their vertices, the
 * dominant cost here (the Panda's visual meshes alone have ~100k faces).
 * Not done when something could show off-screen geoms: a shadow-casting light
 * or a reflective plane/box (MuJoCo then draws the mirrored scene). */
static void sim_cull(const mjModel *m, mjvScene *scn, int width, int height) {
  for (int i = 0; i < scn->nlight; i++)
    if (scn->lights[i].castshadow) return;
  for (int i = 0; i < scn->ngeom; i++) {
    const mjvGeom *g = scn->geoms + i;
    if ((g->type == mjGEOM_PLANE || g->type == mjGEOM_BOX) && g->reflectance > 0) return;
  }
  mjvGLCamera cam = mjv_averageCamera(scn->camera, scn->camera + 1);
  double f[3], u[3], r[3];
  for (int i = 0; i < 3; i++) f[i] = cam.forward[i], u[i] = cam.up[i];
  mju_cross(r, f, u);
  mju_normalize3(r);
  double hw = 0.5 * (double)width / height * (cam.frustum_top - cam.frustum_bottom);
  double n = cam.frustum_near;
  /* plane slopes: x/z in [sl, sr], y/z in [sb, st] at depth z */
  double sl = (cam.frustum_center - hw) / n, sr = (cam.frustum_center + hw) / n;
  double sb = cam.frustum_bottom / n, st = cam.frustum_top / n;
  int kept = 0;
  for (int i = 0; i < scn->ngeom; i++) {
    mjvGeom *g = scn->geoms + i;
    int keep = 1;
    if (g->objtype == mjOBJ_GEOM && g->objid >= 0 && g->type != mjGEOM_PLANE) {
      double rad = m->geom_rbound[g->objid];
      if (rad > 0) {
        rad = rad * 1.01 + 0.01;
        double d[3] = {g->pos[0] - cam.pos[0], g->pos[1] - cam.pos[1], g->pos[2] - cam.pos[2]};
        double z = mju_dot3(d, f), x = mju_dot3(d, r), y = mju_dot3(d, u);
        keep = z > n - rad && z < cam.frustum_far + rad && (x - sr * z) < rad * sqrt(1 + sr * sr) &&
               (sl * z - x) < rad * sqrt(1 + sl * sl) && (y - st * z) < rad * sqrt(1 + st * st) &&
               (sb * z - y) < rad * sqrt(1 + sb * sb);
      }
    }
    if (keep) scn->geoms[kept++] = *g;
  }
  scn->ngeom = kept;
}

/* Turn frustum culling on or off (for tests that compare images). */
void sim_renderer_set_culling(sim_renderer *r, int on) { r->cull = on; }

/* Render one camera into rgb. */
int sim_renderer_draw(sim_renderer *r, const mjModel *m, mjData *d, int cam, int size, uint8_t *rgb) {
  RDT_CHECK(size > 0 && size <= r->size, "render: size %d exceeds the renderer's %d", size, r->size);
  RDT_CHECK(cam >= 0 && cam < m->ncam, "render: no camera %d", cam);
  if (sim_renderer_current(r)) return -1;
  r->cam.fixedcamid = cam;
  mjv_updateScene(m, d, &r->opt, &r->pert, &r->cam, mjCAT_ALL, &r->scn);
  if (r->cull) sim_cull(m, &r->scn, size, size);
  mjrRect viewport = {0, 0, size, size};
  mjr_render(viewport, &r->scn, &r->con);
  mjr_readPixels(rgb, NULL, viewport, &r->con);
  return 0;
}
