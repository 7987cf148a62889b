/* core/tensor.h: dtypes, host tensors, half-precision conversion, arenas. */
#ifndef RDT_TENSOR_H
#define RDT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  RDT_F32, RDT_F16, RDT_BF16, RDT_F64,
  RDT_I64, RDT_I32, RDT_I16, RDT_I8, RDT_U8, RDT_BOOL,
  RDT_DTYPE_COUNT
} rdt_dtype;

/* Bytes per element. */
size_t rdt_dtype_size(rdt_dtype t);
/* safetensors spelling: "F32", "BF16", "BOOL", ... */
const char *rdt_dtype_name(rdt_dtype t);
/* Parse a safetensors dtype name; -1 if unknown. */
int rdt_dtype_parse(const char *name, rdt_dtype *out);

#define RDT_MAX_DIMS 8

/* A named n-d array in host memory (or pointing into a mapped file). */
typedef struct {
  const char *name;
  rdt_dtype dtype;
  int ndim;
  int64_t shape[RDT_MAX_DIMS];
  void *data;
  size_t nbytes;
} rdt_tensor;

int64_t rdt_shape_numel(int ndim, const int64_t *shape);
static inline int64_t rdt_numel(const rdt_tensor *t) { return rdt_shape_numel(t->ndim, t->shape); }
/* "[2, 64, 128]" into buf. */
const char *rdt_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

/* bf16 and fp16 <-> f32, round to nearest even, NaN kept. */
float rdt_bf16_to_f32(uint16_t h);
uint16_t rdt_f32_to_bf16(float f);
float rdt_f16_to_f32(uint16_t h);
uint16_t rdt_f32_to_f16(float f);

/* Convert n elements between any two numeric dtypes (via double for ints/f64). */
void rdt_convert(void *dst, rdt_dtype dst_type, const void *src, rdt_dtype src_type, size_t n);

/* A bump allocator over one block: many allocations, one free. */
typedef struct {
  unsigned char *base;
  size_t size, used, peak;
} rdt_arena;

int rdt_arena_init(rdt_arena *a, size_t bytes);      /* -1 if out of memory */
void *rdt_arena_alloc(rdt_arena *a, size_t bytes);    /* 64-byte aligned; NULL if full */
void rdt_arena_reset(rdt_arena *a);
void rdt_arena_free(rdt_arena *a);

#endif
