// SmallLinear against a double-precision reference: every tile shape and remainder (rows around
// multiples of 4, odd output counts, `in` in and out of 16s), both write modes, strided output.
#include "kernels/small_linear.h"
#include "kernels/small_linear_bf16.h"
#include "kernels/small_linear_q8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
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

// Runs SmallLinear with weights `w` (fp32, in rows or packed in panels) or their bfloat16
// rounding against the double-precision product with the weights it was given.
enum class Weights { kF32, kF32Panels, kBf16 };
void CheckEveryShape(Weights kind) {
  const bool bf16 = kind == Weights::kBf16;
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
          } else if (kind == Weights::kF32Panels) {
            std::vector<float> packed(F32PanelsFloats(out, in), std::nanf(""));
            PackF32Panels(w.data(), out, in, packed.data());
            SmallLinear(x.data(), rows, in, F32Panels{packed.data(), out}, y.data(), stride, accumulate);
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
                                      << (accumulate ? " accumulate" : "") << " kind " << static_cast<int>(kind);
        }
      }
    }
  }
}

TEST(SmallLinear, MatchesTheReferenceForEveryShape) { CheckEveryShape(Weights::kF32); }
TEST(SmallLinear, F32PanelsMatchTheReferenceForEveryShape) { CheckEveryShape(Weights::kF32Panels); }

// A row's outputs are the same bits alone as in a batch (the engine promises a sequence the same
// result whatever else is in the step), for the widths where the batched tiles split the columns
// into spans and the outputs into several blocks, and for every position in the batch.
TEST(SmallLinear, RowsGiveTheSameBitsAloneAsInAnyBatch) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t in : {576, 1536, 2048}) {
    const int64_t out = 100;
    std::vector<float> w(out * in);
    std::vector<Bf16> w16(out * in);
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] = normal(rng);
      w16[i] = ToBf16(w[i]);
    }
    const int64_t most = 64;
    std::vector<float> x(most * in);
    for (float& v : x) v = normal(rng);
    std::vector<float> packed(F32PanelsFloats(out, in));
    PackF32Panels(w.data(), out, in, packed.data());
    for (Weights kind : {Weights::kF32, Weights::kF32Panels, Weights::kBf16}) {
      const bool bf16 = kind == Weights::kBf16;
      auto product = [&](const float* xs, int64_t rows, float* y) {
        if (bf16) return SmallLinear(xs, rows, in, w16.data(), out, y, out, false);
        if (kind == Weights::kF32Panels) return SmallLinear(xs, rows, in, F32Panels{packed.data(), out}, y, out, false);
        SmallLinear(xs, rows, in, w.data(), out, y, out, false);
      };
      std::vector<float> alone(most * out);
      for (int64_t r = 0; r < most; ++r) product(x.data() + r * in, 1, alone.data() + r * out);
      for (int64_t rows : {4, 7, 8, 13, 32, 64}) {
        std::vector<float> batch(rows * out);
        product(x.data(), rows, batch.data());
        EXPECT_EQ(0, std::memcmp(batch.data(), alone.data(), batch.size() * sizeof(float)))
            << "in " << in << " rows " << rows << " kind " << static_cast<int>(kind);
      }
    }
  }
}
TEST(SmallLinear, Bf16WeightsMatchTheReferenceForEveryShape) { CheckEveryShape(Weights::kBf16); }

// int8: quantization rounds each weight to within half a step of its group's scale. The widened
// kernel's product equals the double-precision product with the dequantized weights; the
// integer kernels also round x per group, so they are held to the bound small_linear.h states,
// sum_i |w_i| * s_x(i) / 2, computed here from x's own group maxima.
struct Int8Case {
  int64_t rows, in, out, stride;
  bool accumulate;
  std::vector<float> x, deq, y_before;
  std::vector<int8_t> q;
  std::vector<float> scales;
};

