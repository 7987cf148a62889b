/* kernels/cuda/emu/cuda_fp16.h: fp16 for the host emulation, converting through core/tensor.h
 * (round to nearest even, like the device intrinsics). */
#pragma once
#include <stdint.h>
extern "C" { float rdt_f16_to_f32(uint16_t h); uint16_t rdt_f32_to_f16(float f); }
struct __half { uint16_t bits; };
static inline float __half2float(__half x) { return rdt_f16_to_f32(x.bits); }
static inline __half __float2half_rn(float f) { return __half{rdt_f32_to_f16(f)}; }
