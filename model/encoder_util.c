/* model/encoder_util.c: weight stores and config helpers of the frozen encoders. */
#include "model/encoder_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/rng.h"

enum { CHUNK = 1 << 20 };   /* elements converted per upload */

/* ================================================================ tensors */

const rdt_tensor *enc_tensor(const rdt_st *st, const char *name, int ndim, const int64_t *shape) {
  const rdt_tensor *t = rdt_st_find(st, name);
  char want[128], got[128];
  if (!t) {
    rdt_fail("%s: tensor '%s' not found", rdt_st_path(st), name);
    return NULL;
  }
  if (t->dtype != RDT_F32 && t->dtype != RDT_BF16 && t->dtype != RDT_F16 && t->dtype != RDT_F64) {
    rdt_fail("%s: tensor '%s' has dtype %s, expected a float type", rdt_st_path(st), name,
             rdt_dtype_name(t->dtype));
    return NULL;
  }
  int same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
  if (!same) {
    rdt_fail("%s: tensor '%s' has shape %s, expected %s (does config.json match the weights?)",
             rdt_st_path(st), name, rdt_shape_str(t->ndim, t->shape, got, sizeof got),
             rdt_shape_str(ndim, shape, want, sizeof want));
    return NULL;
  }
  return t;
}

const rdt_tensor *enc_tensorf(const rdt_st *st, int ndim, const int64_t *shape, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return enc_tensor(st, name, ndim, shape);
}

void enc_read_f32(const rdt_tensor *t, size_t first, size_t n, float *dst) {
  size_t size = rdt_dtype_size(t->dtype);
  const unsigned char *src = (const unsigned char *)t->data + first * size;
  if (t->dtype == RDT_F32) {
    memcpy(dst, src, n * sizeof *dst);
    return;
  }
  if (t->dtype == RDT_BF16) {   /* the common checkpoint dtype: a 16-bit shift, vectorised */
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      uint32_t u = (uint32_t)h << 16;
      memcpy(dst + i, &u, 4);
    }
    return;
  }
  _Alignas(8) unsigned char bounce[4096 * 8];
  const size_t per = sizeof bounce / 8;
  for (size_t i = 0; i < n; i += per) {
    size_t m = n - i < per ? n - i : per;
    memcpy(bounce, src + i * size, m * size);
    rdt_convert(dst + i, RDT_F32, bounce, t->dtype, m);
  }
}

float *enc_upload_f32(k_backend *b, const rdt_tensor *t) {
  size_t n = (size_t)rdt_numel(t);
  float *host = rdt_malloc(n * sizeof *host);
  enc_read_f32(t, 0, n, host);
  float *dev = k_alloc(b, n * sizeof *dev);
  k_upload(b, dev, host, n * sizeof *dev);
  free(host);
  return dev;
}

void enc_upload_act(k_backend *b, void *dst, const rdt_tensor *t) {
  size_t n = (size_t)rdt_numel(t);
  float *host = rdt_malloc(CHUNK * sizeof *host);
  for (size_t i = 0; i < n; i += CHUNK) {
    size_t m = n - i < CHUNK ? n - i : CHUNK;
    enc_read_f32(t, i, m, host);
    k_upload_act(b, k_act_at(b, dst, i), host, m);
  }
  free(host);
}

void *enc_reserve(k_backend *b, void **buf, size_t *cap, size_t bytes) {
  if (*cap < bytes) {
    if (*buf) k_free(b, *buf);
    *buf = k_alloc(b, bytes);
    *cap = bytes;
  }
  return *buf;
}

/* ================================================================ weight stores */

int enc_choose_stream(k_backend *b, enc_mode mode, size_t linear_elems) {
  if (mode != ENC_AUTO) return mode == ENC_STREAM;
  if (k_kind_of(b) != K_CPU) return 0;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  double phys = pages > 0 && page > 0 ? (double)pages * (double)page : 16e9;
  return (double)linear_elems * (double)k_act_size(b) > 0.4 * phys;
}

void enc_store_init(enc_store *s, k_backend *b, int stream) {
  memset(s, 0, sizeof *s);
  s->b = b;
  s->stream = stream;
}

void enc_linear_init(enc_store *s, enc_linear *w, const rdt_tensor *t, int slot) {
  RDT_ASSERT(slot >= 0 && slot < ENC_MAX_SLOTS);
  size_t n = (size_t)rdt_numel(t);
  w->src = t;
  w->slot = slot;
  w->dev = NULL;
  if (s->stream) {
    if (s->slot_elems[slot] < n) {
      if (s->slot[slot]) k_free(s->b, s->slot[slot]);
      s->slot[slot] = k_alloc(s->b, n * k_act_size(s->b));
      s->slot_elems[slot] = n;
    }
    return;
  }
  w->dev = k_alloc(s->b, n * k_act_size(s->b));
  enc_upload_act(s->b, w->dev, t);
  s->resident_bytes += n * k_act_size(s->b);
}

