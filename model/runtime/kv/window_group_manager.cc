#include "model/runtime/kv/window_group_manager.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/window.h"
#include "model/runtime/kv_layout.h"

namespace mswa {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

WindowLimits WindowLimits::For(int64_t window, int64_t max_chunk, int64_t block_size,
                               int64_t max_model_len) {
  WindowLimits limits;
  if (window == 0) {
    limits.ring_size = CeilDiv(max_model_len, block_size);
    limits.max_live = -1;
    limits.max_length = max_model_len;
  } else {
    limits.ring_size = MaxBlocksPerSequence(window, max_chunk, block_size);
    limits.max_live = limits.ring_size;
    limits.max_length = -1;
  }
  return limits;
}

WindowGroupManager::WindowGroupManager(const WindowGroupOptions& options)
    : options_(options),
      limits_(WindowLimits::For(options.window, options.max_chunk, options.block_size,
                                options.max_model_len)),
      pool_(options.num_blocks) {}

int64_t WindowGroupManager::BlocksNeeded(int64_t max_tokens) const {
  if (max_tokens < 0) return limits_.max_live;
  const int64_t blocks = CeilDiv(max_tokens, options_.block_size);
  return limits_.max_live < 0 ? blocks : std::min(blocks, limits_.max_live);
}

LogicalBlockRange WindowGroupManager::NeededBlocks(int64_t next_pos) const {
  // Block b's last position (b+1)*B - 1 is older than `oldest` exactly when b < oldest / B.
  // oldest <= next_pos, so begin <= end: the block next_pos goes to is never dropped.
  const int64_t oldest = OldestVisible(next_pos, options_.window);
  return LogicalBlockRange{oldest / options_.block_size, CeilDiv(next_pos, options_.block_size)};
}

absl::Status WindowGroupManager::CheckReserve(int64_t max_tokens) const {
  if (max_tokens < 0 && limits_.max_live < 0) {
    return absl::InvalidArgumentError(
        "a sequence of unknown length has no KV bound: the model has full-attention "
        "(unbounded window) heads; give max_tokens");
  }
  if (limits_.max_length >= 0 && max_tokens > limits_.max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence of up to ", max_tokens, " tokens exceeds max_model_len ",
                     limits_.max_length, " (the model has full-attention heads)"));
  }
  const int64_t need = BlocksNeeded(max_tokens);
  if (need > pool_.num_blocks()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence of up to ", max_tokens, " tokens needs ", need, " KV blocks in window group ",
        options_.group, " (window ", options_.window, ") but its pool has only ",
        pool_.num_blocks()));
  }
  if (need > pool_.num_blocks() - reserved_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "window group ", options_.group, " has ", pool_.num_blocks() - reserved_,
        " unreserved KV blocks; the sequence needs ", need));
  }
  return absl::OkStatus();
}

void WindowGroupManager::Reserve(int64_t seq_id, int64_t max_tokens) {
  assert(CheckReserve(max_tokens).ok() && seqs_.count(seq_id) == 0);
  SeqBlocks seq;
  seq.reservation = BlocksNeeded(max_tokens);
  seq.ring.assign(limits_.ring_size, -1);
  reserved_ += seq.reservation;
  seqs_.emplace(seq_id, std::move(seq));
}

absl::Status WindowGroupManager::CheckAppend(int64_t seq_id, int64_t num_tokens) const {
  const SeqBlocks& seq = seqs_.at(seq_id);
  const int64_t live = CeilDiv(num_tokens, options_.block_size) - seq.first_live;
  if (live > seq.reservation) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sequence ", seq_id, " would hold ", live, " blocks in window group ", options_.group,
        ", beyond its reservation of ", seq.reservation,
        " (FreeOutOfWindow must run after every step)"));
  }
  return absl::OkStatus();
}

