/* kernels/cuda/emu/cuda_bf16.h: bf16 for the host emulation, converting through core/tensor.h
 * (round to nearest even, like the device intrinsics). */
#pragma once
#include <stdint.h>
extern "C" { float rdt_bf16_to_f32(uint16_t h); uint16_t rdt_f32_to_bf16(float f); }
struct __nv_bfloat16 { uint16_t bits; };
static inline float __bfloat162float(__nv_bfloat16 x) { return rdt_bf16_to_f32(x.bits); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{rdt_f32_to_bf16(f)}; }
