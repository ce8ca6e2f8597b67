// 16 floats as one value for the CPU kernels: one AVX-512 register, two AVX2 or four SSE
// registers in the target_clones versions (GCC/Clang vector extensions, so one source serves
// every clone), with loads from fp32 and bfloat16. Internal to kernels/: internal linkage, so
// units compiled for different ISA levels keep their own copies.
//
// The helpers are always inlined into the clones, so the vector type never crosses a call:
// GCC's -Wpsabi note about passing it without AVX-512 (reported at the end of the unit) does
// not apply, and is silenced for the units that include this header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/bf16.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// (Vector + scalar broadcasts: one vbroadcastss. An initializer list of sixteen copies became
// sixteen masked moves, inside loops too.)
__attribute__((always_inline)) inline V16 Splat16(float x) { return V16{} + x; }
// Lane-wise mask ? a : b, for a mask from a vector comparison (all bits set or clear per lane).
__attribute__((always_inline)) inline V16 Select(const I32x16& mask, const V16& a, const V16& b) {
  I32x16 ai, bi;
  std::memcpy(&ai, &a, sizeof(ai));
  std::memcpy(&bi, &b, sizeof(bi));
  const I32x16 ri = (ai & mask) | (bi & ~mask);
  V16 r;
  std::memcpy(&r, &ri, sizeof(r));
  return r;
}
__attribute__((always_inline)) inline V16 Max16(const V16& a, const V16& b) { return Select(a > b, a, b); }
// The largest of a vector's lanes.
__attribute__((always_inline)) inline float MaxLane(const V16& v) {
  float s[16];
  std::memcpy(s, &v, sizeof(s));
  float m = s[0];
  for (int i = 1; i < 16; ++i) m = std::max(m, s[i]);
  return m;
}

// Transposes 16 vectors in place (m[i][c] becomes m[c][i]): for each bit of the lane index,
// rows i and i | bit swap the lanes whose index has that bit. 64 two-source shuffles, one
// instruction each on AVX-512; scalar stores at a 64-byte stride cost several times more.
template <int kBit, size_t... I>
__attribute__((always_inline)) inline V16 TransposeLow(const V16& a, const V16& b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, ((I & kBit) ? 16 + (I ^ kBit) : I)...);
}
template <int kBit, size_t... I>
__attribute__((always_inline)) inline V16 TransposeHigh(const V16& a, const V16& b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, ((I & kBit) ? 16 + I : (I ^ kBit))...);
}
template <int kBit>
__attribute__((always_inline)) inline void TransposeStage(V16 (&m)[16]) {
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    if (i & kBit) continue;
    const V16 a = m[i], b = m[i | kBit];
    m[i] = TransposeLow<kBit>(a, b, std::make_index_sequence<16>());
    m[i | kBit] = TransposeHigh<kBit>(a, b, std::make_index_sequence<16>());
  }
}
__attribute__((always_inline)) inline void Transpose16(V16 (&m)[16]) {
  TransposeStage<8>(m);
  TransposeStage<4>(m);
  TransposeStage<2>(m);
  TransposeStage<1>(m);
}

// The operations that differ between a float and 16 of them, for code written once for both.
// NaN gives lo, as Max16 does lane by lane (and as the float-to-int conversion after it needs).
__attribute__((always_inline)) inline float AtLeast(float x, float lo) { return x >= lo ? x : lo; }
__attribute__((always_inline)) inline V16 AtLeast(const V16& x, float lo) { return Max16(x, Splat16(lo)); }
__attribute__((always_inline)) inline int32_t TruncateToInt(float x) { return static_cast<int32_t>(x); }
__attribute__((always_inline)) inline I32x16 TruncateToInt(const V16& x) {
  return __builtin_convertvector(x, I32x16);
}

