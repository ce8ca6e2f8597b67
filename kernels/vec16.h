// 16 floats as one value for the CPU kernels: one AVX-512 register, two AVX2 or four SSE
// registers in the target_clones versions (GCC/Clang vector extensions, so one source serves
// every clone), with loads from fp32 and bfloat16. Internal to kernels/: internal linkage, so
// units compiled for different ISA levels keep their own copies.
//
// The helpers are always inlined into the clones, so the vector type never crosses a call:
// GCC's -Wpsabi note about passing it without AVX-512 (reported at the end of the unit) does
// not apply, and is silenced for the units that include this header.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace mswa {
namespace {

typedef float V16 __attribute__((vector_size(64)));
typedef uint16_t U16x16 __attribute__((vector_size(32)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));
typedef int8_t I8x16 __attribute__((vector_size(16)));
typedef int16_t I16x16 __attribute__((vector_size(32)));
typedef int32_t I32x16 __attribute__((vector_size(64)));

__attribute__((always_inline)) inline V16 Load16(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
__attribute__((always_inline)) inline void Store16(float* p, const V16& v) { std::memcpy(p, &v, sizeof(v)); }

// bfloat16 widens exactly with a 16-bit shift.
__attribute__((always_inline)) inline V16 Load16(const Bf16* p) {
  U16x16 h;
  std::memcpy(&h, p, sizeof(h));
  const U32x16 bits = __builtin_convertvector(h, U32x16) << 16;
  V16 v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

inline float ToFloat(float x) { return x; }
inline float ToFloat(Bf16 x) {
  const uint32_t bits = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace
}  // namespace mswa
