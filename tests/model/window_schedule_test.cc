#include "model/format/window_schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mswa {
namespace {

using Rows = std::vector<std::vector<int64_t>>;

Rows Repeat(const std::vector<int64_t>& row, int n) { return Rows(n, row); }

Rows Concat(std::initializer_list<Rows> parts) {
  Rows out;
  for (const Rows& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct PresetCase {
  std::string preset;
  Rows expected;
};

// 12 layers, 8 heads, w = 256, default ladders: heads [1/4, 1/2, 1, 2] in groups of 2 heads,
// layers [1/2, 1/2, 1, 2] in groups of 3 layers.
TEST(WindowSchedule, PresetsFor12Layers8HeadsAt256) {
  const std::vector<int64_t> head_ladder = {64, 64, 128, 128, 256, 256, 512, 512};
  const std::vector<PresetCase> cases = {
      {"full", Repeat(std::vector<int64_t>(8, 0), 12)},
      {"swa", Repeat(std::vector<int64_t>(8, 256), 12)},
      {"mswa-h", Repeat(head_ladder, 12)},
      {"mswa-l", Concat({Repeat(std::vector<int64_t>(8, 128), 6),
                         Repeat(std::vector<int64_t>(8, 256), 3),
                         Repeat(std::vector<int64_t>(8, 512), 3)})},
      {"mswa", Concat({Repeat({32, 32, 64, 64, 128, 128, 256, 256}, 6),
                       Repeat({64, 64, 128, 128, 256, 256, 512, 512}, 3),
                       Repeat({128, 128, 256, 256, 512, 512, 1024, 1024}, 3)})},
  };
  for (const PresetCase& c : cases) {
    WindowScheduleOptions o;
    o.preset = c.preset;
    o.base_window = 256;
    o.num_layers = 12;
    o.num_heads = 8;
    o.num_kv_heads = 8;
    auto windows = MakeWindowSchedule(o);
    ASSERT_TRUE(windows.ok()) << c.preset << ": " << windows.status();
    EXPECT_EQ(*windows, c.expected) << c.preset;
  }
}

TEST(WindowSchedule, ExplicitLaddersAndUnevenLayers) {
  WindowScheduleOptions o;
  o.preset = "mswa";
  o.base_window = 100;
  o.num_layers = 5;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.head_scales = {1, 3};
  o.layer_scales = {0.5, 2};
  auto windows = MakeWindowSchedule(o);
  ASSERT_TRUE(windows.ok()) << windows.status();
  // layer group = floor(layer * 2 / 5): layers 0-2 -> 0, 3-4 -> 1.
  EXPECT_EQ(*windows, (Rows{{50, 50, 150, 150}, {50, 50, 150, 150}, {50, 50, 150, 150},
                            {200, 200, 600, 600}, {200, 200, 600, 600}}));
}

TEST(WindowSchedule, SmallWindowsRoundToAtLeastOne) {
  WindowScheduleOptions o;
  o.base_window = 2;
  o.num_layers = 4;
  o.num_heads = 4;
  o.num_kv_heads = 4;
  auto windows = MakeWindowSchedule(o);
  ASSERT_TRUE(windows.ok());
  EXPECT_EQ((*windows)[0][0], 1);  // 2 * 1/2 * 1/4 = 0.25 -> 1
}

TEST(WindowSchedule, RejectsBadOptions) {
  WindowScheduleOptions o;
  o.num_layers = 12;
  o.num_heads = 8;
  o.num_kv_heads = 2;  // 4 head groups cannot split 2 KV heads
  auto r = MakeWindowSchedule(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("KV heads"), std::string::npos);

  o.num_kv_heads = 8;
  o.preset = "sliding";
  r = MakeWindowSchedule(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("mswa-h"), std::string::npos);

  o.preset = "swa";
  o.base_window = 0;
  EXPECT_FALSE(MakeWindowSchedule(o).ok());

  o.preset = "mswa-l";
  o.base_window = 64;
  o.num_layers = 3;  // 4 layer groups
  EXPECT_FALSE(MakeWindowSchedule(o).ok());

  o.num_layers = 8;
  o.layer_scales = {1, -1};
  EXPECT_FALSE(MakeWindowSchedule(o).ok());
}

}  // namespace
}  // namespace mswa
