// KV-cache bookkeeping: which physical block of which window group's pool holds which tokens of
// which sequence. Pure integers (block ids), no tensors: the engine owns the storage and the
// kernels read the block tables this class maintains (kernels/paged_attention.h).
//
// Per window group g (model/runtime/kv_layout.h; window W_g, 0 = unbounded) there is one pool of
// block ids 0 .. total_blocks(g) - 1, each block holding `block_size` (B) consecutive positions. A
// sequence has, per group, a RING block table of ring_size(g) int32 entries (-1 = no block):
// logical block b (positions [b*B, (b+1)*B)) lives in slot b % ring_size(g).
//   finite W_g:    ring_size = R_g = MaxBlocksPerSequence(W_g, C, B); at most R_g consecutive
//                  logical blocks are alive at once, so their slots never collide.
//   unbounded W_g: ring_size = ceil(max_model_len / B); b < ring_size always, so the ring is a
//                  plain table.
// (WindowLimits::For in model/runtime/kv/window_group_manager.h is the one place in the code
// that states these two cases.)
// Per-sequence memory is therefore bounded even for a 10^7-token scoring stream.
//
// Worked example: B = 2, W = 4, C = 2, so R = ceil((4 - 1 + 2) / 2) + 1 = 4 slots.
// After 10 tokens appended and FreeOutOfWindow (next query at position 10 sees 7..10):
//
//   positions   0 1 | 2 3 | 4 5 | 6 7 | 8 9 | 10 11
//   logical b     0     1     2     3     4      5
//   state       freed freed freed  live  live  (not yet)
//
//   ring slot:    0     1     2     3          logical 3 -> slot 3, logical 4 -> slot 0
//   entry:       [p4]  [-1]  [-1]  [p3]        p3, p4: physical block ids from the pool
//
// Appending 2 more tokens (positions 10, 11) allocates logical 5 into slot 1; the queries at
// 10 and 11 read positions 7..11 = logical 3, 4, 5. FreeOutOfWindow afterwards (next query 12
// sees 9..12) frees logical 3 and leaves logical 4 and 5.
//
// Lifecycle per sequence, once per engine step:
//   Admit(id, max_tokens)    reserve capacity in every group (all or nothing), once
//   Append(id, n)            allocate blocks for the n new positions (cannot fail once admitted)
//   ... write K/V, run attention in every layer ...
//   CommitTokens(id, ids)    (prefix caching) the token ids of the positions just written
//   FreeOutOfWindow(id)      return blocks no future query can see
//   Release(id)              finish / abort: return everything, once
//
// Prefix caching (KvCacheConfig::enable_prefix_caching; window-aware, vLLM's hybrid manager's
// idea). Every FULL block whose K/V is written and whose token ids were committed gets its
// chain hash (model/runtime/kv/block_hash.h) in each group's pool: the same logical block
// exists once per group, and each group caches its own copy. A hashed block that its last
// holder releases (FreeOutOfWindow, Release) stays findable in the pool's LRU instead of being
// freed, until a pool short of free blocks evicts it. A new prompt then resumes at
//   P = LongestCachedPrefix(prompt)   (a multiple of B, <= prompt length - 1)
// when every group holds the blocks a query at P sees: a group of window W only the blocks
// of positions P-W+1 .. P-1, an unbounded group all of blocks 0 .. P/B - 1:
//
//   B = 2, P = 8, prompt t0..t8     blocks  0(t0 t1)  1(t2 t3)  2(t4 t5)  3(t6 t7)
//   group W = 3 (query 8 sees 6..8)          -         -         -       needed
//   group W = 0 (unbounded)                needed    needed    needed    needed
//
// Admit(id, max_tokens, prompt, P) takes a reference on those blocks and starts the sequence
// at num_tokens = P. Shared blocks are never written: only full blocks are shared and the
// sequence appends from P, a block boundary, into fresh blocks.
//
// Admission rule with sharing: a sequence's reservation is the same as without a hit
// (BlocksNeeded(g, max_tokens)) and counts every block it holds, shared ones included. So the
// blocks all sequences hold, counted once per holder, never exceed the reservations; distinct
// referenced blocks are at most that, and cached blocks count as free (Allocate evicts one
// when the free list is empty), so Append still cannot fail. A hit saves prefill compute, not
// admission capacity: a prompt is admitted exactly when it would be without the cache.
//
// Structure (vLLM v1's, one pool per window group instead of one shared pool):
//   KvCacheManager       coordinator: sequence lengths, all-or-nothing admission and appends
//                        across groups, fan-out of FreeOutOfWindow / Release
//   WindowGroupManager   one group: ring tables, reservations, which blocks the window needs
//                        (model/runtime/kv/window_group_manager.h)
//   BlockPool            one group's block ids: free list, ref counts, content hashes and the
//                        LRU of cached blocks prefix caching reuses
//                        (model/runtime/kv/block_pool.h)
//
// Thread safety: none. Owned and used by the engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/runtime/kv/block_hash.h"
#include "model/runtime/kv/window_group_manager.h"
#include "model/runtime/kv_layout.h"

