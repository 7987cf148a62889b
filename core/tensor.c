/* core/tensor.c: dtype tables, half-precision conversion, arenas. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "core/error.h"
#include "core/tensor.h"

static const struct {
  const char *name;
  size_t size;
} dtypes[RDT_DTYPE_COUNT] = {
  [RDT_F32] = {"F32", 4}, [RDT_F16] = {"F16", 2}, [RDT_BF16] = {"BF16", 2}, [RDT_F64] = {"F64", 8},
  [RDT_I64] = {"I64", 8}, [RDT_I32] = {"I32", 4}, [RDT_I16] = {"I16", 2},  [RDT_I8] = {"I8", 1},
  [RDT_U8] = {"U8", 1},   [RDT_BOOL] = {"BOOL", 1},
};

size_t rdt_dtype_size(rdt_dtype t) { return (unsigned)t < RDT_DTYPE_COUNT ? dtypes[t].size : 0; }

const char *rdt_dtype_name(rdt_dtype t) { return (unsigned)t < RDT_DTYPE_COUNT ? dtypes[t].name : "?"; }

int rdt_dtype_parse(const char *name, rdt_dtype *out) {
  for (int i = 0; i < RDT_DTYPE_COUNT; i++) {
    if (strcmp(name, dtypes[i].name) == 0) {
      *out = (rdt_dtype)i;
      return 0;
    }
  }
  return -1;
}

int64_t rdt_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

const char *rdt_shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
  size_t used = 0;
  used += (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < ndim && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (used < len) snprintf(buf + used, len - used, "]");
  return buf;
}

/* ---------------------------------------------------------------- half precision */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float rdt_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t rdt_f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);                                           /* nearest even */
  return (uint16_t)(u >> 16);
}

float rdt_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));   /* inf / nan */
  if (exp == 0) {                                                       /* zero / subnormal */
    float v = ldexpf((float)man, -24);
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t rdt_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;                 /* nan */
  if (a >= 0x477ff000u) return sign | 0x7c00u;                /* overflow (>= 65520) -> inf */
  if (a < 0x38800000u) {                                      /* subnormal or zero in f16 */
    float v = bits_f32(a);
    /* value / 2^-24, rounded to nearest even, as an integer mantissa */
    float m = v * 16777216.0f;
    float r = nearbyintf(m);
    return sign | (uint16_t)r;
  }
  uint32_t mant = a & 0x7fffffu;
  uint32_t exp = (a >> 23) - 112u;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;   /* nearest even; may carry into exp */
  return sign | (uint16_t)h;
}

/* Read element i of a buffer of type t as double. */
static double load(const void *p, rdt_dtype t, size_t i) {
  switch (t) {
    case RDT_F32: return ((const float *)p)[i];
    case RDT_F16: return rdt_f16_to_f32(((const uint16_t *)p)[i]);
    case RDT_BF16: return rdt_bf16_to_f32(((const uint16_t *)p)[i]);
    case RDT_F64: return ((const double *)p)[i];
    case RDT_I64: return (double)((const int64_t *)p)[i];
    case RDT_I32: return ((const int32_t *)p)[i];
    case RDT_I16: return ((const int16_t *)p)[i];
    case RDT_I8: return ((const int8_t *)p)[i];
    case RDT_U8: return ((const uint8_t *)p)[i];
    case RDT_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: RDT_ASSERT(0 && "bad dtype");
  }
  return 0;
}

/* Write element i of a buffer of type t from double. */
static void store(void *p, rdt_dtype t, size_t i, double v) {
  switch (t) {
    case RDT_F32: ((float *)p)[i] = (float)v; break;
    case RDT_F16: ((uint16_t *)p)[i] = rdt_f32_to_f16((float)v); break;
    case RDT_BF16: ((uint16_t *)p)[i] = rdt_f32_to_bf16((float)v); break;
    case RDT_F64: ((double *)p)[i] = v; break;
    case RDT_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case RDT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case RDT_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case RDT_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case RDT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case RDT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: RDT_ASSERT(0 && "bad dtype");
  }
}

void rdt_convert(void *dst, rdt_dtype dst_type, const void *src, rdt_dtype src_type, size_t n) {
  if (dst_type == src_type) {
    memmove(dst, src, n * rdt_dtype_size(src_type));
    return;
  }
  if (dst_type == RDT_F32 && src_type == RDT_BF16) {
    for (size_t i = 0; i < n; i++) ((float *)dst)[i] = rdt_bf16_to_f32(((const uint16_t *)src)[i]);
    return;
  }
  if (dst_type == RDT_BF16 && src_type == RDT_F32) {
    for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = rdt_f32_to_bf16(((const float *)src)[i]);
    return;
  }
  for (size_t i = 0; i < n; i++) store(dst, dst_type, i, load(src, src_type, i));
}

/* ---------------------------------------------------------------- arenas */

int rdt_arena_init(rdt_arena *a, size_t bytes) {
  memset(a, 0, sizeof *a);
  if (posix_memalign((void **)&a->base, 64, bytes ? bytes : 64) != 0) return rdt_fail("arena: out of memory (%zu bytes)", bytes);
  a->size = bytes;
  return 0;
}

void *rdt_arena_alloc(rdt_arena *a, size_t bytes) {
  size_t start = (a->used + 63) & ~(size_t)63;
  if (start + bytes > a->size) return NULL;
  a->used = start + bytes;
  if (a->used > a->peak) a->peak = a->used;
  return a->base + start;
}

void rdt_arena_reset(rdt_arena *a) { a->used = 0; }

void rdt_arena_free(rdt_arena *a) {
  free(a->base);
  memset(a, 0, sizeof *a);
}
