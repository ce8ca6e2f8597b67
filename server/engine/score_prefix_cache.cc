#include "server/engine/score_prefix_cache.h"

namespace mswa {

void ScorePrefixCache::Put(uint64_t hash, absl::Span<const float> logprobs) {
  if (capacity_ <= 0) return;
  auto it = entries_.find(hash);
  if (it != entries_.end()) {
    it->second.logprobs.assign(logprobs.begin(), logprobs.end());
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  if (static_cast<int64_t>(entries_.size()) >= capacity_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(hash);
  entries_.emplace(hash, Entry{std::vector<float>(logprobs.begin(), logprobs.end()), lru_.begin()});
}

const std::vector<float>* ScorePrefixCache::Get(uint64_t hash) {
  auto it = entries_.find(hash);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.logprobs;
}

}  // namespace mswa
