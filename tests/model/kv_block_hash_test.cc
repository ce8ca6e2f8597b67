#include "model/runtime/kv/block_hash.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace mswa {
namespace {

TEST(BlockHash, DependsOnParentSeedAndEveryToken) {
  const std::vector<int32_t> t = {5, 6, 7, 8};
  const uint64_t h = BlockHash(kRootHash, t, 1);
  EXPECT_EQ(h, BlockHash(kRootHash, t, 1));  // deterministic
  EXPECT_NE(h, 0u);
  EXPECT_NE(h, BlockHash(h, t, 1));                          // parent
  EXPECT_NE(h, BlockHash(kRootHash, t, 2));                  // seed
  EXPECT_NE(h, BlockHash(kRootHash, {5, 6, 8, 7}, 1));      // order
  EXPECT_NE(h, BlockHash(kRootHash, {5, 6, 7, 9}, 1));      // last token
  EXPECT_NE(h, BlockHash(kRootHash, {-5, 6, 7, 8}, 1));     // sign
  EXPECT_NE(h, BlockHash(kRootHash, {5, 6, 7}, 1));         // length
  // Well mixed: neighbouring inputs give no collision among many blocks.
  std::set<uint64_t> seen;
  for (int32_t a = 0; a < 200; ++a) {
    for (int32_t b = 0; b < 100; ++b) {
      ASSERT_TRUE(seen.insert(BlockHash(static_cast<uint64_t>(b), {a, b}, 0)).second);
    }
  }
}

TEST(BlockHash, ChainHashesFollowTheDefinition) {
  const std::vector<int32_t> t = {1, 2, 3, 4, 5, 6, 7};  // B = 2: 3 full blocks, 7 is partial
  const std::vector<uint64_t> chain = ChainHashes(t, 2, 9, 100);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0], BlockHash(kRootHash, {1, 2}, 9));
  EXPECT_EQ(chain[1], BlockHash(chain[0], {3, 4}, 9));
  EXPECT_EQ(chain[2], BlockHash(chain[1], {5, 6}, 9));
  EXPECT_EQ(ChainHashes(t, 2, 9, 2), (std::vector<uint64_t>{chain[0], chain[1]}));
  EXPECT_TRUE(ChainHashes(t, 2, 9, 0).empty());
  EXPECT_TRUE(ChainHashes({}, 2, 9, 5).empty());
  // Same block contents after a different history: different hash.
  const std::vector<uint64_t> other = ChainHashes({1, 2, 0, 4, 5, 6}, 2, 9, 100);
  EXPECT_EQ(other[0], chain[0]);
  EXPECT_NE(other[1], chain[1]);
  EXPECT_NE(other[2], chain[2]);
}

}  // namespace
}  // namespace mswa