// q4: the weights quantized by QuantizeQ4 (values in [-8, 7]) instead of QuantizeInt8.
Int8Case MakeInt8Case(std::mt19937& rng, int64_t rows, int64_t in, int64_t out, bool accumulate,
                      bool q4 = false) {
  std::normal_distribution<float> normal(0.f, 1.f);
  Int8Case c{rows, in, out, out + 3, accumulate, {}, {}, {}, {}, {}};
  const int64_t groups = Int8Groups(in);
  c.x.resize(rows * in);
  std::vector<float> w(out * in);
  for (float& v : c.x) v = normal(rng);
  if (rows > 1) std::fill(c.x.begin() + in, c.x.begin() + 2 * in, 0.f);  // an all-zero row of x
  for (float& v : w) v = normal(rng);
  if (out > 1) std::fill(w.begin() + in, w.begin() + 2 * in, 0.f);  // an all-zero row of w
  c.q.resize(out * in);
  c.scales.resize(out * groups);
  c.deq.resize(out * in);
  (q4 ? QuantizeQ4 : QuantizeInt8)(w.data(), out, in, c.q.data(), c.scales.data());
  DequantizeInt8(Int8Matrix{c.q.data(), c.scales.data(), out}, in, 0, out, c.deq.data());
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      // q4 clamps at +7 what rounds to 8 (the far side of the largest magnitude's sign).
      const float step = std::abs(c.scales[o * groups + i / kInt8Group]);
      const float allowed = (q4 && c.q[o * in + i] == 7 ? step : 0.5f * step) * (1 + 1e-6f) + 1e-6f;
      EXPECT_LE(std::abs(c.deq[o * in + i] - w[o * in + i]), allowed);
      if (q4) {
        EXPECT_TRUE(c.q[o * in + i] >= -8 && c.q[o * in + i] <= 7) << int{c.q[o * in + i]};
      }
    }
  }
  c.y_before.resize(rows * c.stride);
  for (float& v : c.y_before) v = normal(rng);
  return c;
}

std::vector<float> RunInt8(const Int8Case& c) {
  std::vector<float> y = c.y_before;
  SmallLinear(c.x.data(), c.rows, c.in, Int8Matrix{c.q.data(), c.scales.data(), c.out}, y.data(),
              c.stride, c.accumulate);
  return y;
}

// The same product with the weights packed as Int8Layout::kTiles16 or kTiles16Q4 (in % 64 == 0).
std::vector<float> RunInt8Tiles(const Int8Case& c, Int8Layout layout = Int8Layout::kTiles16) {
  std::vector<int8_t> tiles(Int8TilesBytes(c.out, c.in, layout));
  PackInt8Tiles(c.q.data(), c.scales.data(), c.out, c.in, tiles.data(), layout);
  std::vector<float> y = c.y_before;
  SmallLinear(c.x.data(), c.rows, c.in, Int8Matrix{tiles.data(), nullptr, c.out, layout}, y.data(),
              c.stride, c.accumulate);
  return y;
}

// Largest |error| / allowed over every output; the padding past `out` must be untouched.
double WorstInt8Error(const Int8Case& c, const std::vector<float>& y, bool quantized_x) {
  double worst = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    const float* xr = c.x.data() + r * c.in;
    for (int64_t o = 0; o < c.stride; ++o) {
      double want = c.y_before[r * c.stride + o], allowed = 1e-5;
      if (o < c.out) {
        double dot = 0, x_rounding = 0;
        for (int64_t g = 0; g * kInt8Group < c.in; ++g) {
          const int64_t begin = g * kInt8Group, end = std::min(c.in, begin + kInt8Group);
          double max_abs = 0;
          for (int64_t i = begin; i < end; ++i) max_abs = std::max(max_abs, std::abs(double{xr[i]}));
          for (int64_t i = begin; i < end; ++i) {
            const double wi = c.deq[o * c.in + i];
            dot += xr[i] * wi;
            x_rounding += std::abs(wi) * max_abs / 127 / 2;
          }
        }
        want = c.accumulate ? want + dot : dot;
        allowed = 1e-5 * c.in + (quantized_x ? x_rounding * (1 + 1e-5) : 0);
      }
      worst = std::max(worst, std::abs(want - y[r * c.stride + o]) / allowed);
    }
  }
  return worst;
}

// A test run once per kernel, forced for its duration (skipped where the CPU lacks it).
template <typename Kernel, bool (*Set)(Kernel), const char* (*Name)(Kernel)>
class ForcedKernel : public ::testing::TestWithParam<Kernel> {
 protected:
  void SetUp() override {
    if (!Set(this->GetParam())) GTEST_SKIP() << "this CPU lacks " << Name(this->GetParam());
  }
  void TearDown() override { Set(Kernel::kAuto); }
};

