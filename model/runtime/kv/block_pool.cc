#include "model/runtime/kv/block_pool.h"

#include <cassert>

#include "absl/strings/str_cat.h"

namespace mswa {

BlockPool::BlockPool(int32_t num_blocks)
    : ref_count_(num_blocks, 0),
      hash_(num_blocks, 0),
      lru_prev_(num_blocks, -1),
      lru_next_(num_blocks, -1) {
  // Highest id at the bottom of the LIFO so a fresh pool hands out 0, 1, 2, ...
  free_list_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_list_.push_back(b);
}

int32_t BlockPool::Allocate() {
  // Prefer a truly free block: a cached one may still give a prefix-cache hit.
  if (free_list_.empty()) {
    const bool evicted = EvictOne();
    assert(evicted && "BlockPool::Allocate on an exhausted pool");
    (void)evicted;
  }
  const int32_t block = free_list_.back();
  free_list_.pop_back();
  ref_count_[block] = 1;
  return block;
}

void BlockPool::Ref(int32_t block) {
  assert(ref_count_[block] > 0 || hash_[block] != 0);
  if (ref_count_[block] == 0) LruRemove(block);
  ++ref_count_[block];
}

void BlockPool::Unref(int32_t block) {
  assert(ref_count_[block] > 0);
  if (--ref_count_[block] > 0) return;
  if (hash_[block] != 0) {
    LruPushBack(block);
  } else {
    Free(block);
  }
}

bool BlockPool::SetHash(int32_t block, uint64_t hash) {
  assert(hash != 0 && ref_count_[block] > 0 && hash_[block] == 0);
  if (!by_hash_.emplace(hash, block).second) return false;
  hash_[block] = hash;
  return true;
}

int32_t BlockPool::Lookup(uint64_t hash) const {
  auto it = by_hash_.find(hash);
  return it == by_hash_.end() ? -1 : it->second;
}

bool BlockPool::EvictOne() {
  if (lru_head_ == -1) return false;
  const int32_t block = lru_head_;
  LruRemove(block);
  by_hash_.erase(hash_[block]);
  hash_[block] = 0;
  ++evicted_;
  Free(block);
  return true;
}

void BlockPool::Free(int32_t block) {
  free_list_.push_back(block);
  if (on_free_) on_free_(block);
}

void BlockPool::LruPushBack(int32_t block) {
  lru_prev_[block] = lru_tail_;
  lru_next_[block] = -1;
  if (lru_tail_ == -1) {
    lru_head_ = block;
  } else {
    lru_next_[lru_tail_] = block;
  }
  lru_tail_ = block;
  ++lru_size_;
}

void BlockPool::LruRemove(int32_t block) {
  const int32_t prev = lru_prev_[block];
  const int32_t next = lru_next_[block];
  (prev == -1 ? lru_head_ : lru_next_[prev]) = next;
  (next == -1 ? lru_tail_ : lru_prev_[next]) = prev;
  lru_prev_[block] = -1;
  lru_next_[block] = -1;
  --lru_size_;
}

absl::Status BlockPool::CheckInvariants() const {
  const int64_t n = num_blocks();
  // seen[b]: 1 on the free list, 2 on the LRU list; each at most once.
  std::vector<int8_t> seen(n, 0);
  for (int32_t block : free_list_) {
    if (block < 0 || block >= n || seen[block] != 0) {
      return absl::InternalError(
          absl::StrCat("block ", block, " out of range or twice on the free list"));
    }
    if (ref_count_[block] != 0 || hash_[block] != 0) {
      return absl::InternalError(absl::StrCat("free block ", block, " has ref_count ",
                                              ref_count_[block], ", hash ", hash_[block]));
    }
    seen[block] = 1;
  }
  int64_t length = 0;
  int32_t prev = -1;
  for (int32_t block = lru_head_; block != -1; block = lru_next_[block]) {
    if (block < 0 || block >= n || seen[block] != 0 || length >= n) {
      return absl::InternalError(
          absl::StrCat("block ", block, " out of range or twice in the LRU list"));
    }
    if (lru_prev_[block] != prev) {
      return absl::InternalError(absl::StrCat("LRU block ", block, " links back to ",
                                              lru_prev_[block], ", not ", prev));
    }
    if (ref_count_[block] != 0 || hash_[block] == 0) {
      return absl::InternalError(absl::StrCat("cached block ", block, " has ref_count ",
                                              ref_count_[block], ", hash ", hash_[block]));
    }
    seen[block] = 2;
    prev = block;
    ++length;
  }
  if (prev != lru_tail_ || length != lru_size_) {
    return absl::InternalError(absl::StrCat("LRU list ends at ", prev, " after ", length,
                                            " blocks; recorded tail ", lru_tail_, ", size ",
                                            lru_size_));
  }
  int64_t hashed = 0;
  for (int32_t block = 0; block < n; ++block) {
    if (seen[block] == 0 && ref_count_[block] <= 0) {
      return absl::InternalError(
          absl::StrCat("block ", block, " leaked: unreferenced, on neither list"));
    }
    if (hash_[block] == 0) continue;
    ++hashed;
    if (Lookup(hash_[block]) != block) {
      return absl::InternalError(absl::StrCat("hash ", hash_[block], " of block ", block,
                                              " looks up block ", Lookup(hash_[block])));
    }
  }
  if (hashed != static_cast<int64_t>(by_hash_.size())) {
    return absl::InternalError(absl::StrCat(by_hash_.size(), " hashes indexed for ", hashed,
                                            " hashed blocks"));
  }
  return absl::OkStatus();
}

}  // namespace mswa
