/* model/encoder_util.h: plumbing shared by the frozen encoders (siglip.c, t5.c).
 *
 * Weights stay in the mapped checkpoint (any float dtype) until used.  Small
 * tensors (norms, biases, embeddings tables) are converted to F32 device
 * buffers at load.  Matrices are "linear weights" held in an enc_store:
 *   resident  every matrix converted once into its own compute copy
 *             (activation dtype: F32 on CPU, BF16 on CUDA);
 *   streamed  each use converts the matrix from the mapped file into a scratch
 *             buffer shared by all layers (one per slot: q, k, v, ...), so a
 *             9.5 GB bf16 T5-XXL runs on a CPU machine with far less memory
 *             than its 19 GB F32 copy would take, at the cost of converting
 *             every weight once per forward pass.
 * ENC_AUTO streams on the CPU backend when the compute copies would exceed
 * 40% of physical memory, and keeps everything resident otherwise.
 */
#ifndef RDT_MODEL_ENCODER_UTIL_H
#define RDT_MODEL_ENCODER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "core/error.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"

typedef enum { ENC_AUTO = -1, ENC_RESIDENT = 0, ENC_STREAM = 1 } enc_mode;

#define ENC_MAX_SLOTS 8

/* A matrix used by k_linear: its source tensor and, when resident, its compute copy. */
typedef struct {
  const rdt_tensor *src;
  void *dev;
  int slot;
} enc_linear;

typedef struct {
  k_backend *b;
  int stream;                        /* 1: streamed, 0: resident */
  void *slot[ENC_MAX_SLOTS];         /* streamed: one scratch matrix per slot */
  size_t slot_elems[ENC_MAX_SLOTS];
  size_t resident_bytes;
} enc_store;

/* Choose the mode for `linear_elems` matrix elements (ENC_AUTO resolved). */
int enc_choose_stream(k_backend *b, enc_mode mode, size_t linear_elems);
void enc_store_init(enc_store *s, k_backend *b, int stream);
/* Register a matrix; resident stores convert it now. */
void enc_linear_init(enc_store *s, enc_linear *w, const rdt_tensor *t, int slot);
/* The compute copy for the next k_linear (streamed: converted into its slot now). */
const void *enc_linear_get(enc_store *s, const enc_linear *w);
void enc_linear_free(enc_store *s, enc_linear *w);
void enc_store_free(enc_store *s);

/* The tensor `name` with exactly this shape; NULL + rdt_error() naming the
 * file and tensor when it is missing, not a float, or shaped otherwise. */
const rdt_tensor *enc_tensor(const rdt_st *st, const char *name, int ndim, const int64_t *shape);
/* Same with the name built printf-style (layer-numbered names). */
const rdt_tensor *enc_tensorf(const rdt_st *st, int ndim, const int64_t *shape, const char *fmt, ...)
    RDT_PRINTF(4, 5);

/* Elements [first, first + n) of a float tensor as F32 (any alignment). */
void enc_read_f32(const rdt_tensor *t, size_t first, size_t n, float *dst);
/* A new F32 device buffer holding the tensor (norm weights, biases, tables). */
float *enc_upload_f32(k_backend *b, const rdt_tensor *t);
/* Convert the tensor into an activation-dtype device buffer (in chunks). */
void enc_upload_act(k_backend *b, void *dst, const rdt_tensor *t);

/* Make *buf hold at least `bytes` (reallocated on the backend when too small). */
void *enc_reserve(k_backend *b, void **buf, size_t *cap, size_t bytes);

/* ---------------------------------------------------------------- checkpoint layouts */
/* One tensor an encoder reads: full name, shape, and how a random stand-in
 * fills it (benchmarks at real sizes without the real weights). */
typedef enum { ENC_FILL_ONES, ENC_FILL_ZEROS, ENC_FILL_UNIFORM } enc_fill;
typedef struct {
  char name[160];
  int ndim;
  int64_t shape[4];
  enc_fill fill;
} enc_spec;

/* Append a spec (name built printf-style) to a growing array. */
void enc_spec_add(enc_spec **v, int *n, enc_fill fill, int ndim, const int64_t *shape, const char *fmt, ...)
    RDT_PRINTF(6, 7);
/* Look every spec up (t[i] for spec i); -1 + rdt_error() at the first tensor
 * that is missing or shaped otherwise. */
int enc_find_all(const rdt_st *st, const enc_spec *specs, int n, const rdt_tensor **t);
/* Write dir/model.safetensors with random tensors for the specs (uniform in
 * +-1/sqrt(fan-in), or ones / zeros) and dir/config.json; 0 or -1. */
int enc_write_random(const char *dir, const enc_spec *specs, int n, rdt_dtype dtype, uint64_t seed,
                     const char *config_json);

/* Integer / float config values with defaults; -1 + message on a wrong type. */
int enc_cfg_int(const rdt_json *cfg, const char *key, int def, int *out);
int enc_cfg_float(const rdt_json *cfg, const char *key, float def, float *out);

#endif
