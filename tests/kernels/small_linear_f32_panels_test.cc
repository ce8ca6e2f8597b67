// fp32 panels (F32Layout::kPanels48): packing, unpacking, and choosing the layout. Their products
// are checked with the other layouts' in small_linear_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/small_linear.h"

namespace mswa {
namespace {

TEST(SmallLinear, F32PanelsUnpackToTheRowsTheyWerePackedFrom) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t out : {1, 16, 17, 32, 33, 47, 48, 49, 64, 65, 130, 256}) {
    const int64_t in = 37;
    std::vector<float> w(out * in);
    for (float& v : w) v = normal(rng);
    std::vector<float> packed(F32PanelsFloats(out, in), std::nanf(""));
    // Whole panels of 48, then the rest rounded up to 16.
    const int64_t last = out % kF32PanelRows == 0 ? kF32PanelRows : (out % kF32PanelRows + 15) / 16 * 16;
    EXPECT_EQ(static_cast<int64_t>(packed.size()), ((out - 1) / kF32PanelRows * kF32PanelRows + last) * in)
        << "out " << out;
    PackF32Panels(w.data(), out, in, packed.data());
    for (float v : packed) EXPECT_FALSE(std::isnan(v)) << "padding left unwritten, out " << out;
    // Any range of rows, across panel boundaries.
    for (int64_t begin : {int64_t{0}, out / 3, out - 1}) {
      std::vector<float> rows((out - begin) * in);
      UnpackF32Panels(packed.data(), out, in, begin, out, rows.data());
      EXPECT_EQ(0, std::memcmp(rows.data(), w.data() + begin * in, rows.size() * sizeof(float)))
          << "out " << out << " from row " << begin;
    }
  }
}

TEST(SmallLinear, F32LayoutCanBeForcedAndRestored) {
  ASSERT_TRUE(SetF32Layout(F32Layout::kRows));
  EXPECT_EQ(F32LayoutNow(), F32Layout::kRows);
  if (SetF32Layout(F32Layout::kPanels48)) {
    EXPECT_EQ(F32LayoutNow(), F32Layout::kPanels48);
  }
  ASSERT_TRUE(SetF32Layout(F32Layout::kAuto));
  EXPECT_NE(F32LayoutNow(), F32Layout::kAuto);
}

}  // namespace
}  // namespace mswa