const void *enc_linear_get(enc_store *s, const enc_linear *w) {
  if (w->dev) return w->dev;
  enc_upload_act(s->b, s->slot[w->slot], w->src);
  return s->slot[w->slot];
}

void enc_linear_free(enc_store *s, enc_linear *w) {
  if (w->dev) k_free(s->b, w->dev);
  w->dev = NULL;
}

void enc_store_free(enc_store *s) {
  for (int i = 0; i < ENC_MAX_SLOTS; i++)
    if (s->slot[i]) k_free(s->b, s->slot[i]);
  memset(s->slot, 0, sizeof s->slot);
}

/* ================================================================ config.json */

int enc_cfg_int(const rdt_json *cfg, const char *key, int def, int *out) {
  const rdt_json *v = rdt_json_get(cfg, key);
  int64_t x;
  if (!v || v->type == RDT_JSON_NULL) {
    *out = def;
    return 0;
  }
  if (rdt_json_int64(v, &x) < 0 || x < -(1LL << 30) || x > (1LL << 30))
    return rdt_fail("config key '%s' is not an integer", key);
  *out = (int)x;
  return 0;
}

int enc_cfg_float(const rdt_json *cfg, const char *key, float def, float *out) {
  const rdt_json *v = rdt_json_get(cfg, key);
  if (!v || v->type == RDT_JSON_NULL) {
    *out = def;
    return 0;
  }
  if (v->type != RDT_JSON_NUMBER) return rdt_fail("config key '%s' is not a number", key);
  *out = (float)v->number;
  return 0;
}

/* ================================================================ checkpoint layouts */

void enc_spec_add(enc_spec **v, int *n, enc_fill fill, int ndim, const int64_t *shape, const char *fmt, ...) {
  if (*n % 64 == 0) *v = rdt_realloc(*v, (size_t)(*n + 64) * sizeof **v);
  enc_spec *s = &(*v)[(*n)++];
  memset(s, 0, sizeof *s);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->name, sizeof s->name, fmt, ap);
  va_end(ap);
  s->ndim = ndim;
  memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
  s->fill = fill;
}

int enc_find_all(const rdt_st *st, const enc_spec *specs, int n, const rdt_tensor **t) {
  for (int i = 0; i < n; i++)
    if (!(t[i] = enc_tensor(st, specs[i].name, specs[i].ndim, specs[i].shape))) return -1;
  return 0;
}

/* Fill n values (F32 or BF16) of one spec. */
static void fill_random(void *dst, rdt_dtype dtype, size_t n, const enc_spec *s, rdt_rng *r) {
  double a = 1.0 / sqrt((double)n / (double)s->shape[0]);
  for (size_t i = 0; i < n; i++) {
    float v = s->fill == ENC_FILL_ONES ? 1.0f
              : s->fill == ENC_FILL_ZEROS ? 0.0f
                                          : (float)(a * (2.0 * (double)rdt_rng_u32(r) / 4294967296.0 - 1.0));
    if (dtype == RDT_BF16) ((uint16_t *)dst)[i] = rdt_f32_to_bf16(v);
    else ((float *)dst)[i] = v;
  }
}

int enc_write_random(const char *dir, const enc_spec *specs, int n, rdt_dtype dtype, uint64_t seed,
                     const char *config_json) {
  rdt_rng r;
  rdt_rng_seed(&r, seed, 0);
  rdt_st_writer *w = rdt_st_writer_new();
  void **data = rdt_calloc((size_t)n, sizeof *data);
  for (int i = 0; i < n; i++) {
    size_t count = (size_t)rdt_shape_numel(specs[i].ndim, specs[i].shape);
    data[i] = rdt_malloc(count * rdt_dtype_size(dtype));
    fill_random(data[i], dtype, count, &specs[i], &r);
    rdt_st_writer_add(w, specs[i].name, dtype, specs[i].ndim, specs[i].shape, data[i]);
  }
  char *path = rdt_path_join(dir, "model.safetensors");
  int rc = rdt_mkdirs(dir);
  if (rc == 0) rc = rdt_st_writer_save(w, path);
  free(path);
  path = rdt_path_join(dir, "config.json");
  if (rc == 0) rc = rdt_write_file_atomic(path, config_json, strlen(config_json));
  free(path);
  rdt_st_writer_free(w);
  for (int i = 0; i < n; i++) free(data[i]);
  free(data);
  return rc;
}