void WindowGroupManager::Append(int64_t seq_id, int64_t num_tokens) {
  assert(CheckAppend(seq_id, num_tokens).ok());
  SeqBlocks& seq = seqs_.at(seq_id);
  const int64_t new_end = CeilDiv(num_tokens, options_.block_size);
  for (int64_t b = seq.end; b < new_end; ++b) {
    // Live blocks <= reservation <= pool - others' reservations, so a block is free; and live
    // blocks <= reservation <= ring_size consecutive ones, so the slot is empty.
    int32_t& slot = seq.ring[b % limits_.ring_size];
    assert(slot == -1);
    slot = pool_.Allocate();
  }
  seq.end = std::max(seq.end, new_end);
}

bool WindowGroupManager::HasPrefix(int64_t prefix, absl::Span<const uint64_t> chain) const {
  const LogicalBlockRange needed = NeededBlocks(prefix);
  assert(static_cast<int64_t>(chain.size()) >= needed.end);
  for (int64_t b = needed.begin; b < needed.end; ++b) {
    if (pool_.Lookup(chain[b]) == -1) return false;
  }
  return true;
}

void WindowGroupManager::AdoptPrefix(int64_t seq_id, int64_t prefix,
                                     absl::Span<const uint64_t> chain) {
  assert(prefix % options_.block_size == 0 && HasPrefix(prefix, chain));
  SeqBlocks& seq = seqs_.at(seq_id);
  assert(seq.end == 0);
  const LogicalBlockRange needed = NeededBlocks(prefix);
  assert(needed.size() <= seq.reservation);
  for (int64_t b = needed.begin; b < needed.end; ++b) {
    const int32_t block = pool_.Lookup(chain[b]);
    pool_.Ref(block);
    seq.ring[b % limits_.ring_size] = block;
  }
  // The state Append(prefix) + FreeOutOfWindow(prefix) would have left.
  seq.first_live = needed.begin;
  seq.end = needed.end;
  seq.freed_at = prefix;
}

void WindowGroupManager::HashBlock(int64_t seq_id, int64_t b, uint64_t hash) {
  const int32_t block = block_at(seq_id, b);
  if (block == -1 || pool_.hash(block) != 0) return;
  pool_.SetHash(block, hash);  // false (a duplicate) leaves the block unhashed: fine
}

int64_t WindowGroupManager::FreeOutOfWindow(int64_t seq_id, int64_t num_tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return 0;
  SeqBlocks& seq = it->second;
  seq.freed_at = num_tokens;
  const int64_t first_needed = NeededBlocks(num_tokens).begin;
  int64_t freed = 0;
  for (int64_t b = seq.first_live; b < first_needed; ++b) {
    int32_t& slot = seq.ring[b % limits_.ring_size];
    const int32_t block = slot;
    slot = -1;
    pool_.Unref(block);
    ++freed;
  }
  seq.first_live = std::max(seq.first_live, first_needed);
  freed_by_window_ += freed;
  return freed;
}

void WindowGroupManager::Release(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  SeqBlocks& seq = it->second;
  // Unhashed blocks go to the free list first to last (as without prefix caching); hashed ones
  // enter the LRU last to first, so pool pressure evicts a prefix's tail before its head and an
  // unbounded group's hit shrinks block by block instead of vanishing with its first block.
  for (int64_t b = seq.first_live; b < seq.end; ++b) {
    const int32_t block = seq.ring[b % limits_.ring_size];
    if (pool_.hash(block) == 0) pool_.Unref(block);
  }
  for (int64_t b = seq.end - 1; b >= seq.first_live; --b) {
    const int32_t block = seq.ring[b % limits_.ring_size];
    if (pool_.hash(block) != 0) pool_.Unref(block);
  }
  reserved_ -= seq.reservation;
  seqs_.erase(it);
}

const int32_t* WindowGroupManager::BlockTable(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? nullptr : it->second.ring.data();
}

int64_t WindowGroupManager::end_block(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.end;
}

LogicalBlockRange WindowGroupManager::live_range(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return LogicalBlockRange{};
  return LogicalBlockRange{it->second.first_live, it->second.end};
}

int32_t WindowGroupManager::block_at(int64_t seq_id, int64_t b) const {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end() || b < it->second.first_live || b >= it->second.end) return -1;
  return it->second.ring[b % limits_.ring_size];
}

