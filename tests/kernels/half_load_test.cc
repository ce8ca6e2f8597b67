// The CPU kernel's fp16 and bf16 loads (kernels/attend_cpu.h) against the compiler's scalar
// conversions, for every one of the 65536 bit patterns. This file is compiled twice: with the
// project's flags (the portable integer path) and with -march=x86-64-v3 (F16C), see
// tests/CMakeLists.txt; the AVX-512 path runs in kernels_test on CPUs that have it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/attend_cpu.h"

namespace mswa {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

// Every 16-bit pattern through Load16, 16 at a time; returns how many differ from `want`
// (NaN matches NaN).
template <typename T, typename Want>
int CountMismatches(Want want) {
  int bad = 0;
  for (uint32_t base = 0; base < 65536; base += 16) {
    T h[16];
    for (int i = 0; i < 16; ++i) h[i].bits = static_cast<uint16_t>(base + i);
    const V16 got = Load16(h);
    for (int i = 0; i < 16; ++i) {
      const float w = want(h[i].bits);
      const float g = got[i];
      if (Bits(w) != Bits(g) && !(std::isnan(w) && std::isnan(g))) ++bad;
    }
  }
  return bad;
}

TEST(HalfLoads, Fp16ConvertsEveryPatternExactly) {
#if defined(__F16C__)
  if (!__builtin_cpu_supports("f16c") || !__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no F16C here";
#endif
  EXPECT_EQ(CountMismatches<F16>([](uint16_t b) {
              _Float16 h;
              std::memcpy(&h, &b, sizeof(h));
              return static_cast<float>(h);
            }),
            0);
}

TEST(HalfLoads, Bf16ConvertsEveryPatternExactly) {
#if defined(__F16C__)
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no AVX2 here";
#endif
  EXPECT_EQ(CountMismatches<Bf16>([](uint16_t b) {
              const uint32_t bits = static_cast<uint32_t>(b) << 16;
              float f;
              std::memcpy(&f, &bits, sizeof(f));
              return f;
            }),
            0);
}

}  // namespace
}  // namespace mswa