__attribute__((always_inline)) inline float Abs(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  bits &= 0x7fffffffu;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}
__attribute__((always_inline)) inline V16 Abs(const V16& x) {
  I32x16 bits;
  std::memcpy(&bits, &x, sizeof(bits));
  bits &= 0x7fffffff;
  V16 r;
  std::memcpy(&r, &bits, sizeof(r));
  return r;
}
// z >= 0 ? a : b (NaN gives b).
__attribute__((always_inline)) inline float IfNonNegative(float z, float a, float b) { return z >= 0.f ? a : b; }
__attribute__((always_inline)) inline V16 IfNonNegative(const V16& z, const V16& a, const V16& b) {
  return Select(z >= Splat16(0.f), a, b);
}

// x rounded to the nearest integer (|x| < 2^22) with the 1.5 * 2^23 trick: exact, and it
// vectorizes without SSE4.1's round instruction, which the baseline clone lacks.
template <typename F>
__attribute__((always_inline)) inline F RoundToWhole(const F& x) {
  return (x + 12582912.f) - 12582912.f;
}
// 2^n for a whole n in [-126, 0] (a float from RoundToWhole), built from its exponent bits.
template <typename F>
__attribute__((always_inline)) inline F Pow2OfWhole(const F& n) {
  const auto bits = (TruncateToInt(n) + 127) << 23;
  F scale;
  static_assert(sizeof(bits) == sizeof(scale), "one 32-bit integer per float");
  std::memcpy(&scale, &bits, sizeof(scale));
  return scale;
}

// exp(x) for x <= 0 (a score minus the running maximum): Cephes' expf polynomial on a
// range-reduced argument, within 2 ulp. Branch- and call-free so that a loop of them vectorizes
// (a libm call per key cost more than the dot product and the V update together). Inputs below
// -87 give exp(-87) ~ 1.6e-38 instead of a denormal or 0: nothing next to the maximum's weight 1.
// F is float or V16 (16 lanes at once: attend_tile_cpu.h, logit_stats_cpu.cc).
template <typename F>
__attribute__((always_inline)) inline F ExpNonPositive(F x) {
  x = AtLeast(x, -87.f);
  const F n = RoundToWhole(x * 1.44269504088896341f);
  F r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F poly = r * 1.9875691500e-4f + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  poly = poly * r * r + r + 1.f;
  return poly * Pow2OfWhole(n);
}

// 2^x for x <= 0, for scores kept in base 2 (the query pre-multiplied by log2 e, as the tile
// kernel does): then n = round(x) and r = x - n in [-1/2, 1/2] are exact, and 2^r is one
// polynomial (degree 6, fitted for relative error: within 1e-7 evaluated in float). Where the
// unit is compiled for AVX-512 (-march=x86-64-v4), the rounding and the multiply by 2^n are one
// instruction each (vrndscaleps, vscalefps): 10 operations per vector where exp takes 18.
// Inputs below -125 give 2^-125 ~ 2.4e-38, a normal float: nothing next to the maximum's 1.
__attribute__((always_inline)) inline V16 Exp2Poly(const V16& r) {
  V16 poly = r * 1.5353361960e-4f + 1.3398875017e-3f;
  poly = poly * r + 9.6184369177e-3f;
  poly = poly * r + 5.5503323674e-2f;
  poly = poly * r + 2.4022647738e-1f;
  poly = poly * r + 6.9314718246e-1f;
  return poly * r + 1.f;
}
__attribute__((always_inline)) inline V16 Exp2NonPositive(const V16& x) {
#if defined(__AVX512F__)
  const __m512 v = _mm512_max_ps(reinterpret_cast<const __m512&>(x), _mm512_set1_ps(-125.f));
  const __m512 n = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(v, n);
  const V16 poly = Exp2Poly(reinterpret_cast<const V16&>(r));
  const __m512 e = _mm512_scalef_ps(reinterpret_cast<const __m512&>(poly), n);
  return reinterpret_cast<const V16&>(e);
#else
  const V16 v = AtLeast(x, -125.f);
  const V16 n = RoundToWhole(v);
  return Exp2Poly(v - n) * Pow2OfWhole(n);
#endif
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
