/* kernels/cuda/emu/mma.h: the nvcuda::wmma subset (16x16x16 tiles) for the
 * host emulation (verification tool; see run.sh).
 *
 * A fragment's element layout is opaque in CUDA, so here every lane simply
 * holds the whole tile (row-major) and computes the whole product; a program
 * that is correct for any layout is correct here.  Loads and stores check the
 * documented requirements: a 256-bit aligned pointer and an ldm that is a
 * multiple of 8 elements (16-bit types) or 4 (float).  A store waits for the
 * whole warp first, as the collective instruction does (no lane's store lands
 * before every lane has made its earlier loads); loads are not barriers, so a
 * missing __syncwarp() between lanes writing shared memory and a warp-wide
 * load shows up as wrong results. */
#pragma once
#include <type_traits>
#include "cuda_runtime.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

static inline void __syncwarp(unsigned = 0xffffffffu) { emu_wait(emu_warp_bar[emu_tid() / 32]); }

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "emulated for 16x16x16 only");
  enum { num_elements = 256 };
  T x[256]; /* row-major tile */
};

static inline float emu_val(float v) { return v; }
static inline float emu_val(__nv_bfloat16 v) { return __bfloat162float(v); }
static inline float emu_val(__half v) { return __half2float(v); }

template <typename P>
static inline void emu_check(const P *p, unsigned ldm) {
  unsigned need = sizeof(P) == 4 ? 4 : 8;
  if ((uintptr_t)p % 32 || ldm % need) {
    fprintf(stderr, "emu: wmma load/store needs a 32-byte aligned pointer and ldm %% %u == 0 (ptr %p, ldm %u)\n", need,
            (const void *)p, ldm);
    abort();
  }
}

template <typename Use, typename T, typename L>
static inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
  emu_check(p, ldm);
  /* element (r, c) of the fragment's matrix: rows x cols = 16 x 16 */
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) f.x[r * 16 + c] = std::is_same<L, row_major>::value ? p[r * ldm + c] : p[c * ldm + r];
}

static inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t l) {
  emu_check(p, ldm);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) f.x[r * 16 + c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

static inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
  emu_check(p, ldm);
  __syncwarp();
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * 16 + c];
}

template <typename Use, typename T, typename L>
static inline void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, T v) {
  for (int i = 0; i < 256; i++) f.x[i] = v;
}

template <typename T, typename LA, typename LB>
static inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                            const fragment<matrix_b, 16, 16, 16, T, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c) {
  float out[256];
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 16; n++) {
      float s = c.x[r * 16 + n];
      for (int k = 0; k < 16; k++) s += emu_val(a.x[r * 16 + k]) * emu_val(b.x[k * 16 + n]);
      out[r * 16 + n] = s;
    }
  memcpy(d.x, out, sizeof out);
}
}  // namespace wmma
}  // namespace nvcuda