namespace mswa {

struct KvCacheConfig {
  int64_t block_size = 16;         // B, tokens per block
  int64_t max_chunk = 512;         // C: most tokens appended to one sequence in one step
  int64_t max_model_len = 32768;   // longest sequence; bounds the unbounded-window groups
  std::vector<int64_t> group_windows;     // W_g per group, as in KvLayout (0 = unbounded)
  std::vector<int64_t> blocks_per_group;  // pool size per group (PlanBlocksPerGroup)
  // Off: blocks are never hashed or cached, CommitTokens does nothing, LongestCachedPrefix is 0
  // and the manager behaves exactly as before prefix caching existed.
  bool enable_prefix_caching = false;
  // Mixed into every block hash: derive it from the model's identity (weights, dtype) so K/V
  // of another model can never be hit. Any value is valid.
  uint64_t prefix_cache_seed = 0;

  // InvalidArgument naming the field: sizes >= 1, one pool size per window, windows >= 0,
  // pools of 0 .. INT32_MAX blocks.
  absl::Status Validate() const;
};

// Splits `kv_cache_bytes` across the groups of `layout` in proportion to each group's
// per-sequence bound, so every group runs out at the same number of concurrent sequences.
//   bound_g           = R_g blocks (finite window) or ceil(max_model_len / B) (unbounded)
//   bytes_per_block_g = 2 (K and V) * heads_g * B * head_dim * bytes_per_element
//   per_seq           = sum_g bound_g * bytes_per_block_g
//   blocks_g          = floor(kv_cache_bytes * bound_g / per_seq)
// Example: two groups, bound 4 and 8 blocks, 1 KiB per block each: per_seq = 12 KiB; 30 KiB
// gives 10 and 20 blocks (2.5 sequences' worth in each).
// InvalidArgument when the budget cannot hold one sequence of the maximum bound (the message
// says how many bytes one needs) or a pool would exceed INT32_MAX blocks.
absl::StatusOr<std::vector<int64_t>> PlanBlocksPerGroup(const KvLayout& layout, int64_t head_dim,
                                                        int64_t bytes_per_element,
                                                        int64_t block_size, int64_t max_chunk,
                                                        int64_t max_model_len,
                                                        int64_t kv_cache_bytes);

class KvCacheManager {
 public:
  // InvalidArgument when config.Validate() fails.
  static absl::StatusOr<KvCacheManager> Create(KvCacheConfig config);

  int num_groups() const { return static_cast<int>(groups_.size()); }
  int64_t block_size() const { return config_.block_size; }
  int64_t window(int g) const { return groups_[g].window(); }
  // Entries of one sequence's block table in group g (R_g, or ceil(max_model_len / B)).
  int64_t ring_size(int g) const { return groups_[g].ring_size(); }
  // Group g's own manager (its pool, limits and NeededBlocks), read-only.
  const WindowGroupManager& group(int g) const { return groups_[g]; }

  // Peak blocks a sequence of at most `max_tokens` tokens holds at once in group g:
  // BlocksForLength(W_g, max_tokens, C, B). max_tokens < 0 means "length unknown": R_g for a
  // finite window; for an unbounded one there is no bound and this returns -1.
  int64_t BlocksNeeded(int g, int64_t max_tokens) const {
    return groups_[g].BlocksNeeded(max_tokens);
  }

  // Exact, all-or-nothing admission: reserves BlocksNeeded(g, max_tokens) blocks in every group.
  // A reservation caps the blocks the sequence holds AT ONCE (blocks the window frees are reused
  // by the same sequence later), and the sum of reservations never exceeds a pool, so Append
  // cannot run out. max_tokens < 0: unknown length (a scoring stream), finite groups only.
  //   OK
  //   ResourceExhausted  the pools are busy now; retry after others release (nothing changed)
  //   InvalidArgument    it can never fit: needs more than a whole pool, or max_tokens >
  //                      max_model_len / unknown length with an unbounded group
  //   AlreadyExists      seq_id is live
  absl::Status Admit(int64_t seq_id, int64_t max_tokens);

