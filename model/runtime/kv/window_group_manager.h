// One window group's per-sequence KV bookkeeping: ring block tables, reservations and which
// logical blocks the window still needs, over the group's own BlockPool. KvCacheManager fans
// out over one of these per group (all-or-nothing); this class knows nothing of other groups.
//
// Window W (0 = unbounded) and block size B as in kernels/window.h and model/runtime/kv_layout.h.
// Logical block b of a sequence holds positions [b*B, (b+1)*B) and lives in ring slot
// b % ring_size(). Live logical blocks are always one contiguous run [first_live, end).
//
// The ONE rule that differs between finite and unbounded windows is WindowLimits::For; every
// other computation is the same formula for both (OldestVisible(q, 0) = 0 makes an unbounded
// window keep everything).
//
// Thread safety: none. Owned and used by the engine thread only.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "model/runtime/kv/block_pool.h"

namespace mswa {

// What a window means for one sequence's memory.
//   finite W:    a sequence holds at most R = MaxBlocksPerSequence(W, C, B) blocks at once
//                (model/runtime/kv_layout.h), so its ring has R slots and any length fits,
//                including a stream of unknown length.
//   unbounded:   every block stays, so a sequence may be at most max_model_len tokens long,
//                its ring is a plain table of ceil(max_model_len / B) slots, and an unknown
//                length has no bound (refused).
// Example: B = 2, C = 2, max_model_len 21: W = 4 gives {4, 4, -1}; W = 0 gives {11, -1, 21}.
struct WindowLimits {
  int64_t ring_size = 0;   // block-table entries per sequence
  int64_t max_live = -1;   // most blocks held at once whatever the length; -1: none
  int64_t max_length = -1;  // longest sequence in tokens; -1: unlimited

  static WindowLimits For(int64_t window, int64_t max_chunk, int64_t block_size,
                          int64_t max_model_len);
};

// Half-open range [begin, end) of logical block indices.
struct LogicalBlockRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const LogicalBlockRange& o) const { return begin == o.begin && end == o.end; }
};

struct WindowGroupOptions {
  int group = 0;          // index among the model's window groups, for messages
  int64_t window = 0;     // W, 0 = unbounded
  int64_t block_size = 16;  // B
  int64_t max_chunk = 512;  // C: most positions appended to one sequence in one step
  int64_t max_model_len = 32768;
  int32_t num_blocks = 0;  // pool size
};

class WindowGroupManager {
 public:
  // Requires block_size, max_chunk, max_model_len >= 1, window >= 0, num_blocks >= 0
  // (KvCacheConfig::Validate).
  explicit WindowGroupManager(const WindowGroupOptions& options);

  int group() const { return options_.group; }
  int64_t window() const { return options_.window; }
  int64_t block_size() const { return options_.block_size; }
  int64_t ring_size() const { return limits_.ring_size; }
  const WindowLimits& limits() const { return limits_; }

  // Peak blocks a sequence of at most `max_tokens` tokens holds at once:
  // min(max_live, ceil(max_tokens / B)). max_tokens < 0 (unknown length): max_live, which is
  // -1 for an unbounded window.
  int64_t BlocksNeeded(int64_t max_tokens) const;

  // The logical blocks holding positions < next_pos that the query at next_pos sees (it sees
  // OldestVisible(next_pos, W) .. next_pos), plus the partial block next_pos itself falls in:
  //   [OldestVisible(next_pos, W) / B, ceil(next_pos / B))
  // It answers two questions:
  //  - after next_pos positions are appended, which blocks FreeOutOfWindow keeps: no later
  //    query sees further back than the query at next_pos;
  //  - which blocks a prefix-cache hit of length P = next_pos must contain, so that a sequence
  //    can resume at position P as if it had computed the prefix itself.
  // Example, B = 2, W = 4, P = 10: the query at 10 sees 7..10, so blocks [3, 5) (positions
  // 6..9); W = 0: [0, 5); W = 1: [5, 5), nothing (the query at 10 sees only itself).
  LogicalBlockRange NeededBlocks(int64_t next_pos) const;

  // Admission of one sequence in this group, changing nothing:
  //   OK                 Reserve(seq_id, max_tokens) will succeed
  //   ResourceExhausted  not now: other sequences' reservations leave too few blocks
  //   InvalidArgument    never: needs more blocks than the whole pool, or a length this window
  //                      cannot bound (unknown, or beyond max_length)
  // max_tokens < 0: unknown length.
  absl::Status CheckReserve(int64_t max_tokens) const;
  // Reserves BlocksNeeded(max_tokens) for a new sequence with an empty ring. Requires
  // CheckReserve(max_tokens) OK and seq_id not live here.
  void Reserve(int64_t seq_id, int64_t max_tokens);

