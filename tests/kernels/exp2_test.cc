// The tile kernel's 2^x (kernels/vec16.h, Exp2NonPositive) against double precision on a dense
// grid of its domain. This file is compiled twice: with the project's flags (the portable
// rounding and exponent bits) and with -march=x86-64-v4 (vrndscaleps and vscalefps), see
// tests/CMakeLists.txt; the second skips on CPUs without AVX-512.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/vec16.h"

// GCC 12 reports the undefined pass-through operand inside its own AVX-512 intrinsics' headers
// (_mm512_max_ps and others, inlined here) as maybe uninitialized: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mswa {
namespace {

bool CpuRunsThisUnit() {
#if defined(__AVX512F__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return true;
#endif
}

// 2^x for 16 inputs at a time.
std::vector<float> Exp2(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); i += 16) {
    float lanes[16] = {};
    for (size_t j = 0; j < 16 && i + j < x.size(); ++j) lanes[j] = x[i + j];
    const V16 e = Exp2NonPositive(Load16(lanes));
    float res[16];
    std::memcpy(res, &e, sizeof(res));
    for (size_t j = 0; j < 16 && i + j < x.size(); ++j) out[i + j] = res[j];
  }
  return out;
}

TEST(Exp2NonPositive, WithinTwoUlpOfDoubleOnItsRange) {
  if (!CpuRunsThisUnit()) GTEST_SKIP() << "this CPU lacks AVX-512";
  std::vector<float> x;
  for (int i = 0; i <= 125 * 4096; ++i) x.push_back(-static_cast<float>(i) / 4096.f);
  const std::vector<float> e = Exp2(x);
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp2(static_cast<double>(x[i]));
    const double rel = std::fabs(e[i] - want) / want;
    if (rel > worst) worst = rel, worst_x = x[i];
  }
  EXPECT_LT(worst, 1.2e-7) << "at x = " << worst_x;  // 2 ulp of a float in [1/2, 1)
  EXPECT_EQ(e[0], 1.f);  // the maximum's own weight
}

TEST(Exp2NonPositive, BelowTheRangeGivesATinyNormalFloatNotNaN) {
  if (!CpuRunsThisUnit()) GTEST_SKIP() << "this CPU lacks AVX-512";
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> e = Exp2({-125.5f, -200.f, -1e30f, -inf});
  for (float v : e) {
    EXPECT_TRUE(std::isnormal(v)) << v;
    EXPECT_LE(v, std::exp2(-124.f));
  }
}

}  // namespace
}  // namespace mswa
