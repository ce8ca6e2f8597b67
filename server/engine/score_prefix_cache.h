// The scores of cached prefixes, so that scoring a text that starts like one scored before can
// reuse the prefix's K/V: resuming after P cached positions also needs the log-probabilities of
// tokens 1 .. P, which K/V alone cannot give.
//
// Keyed like the KV blocks (model/runtime/kv/block_hash.h): the entry of logical block c is the
// log-probability of each of its B tokens given every token before it, which the chain hash of
// block c determines. A score stream fills entries as its blocks complete; a later stream over
// the same start finds entries for blocks 0, 1, ... and resumes where both these and the K/V
// blocks (KvCacheManager::LongestCachedPrefix) reach. Token 0 has no log-probability (NaN).
//
// Bounded: least recently used entries go first; B floats each. Engine thread only.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "absl/types/span.h"

namespace mswa {

class ScorePrefixCache {
 public:
  // At most `capacity` entries (>= 0; 0 keeps nothing).
  explicit ScorePrefixCache(int64_t capacity) : capacity_(capacity) {}

  // Stores (or refreshes) the B log-probabilities of the block with chain hash `hash`.
  void Put(uint64_t hash, absl::Span<const float> logprobs);
  // The block's log-probabilities, or nullptr; marks the entry recently used. Valid until the
  // next Put.
  const std::vector<float>* Get(uint64_t hash);
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }

 private:
  struct Entry {
    std::vector<float> logprobs;
    std::list<uint64_t>::iterator lru;  // position in lru_
  };
  int64_t capacity_;
  std::unordered_map<uint64_t, Entry> entries_;
  std::list<uint64_t> lru_;  // most recently used first
};

}  // namespace mswa
