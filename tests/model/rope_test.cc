#include "model/runtime/rope.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mswa {
namespace {

TEST(Rope, RotatesPairsOfHalvesByPositionTimesFrequency) {
  const int64_t D = 4;
  at::Tensor x = at::arange(1, 5, at::kDouble).view({1, 1, D});  // [1, 2 | 3, 4]
  const RopeTables t = MakeRopeTables(3, 1, D, 10000.0, at::kDouble);
  at::Tensor y = ApplyRope(x, t);
  const double a0 = 3.0, a1 = 3.0 * std::pow(10000.0, -0.5);
  EXPECT_NEAR(y[0][0][0].item<double>(), 1 * std::cos(a0) - 3 * std::sin(a0), 1e-12);
  EXPECT_NEAR(y[0][0][2].item<double>(), 3 * std::cos(a0) + 1 * std::sin(a0), 1e-12);
  EXPECT_NEAR(y[0][0][1].item<double>(), 2 * std::cos(a1) - 4 * std::sin(a1), 1e-12);
  EXPECT_NEAR(y[0][0][3].item<double>(), 4 * std::cos(a1) + 2 * std::sin(a1), 1e-12);
}

TEST(Rope, PreservesNorm) {
  at::Tensor x = at::randn({5, 3, 16}, at::kDouble);
  at::Tensor y = ApplyRope(x, MakeRopeTables(100, 5, 16, 10000.0, at::kDouble));
  EXPECT_TRUE(at::allclose(x.norm(2, -1), y.norm(2, -1), 1e-12, 1e-12));
}

// q.k after RoPE depends only on the distance between positions; at 10^7 that holds only when
// angles are computed in fp64 (fp32 angles are off by up to ~0.6 rad there).
TEST(Rope, RelativeAtPositionTenMillion) {
  const int64_t D = 64;
  at::Tensor q = at::randn({1, 1, D}, at::kDouble), k = at::randn({1, 1, D}, at::kDouble);
  auto score = [&](int64_t qp, int64_t kp) {
    at::Tensor rq = ApplyRope(q, MakeRopeTables(qp, 1, D, 10000.0, at::kDouble));
    at::Tensor rk = ApplyRope(k, MakeRopeTables(kp, 1, D, 10000.0, at::kDouble));
    return (rq * rk).sum().item<double>();
  };
  const int64_t base = 10000000;
  for (int64_t d : {0, 1, 5, 200}) {
    EXPECT_NEAR(score(base + d, base), score(d, 0), 1e-6) << d;
  }
}

}  // namespace
}  // namespace mswa
