// One window group's pool of KV block ids (pure integers: the engine owns the storage).
//
// Every block id 0 .. num_blocks() - 1 is in exactly one of three states:
//
//   free        ref_count 0, no hash     on the free list (LIFO)
//   cached      ref_count 0, hash != 0   on the LRU list: its contents are a known prefix that
//                                        a later sequence may reuse, but nobody holds it
//   referenced  ref_count >= 1           held by that many block-table entries; may carry a hash
//
//       Allocate              Unref (last, no hash)
//   free ---------> referenced ---------------------> free   (+ on_free)
//     ^               |    ^
//     |   Unref(last, |    | Ref (a prefix-cache hit revives it)
//     |   hashed)     v    |
//     +------------- cached
//        Evict (LRU order, on demand by Allocate: + on_free)
//
// Cached blocks count as free for admission (num_free()), because Allocate evicts the least
// recently used one when the free list is empty; so the exact admission of KvCacheManager is
// unchanged by caching. A hash indexes at most one block (Lookup), and only a referenced or
// cached block has one.
//
// Hashes are set only by prefix caching (KvCacheConfig::enable_prefix_caching); without it
// every block is free or referenced with ref_count 1, and the pool behaves as a plain LIFO free
// list.
//
// Thread safety: none. Owned and used by the engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace mswa {

class BlockPool {
 public:
  // A fresh pool hands out 0, 1, 2, ... (readable tests). num_blocks >= 0.
  explicit BlockPool(int32_t num_blocks);

  int64_t num_blocks() const { return static_cast<int64_t>(ref_count_.size()); }
  // Blocks Allocate can still hand out: free + cached.
  int64_t num_free() const { return static_cast<int64_t>(free_list_.size()) + lru_size_; }
  // Blocks with ref_count >= 1.
  int64_t num_used() const { return num_blocks() - num_free(); }
  // Cached (unreferenced, hashed) blocks: the LRU list's length.
  int64_t num_cached() const { return lru_size_; }
  // Blocks carrying a hash (cached or referenced).
  int64_t num_hashed() const { return static_cast<int64_t>(by_hash_.size()); }
  // Monotonic: cached blocks evicted (by Allocate or EvictOne), for a metric.
  int64_t num_evicted() const { return evicted_; }

  // Takes a block with ref_count 1 and no hash: the most recently freed one, or, when the free
  // list is empty, the least recently used cached block (evicted first: hash dropped, on_free
  // called). Requires num_free() > 0 (callers reserve first; asserted).
  int32_t Allocate();

  // One more holder of `block`. A cached block leaves the LRU list and is referenced again.
  // Requires `block` referenced or cached (asserted).
  void Ref(int32_t block);

  // One holder fewer. At ref_count 0 a hashed block becomes cached (most recently used end of
  // the LRU), an unhashed one goes back to the free list and on_free is called. Requires
  // `block` referenced (asserted).
  void Unref(int32_t block);

  // Records the content hash of a referenced, unhashed block so Lookup finds it. `hash` != 0.
  // Returns false, changing nothing, when another block already has `hash` (the first copy
  // stays the one hits find; this one is freed normally when released).
  bool SetHash(int32_t block, uint64_t hash);

  // The block whose content hash is `hash` (referenced or cached), or -1.
  int32_t Lookup(uint64_t hash) const;

  // Evicts the least recently used cached block (drops its hash, frees it, calls on_free).
  // Returns false when none is cached.
  bool EvictOne();

  int32_t ref_count(int32_t block) const { return ref_count_[block]; }
  uint64_t hash(int32_t block) const { return hash_[block]; }  // 0 = none

  // Called with each block that becomes free (from referenced or by eviction); tests poison
  // its storage with NaN to prove no kernel reads it again. Not called when a block becomes
  // cached: its contents are still wanted.
  void set_on_free(std::function<void(int32_t block)> fn) { on_free_ = std::move(fn); }

  // Full check, O(num_blocks): the three states partition the ids, the free and LRU lists hold
  // exactly the free and cached blocks once each, the LRU links are consistent, and the hash
  // index maps exactly the hashed blocks. Internal describing the first violation.
  absl::Status CheckInvariants() const;

 private:
  void LruPushBack(int32_t block);
  void LruRemove(int32_t block);
  void Free(int32_t block);  // onto the free list, then on_free

  std::vector<int32_t> ref_count_;
  std::vector<uint64_t> hash_;
  std::vector<int32_t> free_list_;  // LIFO: the most recently freed block is reused first
  // Intrusive doubly linked LRU list of cached blocks, -1 terminated; head = least recent.
  std::vector<int32_t> lru_prev_;
  std::vector<int32_t> lru_next_;
  int32_t lru_head_ = -1;
  int32_t lru_tail_ = -1;
  int64_t lru_size_ = 0;
  int64_t evicted_ = 0;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::function<void(int32_t)> on_free_;
};

}  // namespace mswa