  // Whether the sequence may grow to `num_tokens` positions: FailedPrecondition when its live
  // blocks would exceed its reservation (FreeOutOfWindow was skipped after a step). Requires
  // seq_id live and num_tokens >= its current length.
  absl::Status CheckAppend(int64_t seq_id, int64_t num_tokens) const;
  // Allocates the blocks of positions up to num_tokens (exclusive) into their ring slots.
  // Requires CheckAppend OK; cannot fail: the reservation guarantees a free block.
  void Append(int64_t seq_id, int64_t num_tokens);

  // Prefix caching. `chain` holds chain hashes of logical blocks 0, 1, ... (block_hash.h).
  // Whether this group's pool holds (referenced or cached) every block a sequence resuming at
  // `prefix` needs: each b in NeededBlocks(prefix) has a block hashed chain[b]. Requires
  // chain.size() >= NeededBlocks(prefix).end.
  bool HasPrefix(int64_t prefix, absl::Span<const uint64_t> chain) const;
  // Puts those blocks into the ring of a sequence just Reserve()d (nothing appended), taking a
  // reference on each (a cached block leaves the LRU), so the sequence looks exactly as if it
  // had appended `prefix` positions itself and run FreeOutOfWindow. `prefix` is a multiple of
  // B, so every block it holds is full and its next Append allocates fresh blocks: shared
  // blocks are never written. Requires HasPrefix(prefix, chain) and
  // NeededBlocks(prefix).size() <= the reservation (true when prefix <= max_tokens).
  void AdoptPrefix(int64_t seq_id, int64_t prefix, absl::Span<const uint64_t> chain);
  // Records that live logical block b of the sequence (now full, its K/V written) has chain
  // hash `hash`, so later prompts can find it. No-op when b is not live here (freed already) or
  // its block has a hash (it came from the cache), or when another block already has `hash`
  // (two sequences computed the same prefix; the first stays the one hits find).
  void HashBlock(int64_t seq_id, int64_t b, uint64_t hash);

  // Frees the live blocks before NeededBlocks(num_tokens).begin, where num_tokens is the
  // sequence's current length. Returns how many (0 for a seq_id not live here).
  int64_t FreeOutOfWindow(int64_t seq_id, int64_t num_tokens);

  // Frees every block of the sequence and drops its reservation; hashed blocks become cached,
  // the last logical block least recently used (evicted first). Unknown seq_id: no-op.
  void Release(int64_t seq_id);

  // The ring_size() entries of the sequence's table (-1 = no block); nullptr when not live
  // here. Valid until Release.
  const int32_t* BlockTable(int64_t seq_id) const;
  // One past the last allocated logical block (ceil(length / B)); -1 when not live here.
  int64_t end_block(int64_t seq_id) const;
  // The live logical blocks [first live, end_block); {0, 0} when not live here.
  LogicalBlockRange live_range(int64_t seq_id) const;
  // The block holding logical block b of the sequence, or -1 (not live, or not live here).
  int32_t block_at(int64_t seq_id, int64_t b) const;
  int64_t live_blocks(int64_t seq_id) const;  // -1 when not live here
  int64_t reservation(int64_t seq_id) const;  // -1 when not live here
  int64_t num_sequences() const { return static_cast<int64_t>(seqs_.size()); }

  const BlockPool& pool() const { return pool_; }
  BlockPool& pool() { return pool_; }
  int64_t reserved_blocks() const { return reserved_; }
  // Monotonic: blocks FreeOutOfWindow has returned (Release does not count), for a metric.
  int64_t blocks_freed_by_window() const { return freed_by_window_; }

  // Full check, O(pool + sequences * ring_size): the pool's own invariants; each ring entry's
  // block is referenced exactly as often as ring entries name it; each live logical block in
  // its own slot, every other slot empty; live <= reservation <= ring_size; reservations sum to
  // reserved_blocks() <= pool; and the live blocks are exactly the allocated ones holding a
  // position some query at or after the last FreeOutOfWindow's position can see (checked by
  // brute force with InWindow, not with NeededBlocks). Internal describing the first violation.
  absl::Status CheckInvariants() const;

 private:
  struct SeqBlocks {
    std::vector<int32_t> ring;  // ring_size entries, -1 = no block
    int64_t reservation = 0;
    int64_t first_live = 0;
    int64_t end = 0;       // ceil(length / B): one past the last allocated logical block
    int64_t freed_at = 0;  // length at the last FreeOutOfWindow
  };

  absl::Status CheckSequence(int64_t seq_id, const SeqBlocks& seq) const;

  WindowGroupOptions options_;
  WindowLimits limits_;
  BlockPool pool_;
  int64_t reserved_ = 0;
  int64_t freed_by_window_ = 0;
  std::unordered_map<int64_t, SeqBlocks> seqs_;
};

}  // namespace mswa
