// ScanLogits against a double-precision reference: sizes around whole vectors, up to Gemma's
// vocabulary; ties; -inf, NaN and +inf anywhere; huge magnitudes.
#include "kernels/logit_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace mswa {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

void ExpectMatchesReference(const std::vector<float>& x) {
  const LogitStats s = ScanLogits(x.data(), static_cast<int32_t>(x.size()));
  ASSERT_TRUE(s.finite) << "n " << x.size();
  float max = -kInf;
  int32_t argmax = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] > max) {
      max = x[i];
      argmax = static_cast<int32_t>(i);
    }
  }
  double sum = 0;
  for (const float v : x) sum += std::exp(static_cast<double>(v) - max);
  EXPECT_EQ(s.max, max);
  EXPECT_EQ(s.argmax, argmax) << "n " << x.size();
  // Each term within 2 ulp of fp32 and clamped at exp(-87): relative 2.4e-7 of the sum, plus
  // at most n * 1.6e-38.
  EXPECT_NEAR(s.sum_exp, sum, 2.5e-7 * sum + x.size() * 2e-38) << "n " << x.size();
}

TEST(ScanLogits, MatchesTheReferenceForEverySize) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 4.f);
  for (int32_t n : {1, 2, 15, 16, 17, 31, 33, 100, 4096, 49152, 262144}) {
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    ExpectMatchesReference(x);
    // A peaked row (a trained model's) and a flat one.
    x[n / 2] += 40.f;
    ExpectMatchesReference(x);
    for (float& v : x) v = 0.25f;
    ExpectMatchesReference(x);  // every entry a maximum: the first
  }
}

TEST(ScanLogits, TiesAndMinusInfinity) {
  for (int32_t n : {5, 16, 40}) {
    for (int32_t first : {0, n / 2, n - 1}) {
      std::vector<float> x(n, -kInf);
      x[first] = 3.f;
      if (first + 1 < n) x[n - 1] = 3.f;  // a later tie loses
      if (n > 2) x[1] = first == 1 ? 3.f : -2.f;
      ExpectMatchesReference(x);
    }
  }
  std::vector<float> huge = {1e30f, -1e30f, 1e30f, std::numeric_limits<float>::lowest(), 0.f};
  ExpectMatchesReference(huge);
}

TEST(ScanLogits, RowsWithoutAFiniteMaximumAreFlagged) {
  EXPECT_FALSE(ScanLogits(nullptr, 0).finite);
  for (int32_t n : {1, 16, 21, 64}) {
    EXPECT_FALSE(ScanLogits(std::vector<float>(n, -kInf).data(), n).finite) << n;
    for (int32_t at : {0, n / 2, n - 1}) {
      for (float bad : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
        std::vector<float> x(n, 1.f);
        x[at] = bad;
        EXPECT_FALSE(ScanLogits(x.data(), n).finite) << "n " << n << " at " << at << " " << bad;
      }
    }
  }
}

}  // namespace
}  // namespace mswa
