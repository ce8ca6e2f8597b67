#include "model/runtime/kv_layout.h"

#include <gtest/gtest.h>

namespace mswa {
namespace {

ModelConfig TwoLayerConfig() {
  ModelConfig c;
  c.vocab_size = 258;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 16;
  // Per KV head: layer 0 [16 16 64 64], layer 1 [64 64 0 0].
  c.attention_windows = {{16, 16, 16, 16, 64, 64, 64, 64}, {64, 64, 64, 64, 0, 0, 0, 0}};
  return c;
}

TEST(KvLayout, GroupsSlicesByWindowUnboundedLast) {
  ModelConfig c = TwoLayerConfig();
  ASSERT_TRUE(c.Validate().ok());
  KvLayout layout = BuildKvLayout(c);
  ASSERT_EQ(layout.groups.size(), 3u);
  EXPECT_EQ(layout.groups[0].window, 16);
  EXPECT_EQ(layout.groups[0].num_heads, 2);
  EXPECT_EQ(layout.groups[1].window, 64);
  EXPECT_EQ(layout.groups[1].num_heads, 4);
  EXPECT_EQ(layout.groups[2].window, 0);
  EXPECT_EQ(layout.groups[2].num_heads, 2);
  ASSERT_EQ(layout.slices.size(), 4u);
  // Layer 1's W=64 heads come after layer 0's inside group 1.
  EXPECT_EQ(layout.group_of[1][1], 1);
  EXPECT_EQ(layout.head_offset[1][1], 3);
  EXPECT_EQ(layout.group_of[0][3], 1);
  EXPECT_EQ(layout.head_offset[0][3], 1);
  EXPECT_EQ(layout.group_of[1][2], 2);
  EXPECT_EQ(layout.head_offset[1][3], 1);
}

TEST(KvLayout, BlockBoundMatchesTheWorkedExample) {
  EXPECT_EQ(MaxBlocksPerSequence(64, 16, 16), 6);   // ceil(79/16) + 1
  EXPECT_EQ(MaxBlocksPerSequence(1, 1, 16), 2);     // one token, possibly straddling
  EXPECT_EQ(MaxBlocksPerSequence(16, 1, 16), 2);    // ceil(16/16) + 1
  EXPECT_EQ(MaxBlocksPerSequence(17, 1, 16), 3);
}

// Brute force: slide a chunked prefill over a long sequence and count the blocks that hold any
// key some query of the chunk (or a later one) can still see; the bound must cover the worst.
TEST(KvLayout, BoundCoversEveryChunkAlignment) {
  for (int64_t block : {1, 4, 16}) {
    for (int64_t window : {1, 3, 16, 17, 40}) {
      for (int64_t chunk : {1, 5, 16, 33}) {
        int64_t worst = 0;
        for (int64_t start = 0; start < 200; start += chunk) {
          const int64_t end = start + chunk;  // chunk covers [start, end)
          const int64_t oldest = std::max<int64_t>(0, start - window + 1);
          const int64_t blocks = (end - 1) / block - oldest / block + 1;
          worst = std::max(worst, blocks);
        }
        EXPECT_LE(worst, MaxBlocksPerSequence(window, chunk, block))
            << "block " << block << " window " << window << " chunk " << chunk;
      }
    }
  }
}

TEST(KvLayout, BytesPerSequenceAreBoundedOnlyWhenEveryWindowIs) {
  ModelConfig c = TwoLayerConfig();
  KvLayout layout = BuildKvLayout(c);
  KvMemoryOptions o{16, 16, 2};
  const int64_t at_4k = KvBytesPerSequence(layout, c.head_dim, o, 4096);
  const int64_t at_32k = KvBytesPerSequence(layout, c.head_dim, o, 32768);
  EXPECT_GT(at_32k, at_4k);  // the unbounded group grows
  c.attention_windows[1] = std::vector<int64_t>(8, 64);
  layout = BuildKvLayout(c);
  EXPECT_EQ(KvBytesPerSequence(layout, c.head_dim, o, 4096),
            KvBytesPerSequence(layout, c.head_dim, o, 1 << 30));
  // Short sequences hold only the blocks their tokens fill.
  EXPECT_EQ(KvBytesPerSequence(layout, c.head_dim, o, 16),
            2 * 1 * (2 + 6) * 16 * 16 * 2);
  EXPECT_EQ(FullAttentionKvBytes(c, 2, 4096), 2 * 2 * 4 * 16 * 4096 * 2);
}

}  // namespace
}  // namespace mswa
