/* tests/core/tensor_test.c: bf16/f16 conversion against hand-worked bit patterns,
 * dtype tables, shapes, conversions and arenas. */
#include <stdint.h>
#include "test.h"
#include "core/tensor.h"

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint32_t to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static void t_bf16(void) {
  static const struct { uint32_t f32; uint16_t bf16; } cases[] = {
    {0x3f800000, 0x3f80},   /* 1.0 exact */
    {0xc0000000, 0xc000},   /* -2.0 */
    {0x3f808000, 0x3f80},   /* halfway, even below: stays */
    {0x3f818000, 0x3f82},   /* halfway, odd below: rounds up to even */
    {0x3f808001, 0x3f81},   /* just above halfway */
    {0x3f807fff, 0x3f80},   /* just below halfway */
    {0x7f7fffff, 0x7f80},   /* FLT_MAX rounds to +inf */
    {0x7f800000, 0x7f80},   /* +inf */
    {0xff800000, 0xff80},   /* -inf */
    {0x00010000, 0x0001},   /* smallest bf16 subnormal */
    {0x00008000, 0x0000},   /* half of it: tie to even zero */
    {0x00018000, 0x0002},   /* 1.5 units: tie to even 2 */
    {0x80000000, 0x8000},   /* -0 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_MSG(rdt_f32_to_bf16(from_bits(cases[i].f32)) == cases[i].bf16, "f32 0x%08x -> 0x%04x, want 0x%04x",
              cases[i].f32, rdt_f32_to_bf16(from_bits(cases[i].f32)), cases[i].bf16);
  /* NaN stays NaN, even one whose payload is only in the low bits. */
  uint16_t n = rdt_f32_to_bf16(from_bits(0x7f800001));
  CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
  CHECK(isnan(rdt_bf16_to_f32(rdt_f32_to_bf16(NAN))));
  CHECK(to_bits(rdt_bf16_to_f32(0x3f80)) == 0x3f800000);
  CHECK(rdt_bf16_to_f32(0x0001) == ldexpf(1.0f, -133));   /* 2^-126 * 2^-7 */
  CHECK(rdt_bf16_to_f32(0x4049) == 3.140625f);             /* 1.5703125 * 2 */
}

static void t_f16(void) {
  static const struct { float f; uint16_t h; } cases[] = {
    {1.0f, 0x3c00},
    {-2.0f, 0xc000},
    {65504.0f, 0x7bff},                 /* largest finite */
    {65519.0f, 0x7bff},                 /* below the halfway point to 65536 */
    {65520.0f, 0x7c00},                 /* halfway: rounds to even = inf */
    {1e6f, 0x7c00},
    {0.0f, 0x0000},
    {-0.0f, 0x8000},
    {0x1p-24f, 0x0001},                 /* smallest subnormal */
    {0x1p-25f, 0x0000},                 /* tie between 0 and 1 unit: even 0 */
    {0x1.8p-24f, 0x0002},               /* 1.5 units: tie to even 2 */
    {0x1p-14f, 0x0400},                 /* smallest normal */
    {0x1.ffcp-15f, 0x0400},             /* 1023.5 units: rounds up into the normals */
    {1.0f + 0x1p-11f, 0x3c00},          /* tie, even below */
    {1.0f + 0x3p-11f, 0x3c02},          /* tie, odd below: up */
    {0.1f, 0x2e66},
    {INFINITY, 0x7c00},
    {-INFINITY, 0xfc00},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_MSG(rdt_f32_to_f16(cases[i].f) == cases[i].h, "%a -> 0x%04x, want 0x%04x", cases[i].f,
              rdt_f32_to_f16(cases[i].f), cases[i].h);
  uint16_t n = rdt_f32_to_f16(NAN);
  CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
  CHECK(rdt_f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(rdt_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
  CHECK(rdt_f16_to_f32(0x8001) == -0x1p-24f);
  CHECK(rdt_f16_to_f32(0x7bff) == 65504.0f);
  CHECK(rdt_f16_to_f32(0x3555) == 0x1.554p-2f);   /* 0.333251953125 */
  CHECK(isinf(rdt_f16_to_f32(0x7c00)) && rdt_f16_to_f32(0xfc00) < 0);
  CHECK(isnan(rdt_f16_to_f32(0x7e00)));
  /* Every finite f16 survives f16 -> f32 -> f16. */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00) continue;
    if (rdt_f32_to_f16(rdt_f16_to_f32((uint16_t)h)) != h) {
      CHECK_MSG(0, "f16 0x%04x does not round-trip", h);
      break;
    }
  }
}

static void t_dtypes_and_shapes(void) {
  rdt_dtype d;
  CHECK(rdt_dtype_parse("BF16", &d) == 0 && d == RDT_BF16 && rdt_dtype_size(d) == 2);
  CHECK(rdt_dtype_parse("I64", &d) == 0 && rdt_dtype_size(d) == 8);
  CHECK(rdt_dtype_parse("BOOL", &d) == 0 && rdt_dtype_size(d) == 1);
  CHECK(rdt_dtype_parse("F8_E4M3", &d) == -1);
  CHECK(strcmp(rdt_dtype_name(RDT_F16), "F16") == 0);
  int64_t s[3] = {2, 64, 128};
  char b[64];
  CHECK(rdt_shape_numel(3, s) == 16384 && rdt_shape_numel(0, s) == 1);
  CHECK(strcmp(rdt_shape_str(3, s, b, sizeof b), "[2, 64, 128]") == 0);
  CHECK(strcmp(rdt_shape_str(0, s, b, sizeof b), "[]") == 0);
}

static void t_convert(void) {
  const float f[4] = {1.5f, -2.0f, 3.0f, 0.0f};
  uint16_t bf[4];
  int64_t i64[4];
  double d[4];
  uint8_t bo[4];
  rdt_convert(bf, RDT_BF16, f, RDT_F32, 4);
  CHECK(bf[0] == 0x3fc0 && bf[1] == 0xc000 && bf[2] == 0x4040 && bf[3] == 0);
  rdt_convert(i64, RDT_I64, f, RDT_F32, 4);
  CHECK(i64[0] == 1 && i64[1] == -2 && i64[2] == 3);
  rdt_convert(d, RDT_F64, bf, RDT_BF16, 4);
  CHECK(d[0] == 1.5 && d[1] == -2.0);
  rdt_convert(bo, RDT_BOOL, f, RDT_F32, 4);
  CHECK(bo[0] == 1 && bo[1] == 1 && bo[3] == 0);
}

static void t_arena(void) {
  rdt_arena a;
  CHECK(rdt_arena_init(&a, 1000) == 0);
  void *p = rdt_arena_alloc(&a, 10), *q = rdt_arena_alloc(&a, 10);
  CHECK(p && q && ((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0 && (char *)q - (char *)p == 64);
  CHECK(rdt_arena_alloc(&a, 2000) == NULL);
  rdt_arena_reset(&a);
  CHECK(rdt_arena_alloc(&a, 10) == p && a.peak == 74);
  rdt_arena_free(&a);
}

int main(void) {
  RUN(t_bf16);
  RUN(t_f16);
  RUN(t_dtypes_and_shapes);
  RUN(t_convert);
  RUN(t_arena);
  return test_done();
}
