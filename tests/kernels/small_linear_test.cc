// SmallLinear against a double-precision reference: every tile shape and remainder (rows around
// multiples of 4, odd output counts, `in` in and out of 16s), both write modes, strided output.
#include "kernels/small_linear.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace mswa {
namespace {

// bfloat16 bits of x, rounded to nearest even.
Bf16 ToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return Bf16{static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16)};
}
float FromBf16(Bf16 b) {
  const uint32_t bits = static_cast<uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Runs SmallLinear with weights `w` (fp32) or their bfloat16 rounding (`bf16`) against the
// double-precision product with the weights it was given.
void CheckEveryShape(bool bf16) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t rows : {1, 3, 4, 5, 8, 13, 32, 64}) {
    for (int64_t in : {16, 24, 256, 704}) {
      for (int64_t out : {1, 2, 3, 64, 65, 130}) {
        for (bool accumulate : {false, true}) {
          const int64_t stride = out + 3;
          std::vector<float> x(rows * in), w(out * in), y(rows * stride);
          for (float& v : x) v = normal(rng);
          std::vector<Bf16> w16(out * in);
          for (size_t i = 0; i < w.size(); ++i) {
            w16[i] = ToBf16(normal(rng));
            w[i] = bf16 ? FromBf16(w16[i]) : normal(rng);
          }
          for (float& v : y) v = normal(rng);
          const std::vector<float> before = y;
          if (bf16) {
            SmallLinear(x.data(), rows, in, w16.data(), out, y.data(), stride, accumulate);
          } else {
            SmallLinear(x.data(), rows, in, w.data(), out, y.data(), stride, accumulate);
          }
          double worst = 0;
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t o = 0; o < stride; ++o) {
              double want = before[r * stride + o];  // the padding past `out` is never written
              if (o < out) {
                double dot = 0;
                for (int64_t i = 0; i < in; ++i) dot += static_cast<double>(x[r * in + i]) * w[o * in + i];
                want = accumulate ? want + dot : dot;
              }
              worst = std::max(worst, std::abs(want - y[r * stride + o]));
            }
          }
          EXPECT_LT(worst, 1e-5 * in) << "rows " << rows << " in " << in << " out " << out
                                      << (accumulate ? " accumulate" : "") << (bf16 ? " bf16" : "");
        }
      }
    }
  }
}

TEST(SmallLinear, MatchesTheReferenceForEveryShape) { CheckEveryShape(false); }
TEST(SmallLinear, Bf16WeightsMatchTheReferenceForEveryShape) { CheckEveryShape(true); }

// int8: quantization rounds each weight to within half a step of its group's scale, and the
// product equals the double-precision product with the dequantized weights.
TEST(SmallLinear, Int8WeightsMatchTheReferenceForEveryShape) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t rows : {1, 3, 4, 5, 13, 64}) {
    for (int64_t in : {16, 24, 48, 256, 688}) {
      for (int64_t out : {1, 3, 64, 130}) {
        for (bool accumulate : {false, true}) {
          const int64_t stride = out + 3, groups = Int8Groups(in);
          std::vector<float> x(rows * in), w(out * in), y(rows * stride), deq(out * in);
          for (float& v : x) v = normal(rng);
          for (float& v : w) v = normal(rng);
          if (out > 1) std::fill(w.begin() + in, w.begin() + 2 * in, 0.f);  // an all-zero row
          std::vector<int8_t> q(out * in);
          std::vector<float> scales(out * groups);
          QuantizeInt8(w.data(), out, in, q.data(), scales.data());
          const Int8Matrix m{q.data(), scales.data(), out};
          DequantizeInt8(m, in, 0, out, deq.data());
          for (int64_t o = 0; o < out; ++o) {
            for (int64_t i = 0; i < in; ++i) {
              ASSERT_LE(std::abs(deq[o * in + i] - w[o * in + i]), 0.5f * scales[o * groups + i / kInt8Group] + 1e-6f);
            }
          }
          for (float& v : y) v = normal(rng);
          const std::vector<float> before = y;
          SmallLinear(x.data(), rows, in, m, y.data(), stride, accumulate);
          double worst = 0;
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t o = 0; o < stride; ++o) {
              double want = before[r * stride + o];
              if (o < out) {
                double dot = 0;
                for (int64_t i = 0; i < in; ++i) dot += static_cast<double>(x[r * in + i]) * deq[o * in + i];
                want = accumulate ? want + dot : dot;
              }
              worst = std::max(worst, std::abs(want - y[r * stride + o]));
            }
          }
          EXPECT_LT(worst, 1e-5 * in) << "rows " << rows << " in " << in << " out " << out;
        }
      }
    }
  }
}

}  // namespace
}  // namespace mswa
