// GatedActivationRows against double-precision SiLU and GELU-tanh: lengths around whole
// vectors, rows of a fused [gate | up] product with their strides, magnitudes from tiny to
// beyond exp's range, and NaN.
#include "kernels/gated_activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace mswa {
namespace {

// The sigmoid's argument: x for SiLU, 2 sqrt(2 / pi) (x + 0.044715 x^3) for GELU-tanh.
double Z(double x, GatedKind kind) {
  return kind == GatedKind::kSilu ? x : 2 * std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
}
// x * sigmoid(z) * up; for GELU-tanh 0.5 x (1 + tanh(u)) written without its cancellation.
double Reference(double x, double up, GatedKind kind) { return x / (1 + std::exp(-Z(x, kind))) * up; }
// A few ulp of fp32 for exp and the products, plus the rounding of z in fp32 (relative 6e-8 of
// z per rounding, up to four without FMA), which moves sigmoid(z) by |z| times that where
// z < 0; below exp's clamp (z < -87) sigmoid is exp(-87) ~ 1.6e-38 instead of less.
double Tolerance(double x, double up, double want, GatedKind kind) {
  return (8e-7 + 2.5e-7 * std::abs(Z(x, kind))) * std::abs(want) + 2e-38 * std::abs(x * up) + 1e-37;
}

void ExpectNearReference(const std::vector<float>& gate_up, int64_t rows, int64_t n, GatedKind kind) {
  std::vector<float> out(rows * n + 1, -7.f);
  GatedActivationRows(gate_up.data(), gate_up.data() + n, rows, n, 2 * n, kind, out.data(), n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      const double want = Reference(gate_up[r * 2 * n + i], gate_up[r * 2 * n + n + i], kind);
      EXPECT_NEAR(out[r * n + i], want, Tolerance(gate_up[r * 2 * n + i], gate_up[r * 2 * n + n + i], want, kind))
          << "row " << r << " column " << i << " of " << n << ", gate " << gate_up[r * 2 * n + i];
    }
  }
  EXPECT_EQ(out[rows * n], -7.f) << "wrote past the rows";
}

TEST(GatedActivation, MatchesTheReferenceForEveryLengthAndBothKinds) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 3.f);
  for (GatedKind kind : {GatedKind::kSilu, GatedKind::kGeluTanh}) {
    for (int64_t n : {1, 15, 16, 17, 33, 576, 1536}) {
      for (int64_t rows : {1, 3, 70}) {
        std::vector<float> gate_up(rows * 2 * n);
        for (float& v : gate_up) v = normal(rng);
        ExpectNearReference(gate_up, rows, n, kind);
      }
    }
  }
}

TEST(GatedActivation, LargeAndTinyMagnitudes) {
  const std::vector<float> gates = {0.f, -0.f, 1e-30f, -1e-30f, 1e-3f, -1e-3f, 5.f, -5.f, 20.f, -20.f,
                                    60.f, -60.f, 87.f, -87.f, 100.f, -100.f, 1e4f, -1e4f, 3e10f, -3e10f};
  for (GatedKind kind : {GatedKind::kSilu, GatedKind::kGeluTanh}) {
    const int64_t n = static_cast<int64_t>(gates.size());
    std::vector<float> gate_up(gates);
    gate_up.resize(2 * n, 1.5f);
    std::vector<float> out(n);
    GatedActivationRows(gate_up.data(), gate_up.data() + n, 1, n, 2 * n, kind, out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = Reference(gates[i], 1.5, kind);
      EXPECT_TRUE(std::isfinite(out[i])) << gates[i];
      EXPECT_NEAR(out[i], want, Tolerance(gates[i], 1.5, want, kind))
          << "gate " << gates[i];
    }
  }
}

TEST(GatedActivation, NanStaysNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (GatedKind kind : {GatedKind::kSilu, GatedKind::kGeluTanh}) {
    std::vector<float> gate_up(64, 1.f);
    gate_up[5] = nan;    // a gate, in the vector part
    gate_up[32 + 9] = nan;  // an up value
    std::vector<float> out(32);
    GatedActivationRows(gate_up.data(), gate_up.data() + 32, 1, 32, 64, kind, out.data(), 32);
    EXPECT_TRUE(std::isnan(out[5]));
    EXPECT_TRUE(std::isnan(out[9]));
    EXPECT_FALSE(std::isnan(out[6]));
  }
}

}  // namespace
}  // namespace mswa
