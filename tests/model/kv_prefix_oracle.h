// Helpers and a brute-force oracle for the prefix-caching tests, independent of the code
// under test except for BlockHash itself (tested on its own in kv_block_hash_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "kernels/window.h"
#include "model/runtime/kv/block_hash.h"
#include "model/runtime/kv_cache_manager.h"

namespace mswa {

inline KvCacheManager MakePrefixCached(std::vector<int64_t> windows, std::vector<int64_t> blocks,
                                       int64_t block_size, int64_t max_chunk,
                                       int64_t max_model_len, bool enable = true,
                                       uint64_t seed = 7) {
  KvCacheConfig config;
  config.block_size = block_size;
  config.max_chunk = max_chunk;
  config.max_model_len = max_model_len;
  config.group_windows = std::move(windows);
  config.blocks_per_group = std::move(blocks);
  config.enable_prefix_caching = enable;
  config.prefix_cache_seed = seed;
  absl::StatusOr<KvCacheManager> m = KvCacheManager::Create(std::move(config));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

// first, first + 1, ..., first + n - 1
inline std::vector<int32_t> Iota(int32_t first, int n) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back(first + i);
  return v;
}

inline std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The engine's protocol for one step of `seq`: Append n positions, commit their ids (from
// `tokens`, the sequence's whole token list), FreeOutOfWindow; invariants checked after.
inline void Step(KvCacheManager& m, int64_t seq, const std::vector<int32_t>& tokens, int64_t n) {
  const int64_t at = m.num_tokens(seq);
  ASSERT_TRUE(m.Append(seq, n).ok());
  ASSERT_TRUE(m.CommitTokens(seq, absl::Span<const int32_t>(tokens).subspan(at, n)).ok());
  m.FreeOutOfWindow(seq);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// Admits `seq` with whatever prefix of `tokens` is cached (the first `prompt_len` are its
// prompt), then computes the rest in chunks of max_chunk. Leaves it live; returns the hit.
inline int64_t RunSequence(KvCacheManager& m, int64_t seq, const std::vector<int32_t>& tokens,
                           int64_t prompt_len, int64_t max_chunk) {
  const absl::Span<const int32_t> prompt(tokens.data(), prompt_len);
  const int64_t hit = m.LongestCachedPrefix(prompt);
  const absl::Status s = m.Admit(seq, static_cast<int64_t>(tokens.size()), prompt, hit);
  EXPECT_TRUE(s.ok()) << s;
  while (s.ok() && m.num_tokens(seq) < static_cast<int64_t>(tokens.size())) {
    Step(m, seq, tokens,
         std::min<int64_t>(max_chunk, static_cast<int64_t>(tokens.size()) - m.num_tokens(seq)));
  }
  return hit;
}

// Chain hashes of every full block of `tokens`, by the definition in block_hash.h.
inline std::vector<uint64_t> OracleChain(const std::vector<int32_t>& tokens, int64_t block_size,
                                         uint64_t seed) {
  std::vector<uint64_t> chain;
  uint64_t parent = kRootHash;
  for (size_t b = 0; (b + 1) * block_size <= tokens.size(); ++b) {
    parent = BlockHash(parent,
                       absl::Span<const int32_t>(tokens.data() + b * block_size, block_size),
                       seed);
    chain.push_back(parent);
  }
  return chain;
}

// Every hash group g's pool holds, by scanning all its blocks.
inline std::set<uint64_t> PoolHashes(const KvCacheManager& m, int g) {
  std::set<uint64_t> hashes;
  const BlockPool& pool = m.group(g).pool();
  for (int32_t b = 0; b < pool.num_blocks(); ++b) {
    if (pool.hash(b) != 0) hashes.insert(pool.hash(b));
  }
  return hashes;
}

// LongestCachedPrefix by brute force: the longest P, a multiple of B below the prompt length,
// such that in every group every block holding a position the query at P sees (InWindow) has
// its chain hash somewhere in that group's pool.
inline int64_t OracleLongestPrefix(const KvCacheManager& m, const std::vector<int32_t>& prompt,
                                   uint64_t seed) {
  const int64_t B = m.block_size();
  const std::vector<uint64_t> chain = OracleChain(prompt, B, seed);
  for (int64_t P = (static_cast<int64_t>(prompt.size()) - 1) / B * B; P > 0; P -= B) {
    bool hit = true;
    for (int g = 0; g < m.num_groups() && hit; ++g) {
      const std::set<uint64_t> cached = PoolHashes(m, g);
      for (int64_t p = 0; p < P; ++p) {
        if (InWindow(P, p, m.window(g)) && cached.count(chain[p / B]) == 0) hit = false;
      }
    }
    if (hit) return P;
  }
  return 0;
}

}  // namespace mswa