int64_t WindowGroupManager::live_blocks(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.end - it->second.first_live;
}

int64_t WindowGroupManager::reservation(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.reservation;
}

absl::Status WindowGroupManager::CheckSequence(int64_t seq_id, const SeqBlocks& seq) const {
  const int64_t B = options_.block_size;
  const int64_t R = limits_.ring_size;
  const std::string where = absl::StrCat("sequence ", seq_id, ", group ", options_.group);
  const int64_t n = seq.end - seq.first_live;
  if (static_cast<int64_t>(seq.ring.size()) != R) {
    return absl::InternalError(
        absl::StrCat(where, ": ring has ", seq.ring.size(), " entries, not ", R));
  }
  if (seq.first_live < 0 || n < 0 || n > seq.reservation || seq.reservation > R) {
    return absl::InternalError(absl::StrCat(where, ": live blocks [", seq.first_live, ", ",
                                            seq.end, "), reservation ", seq.reservation,
                                            ", ring ", R));
  }
  // Every live logical block in its own slot; every other slot empty.
  int64_t filled = 0;
  for (int32_t entry : seq.ring) filled += entry == -1 ? 0 : 1;
  for (int64_t b = seq.first_live; b < seq.end; ++b) {
    if (seq.ring[b % R] == -1) {
      return absl::InternalError(
          absl::StrCat(where, ": live logical block ", b, " has no block"));
    }
  }
  if (filled != n) {
    return absl::InternalError(
        absl::StrCat(where, ": ", filled, " ring entries for ", n, " live blocks"));
  }
  // Position p is still needed when some query at or after freed_at sees it; the query at
  // max(p, freed_at) is the most permissive. Needed-ness only grows with b, so checking the
  // first live block and the one before it decides "live == needed" for all of them.
  auto needed = [&](int64_t b) {
    for (int64_t p = b * B; p < (b + 1) * B; ++p) {
      if (InWindow(std::max(p, seq.freed_at), p, options_.window)) return true;
    }
    return false;
  };
  if ((n > 0 && !needed(seq.first_live)) || (seq.first_live > 0 && needed(seq.first_live - 1))) {
    return absl::InternalError(absl::StrCat(where, " (window ", options_.window,
                                            "): live blocks start at ", seq.first_live,
                                            " but the last free was at position ",
                                            seq.freed_at));
  }
  return absl::OkStatus();
}

absl::Status WindowGroupManager::CheckInvariants() const {
  if (absl::Status s = pool_.CheckInvariants(); !s.ok()) {
    return absl::InternalError(absl::StrCat("group ", options_.group, ": ", s.message()));
  }
  const int64_t num_blocks = pool_.num_blocks();
  std::vector<int64_t> holders(num_blocks, 0);  // ring entries naming each block
  int64_t reserved = 0;
  for (const auto& entry : seqs_) {
    if (absl::Status s = CheckSequence(entry.first, entry.second); !s.ok()) return s;
    reserved += entry.second.reservation;
    for (int32_t block : entry.second.ring) {
      if (block == -1) continue;
      if (block < 0 || block >= num_blocks) {
        return absl::InternalError(absl::StrCat("sequence ", entry.first, ", group ",
                                                options_.group, ": block id ", block,
                                                " out of range"));
      }
      ++holders[block];
    }
  }
  for (int32_t block = 0; block < num_blocks; ++block) {
    if (holders[block] != pool_.ref_count(block)) {
      return absl::InternalError(absl::StrCat("group ", options_.group, ": block ", block,
                                              " is in ", holders[block],
                                              " ring entries but has ref_count ",
                                              pool_.ref_count(block)));
    }
  }
  if (reserved != reserved_ || reserved_ > num_blocks) {
    return absl::InternalError(absl::StrCat("group ", options_.group, ": reservations sum to ",
                                            reserved, " (recorded ", reserved_, ", pool ",
                                            num_blocks, ")"));
  }
  return absl::OkStatus();
}

}  // namespace mswa