  // Prefix caching: the longest P, a multiple of B with P <= prompt.size() - 1 (one token is
  // left to compute, for its logits), such that every group's pool holds every block of
  // group(g).NeededBlocks(P), each identified by the chain hash of prompt blocks 0 .. b. Hits
  // are not monotone in P for a windowed group (a long prefix may need only tail blocks that
  // are cached while a shorter one needs evicted ones), so every P is tried, longest first.
  // 0 when prefix caching is off or nothing is cached. Changes nothing (the LRU order
  // included). O(prompt length + groups * prompt blocks).
  int64_t LongestCachedPrefix(absl::Span<const int32_t> prompt) const;

  // Admit with a prefix-cache hit: as Admit(seq_id, max_tokens), then, when cached_tokens > 0,
  // references the cached blocks of group(g).NeededBlocks(cached_tokens) of the prompt in
  // every group, puts them in their ring slots and starts the sequence at num_tokens =
  // cached_tokens (its first Append writes position cached_tokens). cached_tokens normally comes
  // from LongestCachedPrefix(prompt) just before, on the same thread. With prefix caching on,
  // counts prompt.size() queried and cached_tokens hit tokens when admitted. Errors, changing
  // nothing:
  //   those of Admit(seq_id, max_tokens), checked first
  //   InvalidArgument     cached_tokens < 0, not a multiple of B, >= prompt.size(), or
  //                       > max_tokens (max_tokens >= 0); or > 0 with prefix caching off
  //   FailedPrecondition  some needed block is no longer cached (evicted since the lookup):
  //                       look up again
  absl::Status Admit(int64_t seq_id, int64_t max_tokens, absl::Span<const int32_t> prompt,
                     int64_t cached_tokens);

  // The hit part of that Admit for a sequence admitted earlier without a prompt, whose tokens
  // arrived since (a scoring stream's text): references the cached blocks of `prompt`'s first
  // cached_tokens positions and starts the sequence there, counting queried and hit tokens the
  // same way. Errors, changing nothing:
  //   NotFound            unknown seq_id
  //   FailedPrecondition  the sequence has positions already (num_tokens > 0), or some needed
  //                       block is no longer cached
  //   InvalidArgument     as Admit's, against the sequence's max_tokens
  absl::Status AdoptCachedPrefix(int64_t seq_id, absl::Span<const int32_t> prompt,
                                 int64_t cached_tokens);
  uint64_t prefix_cache_seed() const { return config_.prefix_cache_seed; }

  // Prefix caching: the token ids of positions [c, c + tokens.size()), c = the positions
  // committed so far (the cached prefix after a hit, else 0), once their K/V is written in every
  // layer: call after the step's forward and before FreeOutOfWindow, whose freed blocks are
  // otherwise lost to the cache. Each block this completes gets its chain hash registered in
  // every group where it is still live. Memory per sequence: one partial block of ids.
  // No-op (after the checks) with prefix caching off. Errors, changing nothing:
  //   NotFound            unknown seq_id
  //   FailedPrecondition  c + tokens.size() > num_tokens(seq_id): not appended yet
  absl::Status CommitTokens(int64_t seq_id, absl::Span<const int32_t> tokens);

  // Makes positions [num_tokens, num_tokens + n) writable, allocating their blocks from the
  // reservation; num_tokens advances by n. On error nothing changes:
  //   NotFound            unknown seq_id
  //   InvalidArgument     n < 0
  //   FailedPrecondition  n > max_chunk, num_tokens + n > max_tokens, or the live blocks would
  //                       exceed the reservation (only if FreeOutOfWindow was skipped after the
  //                       previous step).
  // n = 0 is a no-op.
  absl::Status Append(int64_t seq_id, int64_t n);

  // Call once the appended positions' attention has run in every layer. Frees, in every finite
  // group, each block whose positions are all invisible to the next query (position
  // num_tokens) and so to every later one: block b goes when (b+1)*B - 1 < OldestVisible(
  // num_tokens, W_g), i.e. b < group(g).NeededBlocks(num_tokens).begin. The partially written
  // last block always stays (its last position is still to come). Returns the number of
  // blocks freed (0 for an unknown seq_id).
  int64_t FreeOutOfWindow(int64_t seq_id);

  // Returns every block and the reservation (finish, abort). Unknown seq_id: no-op.
  void Release(int64_t seq_id);

