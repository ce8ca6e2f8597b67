// Prefix caching in KvCacheManager: scripted cases. The randomized run against the oracle is
// in kv_prefix_cache_random_test.cc.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "model/runtime/kv_cache_manager.h"
#include "tests/model/kv_prefix_oracle.h"

namespace mswa {
namespace {

using Tokens = std::vector<int32_t>;

std::string Describe(const Tokens& t) {
  std::string s;
  for (int32_t x : t) s += std::to_string(x) + " ";
  return s;
}

TEST(KvPrefixCache, OffBehavesAsBefore) {
  KvCacheManager m = MakePrefixCached({3, 0}, {8, 8}, 2, 2, 16, /*enable=*/false);
  int freed = 0;
  m.set_on_free([&](int, int32_t) { ++freed; });
  const Tokens t = Iota(100, 8);
  EXPECT_EQ(RunSequence(m, 1, t, 8, 2), 0);
  EXPECT_EQ(m.LongestCachedPrefix(Concat(t, {1})), 0);
  EXPECT_EQ(m.Admit(2, 8, Concat(t, {1}), 2).code(), absl::StatusCode::kInvalidArgument);
  m.Release(1);
  EXPECT_EQ(m.LongestCachedPrefix(Concat(t, {1})), 0);
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(m.cached_blocks(g), 0);
    EXPECT_EQ(m.group(g).pool().num_hashed(), 0);
    EXPECT_EQ(m.used_blocks(g), 0);
  }
  EXPECT_EQ(freed, 4 + 4);  // every block of both groups freed, none cached
  EXPECT_EQ(m.prefix_queried_tokens(), 0);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// B = 2, windows 3 and unbounded, every block of T = 100..109 cached in both groups.
TEST(KvPrefixCache, LongestCachedPrefixTable) {
  KvCacheManager m = MakePrefixCached({3, 0}, {16, 16}, 2, 4, 64);
  const Tokens T = Iota(100, 10);
  RunSequence(m, 1, T, 10, 4);
  m.Release(1);
  EXPECT_EQ(m.cached_blocks(0), 5);
  EXPECT_EQ(m.cached_blocks(1), 5);
  auto head = [&](int n) { return Tokens(T.begin(), T.begin() + n); };
  struct Row {
    const char* what;
    Tokens prompt;
    int64_t want;
  };
  const std::vector<Row> rows = {
      {"all computed blocks, one new token", Concat(T, {1}), 10},
      {"the whole prompt cached: its last token is recomputed", T, 8},
      {"odd length: rounds down to a block edge", head(9), 8},
      {"even length", head(8), 6},
      {"diverges inside block 3: rounds down", Concat(head(7), {1, 2}), 6},
      {"diverges at a block edge", Concat(head(6), {1, 2, 3}), 6},
      {"block 0 differs: the unbounded group has nothing",
       Concat({1}, Tokens(T.begin() + 1, T.end())), 0},
      {"one token", head(1), 0},
      {"empty", {}, 0},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(m.LongestCachedPrefix(r.prompt), r.want) << r.what << ": " << Describe(r.prompt);
    EXPECT_EQ(OracleLongestPrefix(m, r.prompt, 7), r.want) << r.what;
  }
  // The seed is part of every hash: under another seed the oracle (seed 7) finds nothing.
  KvCacheManager other = MakePrefixCached({3, 0}, {16, 16}, 2, 4, 64, true, 8);
  RunSequence(other, 1, T, 10, 4);
  other.Release(1);
  EXPECT_EQ(other.LongestCachedPrefix(Concat(T, {1})), 10);
  EXPECT_EQ(OracleLongestPrefix(other, Concat(T, {1}), 7), 0);
}

// W = 3, B = 2, C = 2: R = 3 and a pool of 3, so a 20-token sequence evicts its early blocks
// as it goes; the blocks a long prefix needs (its tail) stay, the head does not. Hits are not
// monotone in P: 20 hits, 4 does not.
TEST(KvPrefixCache, WindowedGroupNeedsOnlyItsTail) {
  KvCacheManager m = MakePrefixCached({3}, {3}, 2, 2, 64);
  const Tokens T = Iota(100, 20);
  RunSequence(m, 1, T, 20, 2);
  m.Release(1);
  EXPECT_GT(m.evicted_blocks(0), 0);
  EXPECT_EQ(m.cached_blocks(0), 3);  // logical 7, 8, 9
  auto head = [&](int n) { return Tokens(T.begin(), T.begin() + n); };
  struct Row {
    Tokens prompt;
    int64_t want;
  };
  const std::vector<Row> rows = {
      {Concat(T, {1}), 20},              // the query at 20 sees 18..20: block 9
      {Concat(head(19), {1, 2}), 18},    // sees 16..18: block 8
      {Concat(head(17), {1, 2}), 16},    // sees 14..16: block 7
      {Concat(head(15), {1, 2}), 0},     // 14 needs block 6, 12 block 5, ...: evicted
      {head(5), 0},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(m.LongestCachedPrefix(r.prompt), r.want) << Describe(r.prompt);
    EXPECT_EQ(OracleLongestPrefix(m, r.prompt, 7), r.want) << Describe(r.prompt);
  }
  // Admit at 20: the ring holds only block 9 (slot 0), the sequence starts at 20.
  const Tokens prompt = Concat(T, {1});
  ASSERT_TRUE(m.Admit(2, 23, prompt, 20).ok());
  EXPECT_EQ(m.num_tokens(2), 20);
  EXPECT_EQ(m.live_blocks(2, 0), 1);
  EXPECT_EQ(m.BlockTable(2, 0)[9 % 3], m.group(0).pool().Lookup(ChainHashes(T, 2, 7, 10)[9]));
  EXPECT_EQ(m.prefix_queried_tokens(), 20 + 21);
  EXPECT_EQ(m.prefix_hit_tokens(), 20);
  Step(m, 2, Concat(prompt, {2, 3}), 2);
  Step(m, 2, Concat(prompt, {2, 3}), 1);
  m.Release(2);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// The windowed group holds T's tail, but the unbounded group lost T's block 0: no hit at all.
TEST(KvPrefixCache, UnboundedGroupMissingAnEarlyBlockMeansNoHit) {
  KvCacheManager m = MakePrefixCached({3, 0}, {16, 11}, 2, 2, 20);
  const Tokens T = Iota(100, 20);
  RunSequence(m, 1, Tokens(T.begin(), T.begin() + 2), 2, 2);  // caches block 0 only
  m.Release(1);
  // Sequence 2 recomputes T without the cache: its block 0 duplicates the cached one and
  // stays unhashed.
  ASSERT_TRUE(m.Admit(2, 20, T, 0).ok());
  for (int i = 0; i < 10; ++i) Step(m, 2, T, 2);
  EXPECT_EQ(m.cached_blocks(1), 1);
  // No block of the unbounded group is free now: another sequence's block evicts block 0.
  EXPECT_EQ(m.evicted_blocks(1), 0);
  RunSequence(m, 3, Iota(500, 2), 2, 2);
  EXPECT_EQ(m.evicted_blocks(1), 1);
  m.Release(3);
  m.Release(2);
  const Tokens prompt = Concat(Tokens(T.begin(), T.begin() + 19), {1});
  const std::vector<uint64_t> chain = ChainHashes(prompt, 2, 7, 9);
  EXPECT_TRUE(m.group(0).HasPrefix(18, chain));
  EXPECT_FALSE(m.group(1).HasPrefix(18, chain));
  EXPECT_EQ(m.LongestCachedPrefix(prompt), 0);
  EXPECT_EQ(OracleLongestPrefix(m, prompt, 7), 0);
  EXPECT_EQ(m.Admit(5, 20, prompt, 18).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.num_sequences(), 0);
  EXPECT_EQ(m.reserved_blocks(1), 0);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// Unbounded, pool of 8: released blocks enter the LRU last block first, so pressure shrinks
// a cached prefix from its tail.
TEST(KvPrefixCache, EvictionUnderPressureShrinksTheHit) {
  KvCacheManager m = MakePrefixCached({0}, {8}, 2, 2, 16);
  std::map<int32_t, int> freed;
  m.set_on_free([&](int, int32_t block) { ++freed[block]; });
  const Tokens T = Iota(100, 12);
  const Tokens prompt = Concat(T, {1});
  RunSequence(m, 1, T, 12, 2);
  m.Release(1);
  EXPECT_TRUE(freed.empty());  // cached, not freed
  EXPECT_EQ(m.LongestCachedPrefix(prompt), 12);
  RunSequence(m, 2, Iota(200, 6), 6, 2);  // 2 free blocks, then evicts T's block 5
  EXPECT_EQ(m.evicted_blocks(0), 1);
  EXPECT_EQ(freed.size(), 1u);
  EXPECT_EQ(m.LongestCachedPrefix(prompt), 10);
  m.Release(2);
  RunSequence(m, 3, Iota(300, 8), 8, 2);  // evicts T's blocks 4, 3, 2, 1
  EXPECT_EQ(m.evicted_blocks(0), 5);
  EXPECT_EQ(m.LongestCachedPrefix(prompt), 2);
  EXPECT_EQ(OracleLongestPrefix(m, prompt, 7), 2);
  m.Release(3);
  EXPECT_EQ(m.Admit(4, 15, prompt, 4).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.reserved_blocks(0), 0);
  EXPECT_EQ(RunSequence(m, 4, Concat(prompt, {2, 3}), 13, 2), 2);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// Two sequences hit the blocks of a third that is still running; refcounts count holders,
// reservations are what they would be without the hit, and the shared blocks are cached only
// when the last holder lets go.
TEST(KvPrefixCache, SharedBlocksCountOncePerHolder) {
  // Pools for 3 sequences of 12 tokens: group 0 (W = 4) R = 4 blocks each, group 1 6 each.
  KvCacheManager m = MakePrefixCached({4, 0}, {12, 18}, 2, 2, 16);
  const Tokens T = Iota(100, 8);
  RunSequence(m, 1, T, 8, 2);
  const Tokens prompt = Concat(T, {1, 2});
  ASSERT_EQ(m.LongestCachedPrefix(prompt), 8);  // referenced blocks are found too
  const int64_t used0 = m.used_blocks(0), used1 = m.used_blocks(1);
  ASSERT_TRUE(m.Admit(2, 12, prompt, 8).ok());
  ASSERT_TRUE(m.Admit(3, 12, prompt, 8).ok());
  // Sharing saves compute, not admission capacity: a fourth is refused as without the cache.
  EXPECT_EQ(m.Admit(4, 12, prompt, 8).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m.used_blocks(0), used0);  // nothing allocated
  EXPECT_EQ(m.used_blocks(1), used1);
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(m.reservation(2, g), m.BlocksNeeded(g, 12));
    const LogicalBlockRange needed = m.group(g).NeededBlocks(8);  // {2, 4} and {0, 4}
    EXPECT_EQ(m.live_blocks(2, g), needed.size());
    for (int64_t b = needed.begin; b < needed.end; ++b) {
      const int32_t block = m.group(g).block_at(1, b);
      EXPECT_EQ(m.group(g).block_at(2, b), block);
      EXPECT_EQ(m.group(g).block_at(3, b), block);
      EXPECT_EQ(m.group(g).pool().ref_count(block), 3);
    }
  }
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  Step(m, 2, Concat(prompt, {3}), 2);  // fresh blocks: the shared ones are never written
  EXPECT_EQ(m.used_blocks(1), used1 + 1);
  EXPECT_EQ(m.group(1).pool().ref_count(m.group(1).block_at(2, 4)), 1);
  m.Release(1);
  EXPECT_EQ(m.cached_blocks(1), 0);  // still held by 2 and 3
  EXPECT_EQ(m.group(1).pool().ref_count(m.group(1).block_at(2, 0)), 2);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  m.Release(2);
  m.Release(3);
  EXPECT_EQ(m.cached_blocks(1), 5);  // T's 4 blocks and sequence 2's block 4 (ids 1 2)
  EXPECT_EQ(m.used_blocks(0), 0);
  EXPECT_EQ(m.prefix_hit_tokens(), 8 + 8 + 0);
  EXPECT_EQ(m.prefix_queried_tokens(), 8 + 10 + 10);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

TEST(KvPrefixCache, BadArgumentsChangeNothing) {
  KvCacheManager m = MakePrefixCached({4, 0}, {12, 12}, 2, 2, 16);
  const Tokens T = Iota(100, 8);
  RunSequence(m, 1, T, 8, 2);
  m.Release(1);
  const Tokens prompt = Concat(T, {1});
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(m.Admit(2, 12, prompt, 3).code(), kInvalid);   // not a multiple of B
  EXPECT_EQ(m.Admit(2, 12, T, 8).code(), kInvalid);        // the whole prompt
  EXPECT_EQ(m.Admit(2, 6, prompt, 8).code(), kInvalid);    // beyond max_tokens
  EXPECT_EQ(m.Admit(2, 12, prompt, -2).code(), kInvalid);
  EXPECT_EQ(m.Admit(2, 99, prompt, 8).code(), kInvalid);   // beyond max_model_len
  EXPECT_EQ(m.num_sequences(), 0);
  EXPECT_EQ(m.reserved_blocks(0), 0);
  EXPECT_EQ(m.cached_blocks(1), 4);
  EXPECT_EQ(m.prefix_queried_tokens(), 8);
  EXPECT_EQ(m.CommitTokens(2, {1}).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(m.Admit(2, 12, prompt, 8).ok());
  EXPECT_EQ(m.CommitTokens(2, {1}).code(), absl::StatusCode::kFailedPrecondition);  // not appended
  EXPECT_TRUE(m.CommitTokens(2, {}).ok());
  EXPECT_EQ(m.Admit(2, 12, prompt, 8).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// A sequence admitted without a prompt (a scoring stream) adopts a cached prefix once its text
// is known, exactly as Admit with that prompt would have; once it has positions it cannot.
TEST(KvPrefixCache, AdoptCachedPrefixStartsAnAdmittedSequence) {
  KvCacheManager m = MakePrefixCached({4, 0}, {12, 12}, 2, 2, 16);
  const Tokens T = Iota(100, 8);
  RunSequence(m, 1, T, 8, 2);
  m.Release(1);
  const Tokens prompt = Concat(T, {1});
  const int64_t queried = m.prefix_queried_tokens();
  EXPECT_EQ(m.AdoptCachedPrefix(2, prompt, 8).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(m.Admit(2, 12).ok());
  EXPECT_EQ(m.AdoptCachedPrefix(2, prompt, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.AdoptCachedPrefix(2, Concat(Iota(200, 8), {1}), 8).code(),
            absl::StatusCode::kFailedPrecondition);  // not cached
  EXPECT_EQ(m.num_tokens(2), 0);
  ASSERT_TRUE(m.AdoptCachedPrefix(2, prompt, m.LongestCachedPrefix(prompt)).ok());
  EXPECT_EQ(m.num_tokens(2), 8);
  EXPECT_EQ(m.prefix_hit_tokens(), 8);
  EXPECT_EQ(m.prefix_queried_tokens(), queried + 9);
  EXPECT_EQ(m.live_blocks(2, 0), 2);  // window 4 at position 8: blocks of positions 5 .. 7
  EXPECT_EQ(m.live_blocks(2, 1), 4);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  EXPECT_EQ(m.AdoptCachedPrefix(2, prompt, 8).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(m.Append(2, 1).ok());
  ASSERT_TRUE(m.CommitTokens(2, {1}).ok());
  m.FreeOutOfWindow(2);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

}  // namespace
}  // namespace mswa