class Int8Kernels : public ForcedKernel<Int8Kernel, SetInt8Kernel, Int8KernelName> {};

TEST_P(Int8Kernels, MatchTheReferenceForEveryShape) {
  std::mt19937 rng(4);
  int64_t integer_products = 0;
  for (int64_t rows : {1, 2, 3, 4, 5, 7, 13, 64}) {
    for (int64_t in : {16, 24, 48, 64, 256, 576, 688}) {
      for (int64_t out : {1, 3, 9, 64, 130}) {
        for (bool accumulate : {false, true}) {
          const Int8Case c = MakeInt8Case(rng, rows, in, out, accumulate);
          const Int8Kernel kernel = Int8KernelFor(rows, in);
          const bool quantized_x = kernel != Int8Kernel::kWidened;
          if (quantized_x) {
            EXPECT_EQ(kernel, GetParam());
            ++integer_products;
          }
          EXPECT_LE(WorstInt8Error(c, RunInt8(c), quantized_x), 1.0)
              << Int8KernelName(kernel) << " rows " << rows << " in " << in << " out " << out
              << (accumulate ? " accumulate" : "");
          // Packed in tiles: the VNNI (and for kTiles16 AMX) kernels' own paths; any other
          // kernel forced, exact fp32.
          if (in % 64 == 0) {
            const bool vnni = kernel == Int8Kernel::kAvx512Vnni || kernel == Int8Kernel::kAmx;
            EXPECT_LE(WorstInt8Error(c, RunInt8Tiles(c), vnni), 1.0)
                << "tiles, " << Int8KernelName(kernel) << " rows " << rows << " in " << in << " out " << out
                << (accumulate ? " accumulate" : "");
          }
        }
      }
    }
  }
  if (GetParam() != Int8Kernel::kWidened) {
    EXPECT_GT(integer_products, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(SmallLinear, Int8Kernels,
                         ::testing::Values(Int8Kernel::kWidened, Int8Kernel::kAvx2, Int8Kernel::kAvx512Vnni,
                                           Int8Kernel::kAmx),
                         [](const auto& info) { return std::string(Int8KernelName(info.param)); });

// The two integer kernels sum the same int8 products exactly, so they differ only by fp32
// summation order, far below the activations' rounding.
TEST(SmallLinear, IntegerKernelsAgree) {
  if (!SetInt8Kernel(Int8Kernel::kAvx512Vnni) || !SetInt8Kernel(Int8Kernel::kAvx2)) {
    SetInt8Kernel(Int8Kernel::kAuto);
    GTEST_SKIP() << "needs both AVX2 and AVX-512 VNNI";
  }
  std::mt19937 rng(5);
  for (int64_t in : {64, 576, 1536}) {
    for (int64_t out : {8, 17, 200}) {
      const Int8Case c = MakeInt8Case(rng, 3, in, out, false);
      SetInt8Kernel(Int8Kernel::kAvx2);
      const std::vector<float> avx2 = RunInt8(c);
      SetInt8Kernel(Int8Kernel::kAvx512Vnni);
      const std::vector<float> vnni = RunInt8(c), tiles = RunInt8Tiles(c);
      for (size_t i = 0; i < avx2.size(); ++i) {
        ASSERT_NEAR(avx2[i], vnni[i], 2e-6 * in) << "in " << in << " out " << out << " at " << i;
        ASSERT_NEAR(tiles[i], vnni[i], 2e-6 * in) << "tiles, in " << in << " out " << out << " at " << i;
      }
    }
  }
  SetInt8Kernel(Int8Kernel::kAuto);
}

// kTiles16: the VNNI and AMX kernels sum each group exactly and scale it alike, so they give
// the same bits, and a row's outputs are the same bits alone as beside any other rows (a token
// computes alike in a prompt, a decode step or a batch of any size, whichever kernel each takes).
TEST(SmallLinear, Tiles16KernelsGiveTheSameBitsForEveryNumberOfRows) {
  if (!SetInt8Kernel(Int8Kernel::kAvx512Vnni)) GTEST_SKIP() << "needs AVX-512 VNNI";
  const bool amx = SetInt8Kernel(Int8Kernel::kAmx);
  std::mt19937 rng(14);
  for (int64_t rows : {1, 3, 4, 15, 16, 17, 33, 70}) {
    for (int64_t in : {64, 576, 1536}) {
      for (int64_t out : {1, 16, 17, 100}) {
        for (bool accumulate : {false, true}) {
          const Int8Case c = MakeInt8Case(rng, rows, in, out, accumulate);
          const std::string where = "rows " + std::to_string(rows) + " in " + std::to_string(in) + " out " +
                                    std::to_string(out) + (accumulate ? " accumulate" : "");
          SetInt8Kernel(Int8Kernel::kAvx512Vnni);
          const std::vector<float> vnni = RunInt8Tiles(c, Int8Layout::kTiles16);
          EXPECT_LE(WorstInt8Error(c, vnni, /*quantized_x=*/true), 1.0) << where;
          if (amx) {
            SetInt8Kernel(Int8Kernel::kAmx);
            ASSERT_EQ(RunInt8Tiles(c, Int8Layout::kTiles16), vnni) << "amx against vnni, " << where;
          }
          SetInt8Kernel(Int8Kernel::kAuto);
          ASSERT_EQ(RunInt8Tiles(c, Int8Layout::kTiles16), vnni) << "auto, " << where;
          for (int64_t r : {int64_t{0}, rows - 1}) {
            Int8Case one = c;
            one.rows = 1;
            one.x.assign(c.x.begin() + r * in, c.x.begin() + (r + 1) * in);
            one.y_before.assign(c.y_before.begin() + r * c.stride, c.y_before.begin() + (r + 1) * c.stride);
            const std::vector<float> alone = RunInt8Tiles(one, Int8Layout::kTiles16);
            ASSERT_TRUE(std::equal(alone.begin(), alone.end(), vnni.begin() + r * c.stride))
                << "row " << r << " alone, " << where;
          }
        }
      }
    }
  }
  SetInt8Kernel(Int8Kernel::kAuto);
  if (!amx) GTEST_SKIP() << "no AMX-INT8 here: only the VNNI kernel was checked";
}

// Packing in tiles keeps every weight and scale: any range of rows dequantizes to exactly what
// the row-major matrix gives, padding rows of the last tile included nowhere. `group_bytes`:
// what 16 rows x 32 columns take in `layout`.
void CheckTilesDequantizeAsRowsDo(const Int8Case& c, Int8Layout layout, int64_t group_bytes) {
  const int64_t in = c.in, out = c.out;
  std::vector<int8_t> tiles(Int8TilesBytes(out, in, layout));
  EXPECT_EQ(static_cast<int64_t>(tiles.size()), (out + 15) / 16 * (in / 32) * group_bytes);
  PackInt8Tiles(c.q.data(), c.scales.data(), out, in, tiles.data(), layout);
  const Int8Matrix packed{tiles.data(), nullptr, out, layout};
  for (auto [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{0, out}, {out / 2, out}, {out - 1, out}}) {
    std::vector<float> got((end - begin) * in, -1.f);
    DequantizeInt8(packed, in, begin, end, got.data());
    const std::vector<float> want(c.deq.begin() + begin * in, c.deq.begin() + end * in);
    EXPECT_EQ(got, want) << "in " << in << " out " << out << " rows " << begin << ".." << end;
  }
}

TEST(SmallLinear, TilesDequantizeAsRowsDo) {
  std::mt19937 rng(9);
  for (int64_t in : {64, 576}) {
    for (int64_t out : {1, 8, 13, 16, 40}) {
      const Int8Case c = MakeInt8Case(rng, 1, in, out, false);
      CheckTilesDequantizeAsRowsDo(c, Int8Layout::kTiles16, 576);
    }
  }
}

// q4 (llama.cpp's q4_0 scheme): the value of largest magnitude in each group comes back exact
// (it is -8 steps), and packed two a byte in tiles every value and scale is kept.
TEST(SmallLinear, Q4KeepsEachGroupsLargestValueAndPacksLosslessly) {
  std::mt19937 rng(10);
  for (int64_t in : {64, 576}) {
    for (int64_t out : {1, 8, 13, 40}) {
      const Int8Case c = MakeInt8Case(rng, 1, in, out, false, /*q4=*/true);
      for (int64_t o = 0; o < out; ++o) {
        for (int64_t g = 0; g < in / kInt8Group; ++g) {
          int eights = 0;
          for (int64_t i = g * kInt8Group; i < (g + 1) * kInt8Group; ++i) eights += c.q[o * in + i] == -8;
          if (c.scales[o * (in / kInt8Group) + g] != 0.f) {
            EXPECT_GE(eights, 1) << "row " << o << " group " << g;
          }
        }
      }
      CheckTilesDequantizeAsRowsDo(c, Int8Layout::kTiles16Q4, 320);
    }
  }
}

// q4 tiles on the VNNI and AMX kernels: within the activations' rounding of the exact product
// with the dequantized weights, and the same bits as the same values in int8 tiles (exact
// integer sums, the same scales), whichever kernel and number of rows.
TEST(SmallLinear, Q4TilesMatchTheReference) {
  if (!SetInt8Kernel(Int8Kernel::kAvx512Vnni)) GTEST_SKIP() << "needs AVX-512 VNNI";
  std::vector<Int8Kernel> kernels = {Int8Kernel::kAvx512Vnni};
  if (SetInt8Kernel(Int8Kernel::kAmx)) kernels.push_back(Int8Kernel::kAmx);
  std::mt19937 rng(11);
  for (int64_t rows : {1, 2, 4, 5, 17, 64, 130}) {
    for (int64_t in : {64, 576, 1536}) {
      for (int64_t out : {1, 9, 64, 130}) {
        for (bool accumulate : {false, true}) {
          const Int8Case c = MakeInt8Case(rng, rows, in, out, accumulate, /*q4=*/true);
          SetInt8Kernel(Int8Kernel::kAvx512Vnni);
          const std::vector<float> int8 = RunInt8Tiles(c, Int8Layout::kTiles16);
          for (Int8Kernel kernel : kernels) {
            SetInt8Kernel(kernel);
            const std::vector<float> tiles = RunInt8Tiles(c, Int8Layout::kTiles16Q4);
            EXPECT_LE(WorstInt8Error(c, tiles, /*quantized_x=*/true), 1.0)
                << Int8KernelName(kernel) << " rows " << rows << " in " << in << " out " << out
                << (accumulate ? " accumulate" : "");
            ASSERT_EQ(tiles, int8) << Int8KernelName(kernel) << " rows " << rows << " in " << in << " out " << out;
          }
        }
      }
    }
  }
  // Any other kernel forced: exact fp32 products of the dequantized q4 weights.
  SetInt8Kernel(Int8Kernel::kWidened);
  const Int8Case c = MakeInt8Case(rng, 3, 576, 40, false, /*q4=*/true);
  EXPECT_LE(WorstInt8Error(c, RunInt8Tiles(c, Int8Layout::kTiles16Q4), /*quantized_x=*/false), 1.0);
  SetInt8Kernel(Int8Kernel::kAuto);
}

// q4 two a byte in rows (Int8Layout::kRowsQ4), for the AVX2 kernel: packing loses nothing, and
// the kernel gives the bits it gives for the same values one a byte, for any number of rows.
std::vector<float> RunQ4Rows(const Int8Case& c) {
  std::vector<int8_t> packed(c.out * c.in / 2);
  PackQ4Rows(c.q.data(), c.out, c.in, packed.data());
  std::vector<float> y = c.y_before;
  SmallLinear(c.x.data(), c.rows, c.in, Int8Matrix{packed.data(), c.scales.data(), c.out, Int8Layout::kRowsQ4},
              y.data(), c.stride, c.accumulate);
  return y;
}

TEST(SmallLinear, Q4RowsDequantizeAsRowsDo) {
  std::mt19937 rng(12);
  for (int64_t in : {64, 576}) {
    for (int64_t out : {1, 13}) {
      const Int8Case c = MakeInt8Case(rng, 1, in, out, false, /*q4=*/true);
      std::vector<int8_t> packed(out * in / 2);
      PackQ4Rows(c.q.data(), out, in, packed.data());
      std::vector<float> got(out * in);
      DequantizeInt8(Int8Matrix{packed.data(), c.scales.data(), out, Int8Layout::kRowsQ4}, in, 0, out, got.data());
      EXPECT_EQ(got, c.deq) << "in " << in << " out " << out;
    }
  }
}

TEST(SmallLinear, Q4RowsOnAvx2MatchTheReference) {
  if (!SetInt8Kernel(Int8Kernel::kAvx2)) GTEST_SKIP() << "needs AVX2";
  std::mt19937 rng(13);
  for (int64_t rows : {1, 3, 4, 9}) {
    for (int64_t in : {64, 576, 1536}) {
      for (int64_t out : {1, 9, 64}) {
        for (bool accumulate : {false, true}) {
          const Int8Case c = MakeInt8Case(rng, rows, in, out, accumulate, /*q4=*/true);
          const std::vector<float> packed = RunQ4Rows(c);
          EXPECT_LE(WorstInt8Error(c, packed, /*quantized_x=*/true), 1.0)
              << "rows " << rows << " in " << in << " out " << out << (accumulate ? " accumulate" : "");
          if (rows < 4) {  // the values one a byte take the same kernel
            EXPECT_EQ(packed, RunInt8(c)) << "rows " << rows << " in " << in << " out " << out;
          }
          // Each row of x gives the bits it gives alone (several rows widen the weights once).
          for (int64_t r = 0; r < rows; ++r) {
            Int8Case one = c;
            one.rows = 1;
            one.x.assign(c.x.begin() + r * in, c.x.begin() + (r + 1) * in);
            one.y_before.assign(c.y_before.begin() + r * c.stride, c.y_before.begin() + (r + 1) * c.stride);
            const std::vector<float> alone = RunQ4Rows(one);
            ASSERT_TRUE(std::equal(alone.begin(), alone.end(), packed.begin() + r * c.stride))
                << "row " << r << " of " << rows << " in " << in << " out " << out;
          }
        }
      }
    }
  }
  // Any other kernel forced: exact fp32 products of the dequantized q4 weights.
  SetInt8Kernel(Int8Kernel::kWidened);
  const Int8Case c = MakeInt8Case(rng, 3, 576, 40, false, /*q4=*/true);
  EXPECT_LE(WorstInt8Error(c, RunQ4Rows(c), /*quantized_x=*/false), 1.0);
  SetInt8Kernel(Int8Kernel::kAuto);
}

// Activations are quantized as QuantizeInt8 quantizes weights, byte for byte, whichever code
// path runs (AVX-512 for whole groups): same scales, same round-to-nearest-even, ties included.
TEST(SmallLinear, ActivationsQuantizeAsWeightsDo) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t in : {64, 576, 100}) {
    const int64_t rows = 3, groups = Int8Groups(in);
    std::vector<float> x(rows * in);
    for (float& v : x) v = normal(rng) * 4.f;
    for (int64_t i = 0; i < kInt8Group && i < in; ++i) x[i] = 0.f;  // an all-zero group
    // Exact halves after scaling: the group's max is 127 * 0.25, so k * 0.125 scales to k / 2.
    for (int64_t i = kInt8Group; i < 2 * kInt8Group && i < in; ++i) x[i] = (static_cast<float>(i % 9) - 4.f) * 0.125f;
    if (in > kInt8Group) x[kInt8Group] = 127 * 0.25f;
    std::vector<int8_t> want_q(rows * in), got_q(rows * in);
    std::vector<float> want_s(rows * groups), got_s(rows * groups);
    QuantizeInt8(x.data(), rows, in, want_q.data(), want_s.data());
    q8::QuantizeActivations(x.data(), rows, in, got_q.data(), got_s.data());
    EXPECT_EQ(want_q, got_q) << "in " << in;
    EXPECT_EQ(want_s, got_s) << "in " << in;
  }
}

// bfloat16 products (SmallLinearBf16Dot): against the double-precision product of the rounded
// activations with the weights, on each kernel the CPU has, for every tile shape and remainder
// (rows around multiples of 4, outputs around multiples of 8, `in` in and out of 32s); and each
// row's outputs the same bits whatever the other rows of the product (what lets a prompt and a
// decode step compute the same token).
class Bf16DotKernels : public ForcedKernel<Bf16DotKernel, SetBf16DotKernel, Bf16DotKernelName> {};

TEST_P(Bf16DotKernels, MatchTheReferenceForEveryShape) {
  ASSERT_EQ(Bf16DotKernelNow(), GetParam());
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t rows : {1, 3, 4, 5, 8, 13, 70}) {
    for (int64_t in : {16, 40, 64, 576, 688}) {
      for (int64_t out : {1, 3, 12, 64, 130}) {
        for (bool accumulate : {false, true}) {
          const int64_t stride = out + 3;
          std::vector<float> x(rows * in), y(rows * stride);
          std::vector<Bf16> w(out * in);
          for (float& v : x) v = normal(rng);
          for (Bf16& v : w) v = ToBf16(normal(rng));
          for (float& v : y) v = normal(rng);
          const std::vector<float> before = y;
          SmallLinearBf16Dot(x.data(), rows, in, w.data(), out, y.data(), stride, accumulate);
          double worst = 0;
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t o = 0; o < stride; ++o) {
              double want = before[r * stride + o];  // the padding past `out` is never written
              if (o < out) {
                double dot = 0;
                for (int64_t i = 0; i < in; ++i) {
                  dot += static_cast<double>(FromBf16(ToBf16(x[r * in + i]))) * FromBf16(w[o * in + i]);
                }
                want = accumulate ? want + dot : dot;
              }
              worst = std::max(worst, std::abs(want - y[r * stride + o]));
            }
          }
          EXPECT_LT(worst, 1e-5 * in) << Bf16DotKernelName(GetParam()) << " rows " << rows << " in " << in
                                      << " out " << out << (accumulate ? " accumulate" : "");
        }
      }
    }
  }
}

