// Prefix caching under churn, against a brute-force oracle (tests/model/kv_prefix_oracle.h):
// prompts drawn from a few shared documents so that hits, shared blocks, eviction and busy
// pools all happen; every call is followed by a full consistency check.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "model/runtime/kv_cache_manager.h"
#include "tests/model/kv_oracle.h"
#include "tests/model/kv_prefix_oracle.h"

namespace mswa {
namespace {

TEST(KvPrefixCache, ChurnAgainstOracle) {
  const std::vector<int64_t> windows = {3, 9, 0};
  const int64_t B = 4, C = 8, kMaxLen = 64;
  const uint64_t kSeed = 7;
  KvCacheManager m = MakePrefixCached(windows, {14, 24, 40}, B, C, kMaxLen, true, kSeed);
  std::mt19937_64 rng(20261202);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  std::vector<std::vector<int32_t>> docs(3);
  for (auto& doc : docs) {
    for (int64_t i = 0; i < kMaxLen; ++i) doc.push_back(static_cast<int32_t>(uniform(0, 50)));
  }
  // Every (group, chain hash) a committed full block ever had: the pools may only hold these,
  // and hold all of them while a group has evicted nothing.
  std::vector<std::set<uint64_t>> ever(windows.size());
  std::map<int64_t, std::vector<int32_t>> live;  // id -> all its tokens (prompt + generated)
  int64_t next_id = 0, hits = 0, hit_tokens = 0, queried = 0, busy = 0, shared_seen = 0;

  // The live blocks of `id` carry the chain hashes of its own tokens, and the sets agree.
  auto check_contents = [&](int64_t id) {
    const std::vector<uint64_t> chain = OracleChain(live[id], B, kSeed);
    for (int g = 0; g < m.num_groups(); ++g) {
      const LogicalBlockRange r = m.group(g).live_range(id);
      for (int64_t b = r.begin; b < r.end; ++b) {
        const int32_t block = m.group(g).block_at(id, b);
        const uint64_t h = m.group(g).pool().hash(block);
        if (m.group(g).pool().ref_count(block) > 1) ++shared_seen;
        if (h != 0) {
          ASSERT_EQ(h, chain[b]) << "seq " << id << " group " << g << " block " << b;
        }
      }
    }
  };
  auto check_pools = [&]() {
    for (int g = 0; g < m.num_groups(); ++g) {
      const std::set<uint64_t> held = PoolHashes(m, g);
      for (uint64_t h : held) ASSERT_EQ(ever[g].count(h), 1u) << "group " << g;
      if (m.evicted_blocks(g) == 0) {
        ASSERT_EQ(held, ever[g]) << "group " << g;
      }
    }
    ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  };

  for (int step = 0; step < 2500; ++step) {
    for (int k = 0; k < 2; ++k) {
      const std::vector<int32_t>& doc = docs[uniform(0, 2)];
      const int64_t common = uniform(1, 56);
      std::vector<int32_t> tokens(doc.begin(), doc.begin() + common);
      for (int64_t i = uniform(0, 1) * uniform(1, 3); i > 0; --i) {
        tokens.push_back(static_cast<int32_t>(1000 + uniform(0, 2)));
      }
      const int64_t prompt_len = static_cast<int64_t>(tokens.size());
      const int64_t max_tokens = std::min(kMaxLen, prompt_len + uniform(0, 10));
      while (static_cast<int64_t>(tokens.size()) < max_tokens) {
        // Mostly the document's continuation, so generated blocks get hit later too.
        const size_t at = tokens.size();
        tokens.push_back(uniform(0, 3) == 0 ? static_cast<int32_t>(uniform(0, 50)) : doc[at]);
      }
      const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + prompt_len);
      const int64_t hit = m.LongestCachedPrefix(prompt);
      ASSERT_EQ(hit, OracleLongestPrefix(m, prompt, kSeed));
      bool full = false;
      for (int g = 0; g < m.num_groups(); ++g) {
        full = full || m.BlocksNeeded(g, max_tokens) > m.total_blocks(g) - m.reserved_blocks(g);
      }
      const int64_t id = next_id++;
      const absl::Status s = m.Admit(id, max_tokens, prompt, hit);
      if (full) {  // a hit never changes whether a prompt is admitted
        ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
        ++busy;
        continue;
      }
      ASSERT_TRUE(s.ok()) << s;
      live[id] = tokens;
      queried += prompt_len;
      hit_tokens += hit;
      hits += hit > 0 ? 1 : 0;
      ASSERT_EQ(m.num_tokens(id), hit);
      for (int g = 0; g < m.num_groups(); ++g) {
        const LogicalBlockRange r = m.group(g).live_range(id);
        std::set<int64_t> held;
        for (int64_t b = r.begin; b < r.end; ++b) held.insert(b);
        ASSERT_EQ(held, NeededBlocksOracle(hit, windows[g], B)) << "group " << g;
        ASSERT_EQ(m.reservation(id, g), m.BlocksNeeded(g, max_tokens));
      }
      check_contents(id);
      check_pools();
    }
    for (auto it = live.begin(); it != live.end();) {
      const int64_t id = it->first;
      const std::vector<int32_t>& tokens = it->second;
      const int64_t left = static_cast<int64_t>(tokens.size()) - m.num_tokens(id);
      if (left == 0 || uniform(0, 49) == 0) {
        m.Release(id);
        it = live.erase(it);
        check_pools();
        continue;
      }
      Step(m, id, tokens, uniform(1, std::min(C, left)));  // Append must never fail
      const std::vector<uint64_t> chain = OracleChain(
          std::vector<int32_t>(tokens.begin(), tokens.begin() + m.num_tokens(id)), B, kSeed);
      for (size_t g = 0; g < windows.size(); ++g) ever[g].insert(chain.begin(), chain.end());
      check_contents(id);
      check_pools();
      ++it;
    }
  }
  for (const auto& entry : live) m.Release(entry.first);
  check_pools();
  EXPECT_EQ(m.prefix_queried_tokens(), queried);
  EXPECT_EQ(m.prefix_hit_tokens(), hit_tokens);
  for (int g = 0; g < m.num_groups(); ++g) {
    EXPECT_EQ(m.used_blocks(g), 0);
    EXPECT_EQ(m.reserved_blocks(g), 0);
    EXPECT_GT(m.evicted_blocks(g), 100) << "group " << g;
  }
  // The run exercised what it claims to.
  EXPECT_GT(hits, 300);
  EXPECT_GT(hit_tokens, queried / 10);
  EXPECT_GT(busy, 100);
  EXPECT_GT(shared_seen, 100);
}

}  // namespace
}  // namespace mswa
