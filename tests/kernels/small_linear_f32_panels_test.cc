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
  for (int64_t out : {1, 47, 48, 49, 130}) {
    const int64_t in = 37;
    std::vector<float> w(out * in);
    for (float& v : w) v = normal(rng);
    std::vector<float> packed(F32PanelsFloats(out, in), std::nanf(""));
    ASSERT_EQ(static_cast<int64_t>(packed.size()) % (kF32PanelRows * in), 0);
    PackF32Panels(w.data(), out, in, packed.data());
    for (float v : packed) EXPECT_FALSE(std::isnan(v)) << "padding left unwritten, out " << out;
    // Any range of rows, across panel boundaries.
    for (int64_t begin : {int64_t{0}, out / 3, out - 1}) {
      std::vector<float> rows((out - begin) * in);
      UnpackF32Panels(packed.data(), in, begin, out, rows.data());
      EXPECT_EQ(0, std::memcmp(rows.data(), w.data() + begin * in, rows.size() * sizeof(float)))
          << "out " << out << " from row " << begin;
    }
  }
}

TEST(SmallLinear, F32LayoutCanBeForcedAndRestored) {
  ASSERT_TRUE(SetF32Layout(F32Layout::kRows));
  EXPECT_EQ(F32LayoutNow(), F32Layout::kRows);
  if (SetF32Layout(F32Layout::kPanels48)) EXPECT_EQ(F32LayoutNow(), F32Layout::kPanels48);
  ASSERT_TRUE(SetF32Layout(F32Layout::kAuto));
  EXPECT_NE(F32LayoutNow(), F32Layout::kAuto);
}

}  // namespace
}  // namespace mswa