  // The ring_size(g) entries of the sequence's table in group g; nullptr for an unknown
  // seq_id. Valid until that sequence is released.
  const int32_t* BlockTable(int64_t seq_id, int g) const;
  // Positions appended so far; -1 for an unknown seq_id.
  int64_t num_tokens(int64_t seq_id) const;
  // Blocks the sequence holds now in group g; -1 for an unknown seq_id.
  int64_t live_blocks(int64_t seq_id, int g) const;
  // Its reservation in group g; -1 for an unknown seq_id.
  int64_t reservation(int64_t seq_id, int g) const;

  // Accounting per group. Used = referenced by some block table.
  int64_t total_blocks(int g) const { return groups_[g].pool().num_blocks(); }
  int64_t used_blocks(int g) const { return groups_[g].pool().num_used(); }
  int64_t reserved_blocks(int g) const { return groups_[g].reserved_blocks(); }
  // Monotonic: blocks FreeOutOfWindow has returned (Release does not count), for a metric.
  int64_t blocks_freed_by_window(int g) const { return groups_[g].blocks_freed_by_window(); }
  int64_t num_sequences() const { return static_cast<int64_t>(seqs_.size()); }
  // Prefix-cache metrics. Cached = hashed and unreferenced (counted in the free blocks too).
  int64_t cached_blocks(int g) const { return groups_[g].pool().num_cached(); }
  // Monotonic: cached blocks evicted to make room.
  int64_t evicted_blocks(int g) const { return groups_[g].pool().num_evicted(); }
  // Monotonic: prompt tokens of sequences admitted through the prompt overload of Admit, and
  // how many of them came from the cache (hit rate = hit / queried).
  int64_t prefix_queried_tokens() const { return prefix_queried_tokens_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }

  // Called for every block returned to a pool's free list: by FreeOutOfWindow and Release, and
  // when a cached block is evicted (not when one is merely cached: its K/V is still wanted).
  // Tests poison the block's storage with NaN to prove no kernel reads it again.
  // Replaces any earlier hook.
  void set_on_free(std::function<void(int g, int32_t block)> fn);

  // Full consistency check, O(pools + sequences * ring sizes), for tests: every group's
  // WindowGroupManager::CheckInvariants (every block free or held by exactly as many ring
  // entries as its ref count; each ring entry in the slot of its logical block; per sequence
  // live blocks <= reservation <= ring_size; sum of reservations <= pool; live blocks exactly
  // those some query at or after the last FreeOutOfWindow's position can still see), and every
  // group holds exactly the live sequences, each with ceil(num_tokens / B) blocks allocated.
  // Prefix caching: committed <= num_tokens; a block held by more than one sequence is hashed;
  // a hashed block a sequence holds is full and committed (so no Append writes it again); with
  // prefix caching off no block is hashed. Internal describing the first violation.
  absl::Status CheckInvariants() const;

 private:
  struct Sequence {
    int64_t max_tokens = -1;  // < 0: unknown
    int64_t num_tokens = 0;
    int64_t num_committed = 0;      // positions whose token ids CommitTokens has seen
    uint64_t last_hash = kRootHash;  // chain hash of the last full committed block
    std::vector<int32_t> partial;   // ids of the committed positions after it (< B)
  };

  explicit KvCacheManager(KvCacheConfig config);
  // Admit's checks before anything changes: AlreadyExists, InvalidArgument, ResourceExhausted.
  absl::Status CheckAdmit(int64_t seq_id, int64_t max_tokens) const;
  // The cached-prefix checks of Admit and AdoptCachedPrefix (InvalidArgument, FailedPrecondition);
  // fills `chain` with the prefix's chain hashes.
  absl::Status CheckCachedPrefix(absl::Span<const int32_t> prompt, int64_t cached_tokens,
                                 int64_t max_tokens, std::vector<uint64_t>* chain) const;
  // References the checked prefix's blocks in every group and starts `seq` after it.
  void AdoptChecked(int64_t seq_id, Sequence& seq, int64_t prompt_len, int64_t cached_tokens,
                    const std::vector<uint64_t>& chain);
  // CheckInvariants' prefix-caching part for one sequence in one group.
  absl::Status CheckSharing(const WindowGroupManager& group, int64_t seq_id,
                            const Sequence& seq) const;

  KvCacheConfig config_;
  std::vector<WindowGroupManager> groups_;
  std::unordered_map<int64_t, Sequence> seqs_;
  int64_t prefix_queried_tokens_ = 0;
  int64_t prefix_hit_tokens_ = 0;
};

}  // namespace mswa