// No rows (a step whose prompt chunks end no prompt computes no logits): y stays as it was.
TEST_P(Bf16DotKernels, NoRowsWriteNothing) {
  const int64_t in = 64, out = 40;
  std::vector<Bf16> w(out * in, ToBf16(1.f));
  std::vector<float> x(in, 1.f), y(out, 7.f);
  for (bool accumulate : {false, true}) {
    SmallLinearBf16Dot(x.data(), 0, in, w.data(), out, y.data(), out, accumulate);
    for (float v : y) ASSERT_EQ(v, 7.f) << Bf16DotKernelName(GetParam());
  }
}

TEST_P(Bf16DotKernels, ARowsOutputsDoNotDependOnTheOtherRows) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t in : {40, 576}) {
    const int64_t rows = 70, out = 75;  // tiles of 4 rows and one-row tiles; outputs left over
    std::vector<float> x(rows * in), all(rows * out), alone(out);
    std::vector<Bf16> w(out * in);
    for (float& v : x) v = normal(rng);
    for (Bf16& v : w) v = ToBf16(normal(rng));
    SmallLinearBf16Dot(x.data(), rows, in, w.data(), out, all.data(), out, false);
    for (int64_t r = 0; r < rows; ++r) {
      SmallLinearBf16Dot(x.data() + r * in, 1, in, w.data(), out, alone.data(), out, false);
      EXPECT_EQ(0, std::memcmp(alone.data(), all.data() + r * out, out * sizeof(float)))
          << Bf16DotKernelName(GetParam()) << " in " << in << " row " << r;
    }
    // And the rows 5 .. 11 as a product of their own (one tile of 4 rows, three rows alone).
    std::vector<float> some(7 * out);
    SmallLinearBf16Dot(x.data() + 5 * in, 7, in, w.data(), out, some.data(), out, false);
    EXPECT_EQ(0, std::memcmp(some.data(), all.data() + 5 * out, some.size() * sizeof(float))) << "in " << in;
  }
}

INSTANTIATE_TEST_SUITE_P(SmallLinear, Bf16DotKernels,
                         ::testing::Values(Bf16DotKernel::kWidened, Bf16DotKernel::kAvx512Bf16,
                                           Bf16DotKernel::kAmx),
                         [](const auto& info) { return std::string(Bf16DotKernelName(info.param)); });

// Rounding as the KV pools round: nearest even, ties included, NaN kept, infinities kept.
TEST(SmallLinear, ActivationsRoundToBf16AsThePoolsDo) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.f, -0.f, 1.f, 1.00390625f /* tie, to even */, 1.01171875f /* tie, up */,
                                3.14159f, -2.7182818f, 1e-40f, inf, -inf, 3.4e38f};
  std::vector<Bf16> got(x.size());
  bf16dot::RoundToBf16(x.data(), static_cast<int64_t>(x.size()), got.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i].bits, ToBf16(x[i]).bits) << x[i];
  const float nan = std::numeric_limits<float>::quiet_NaN();
  bf16dot::RoundToBf16(&nan, 1, got.data());
  EXPECT_TRUE(std::isnan(FromBf16(got[0])));
}

}  // namespace
}  // namespace mswa
