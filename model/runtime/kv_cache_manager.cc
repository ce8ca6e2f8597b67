#include "model/runtime/kv_cache_manager.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/window.h"

namespace mswa {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks in one sequence's table of a group: R_g, or every block of the longest sequence.
int64_t RingSize(int64_t window, int64_t chunk, int64_t block_size, int64_t max_model_len) {
  return window == 0 ? CeilDiv(max_model_len, block_size)
                     : MaxBlocksPerSequence(window, chunk, block_size);
}

}  // namespace

absl::Status KvCacheConfig::Validate() const {
  if (block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("block_size must be >= 1, got ", block_size));
  }
  if (max_chunk < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_chunk must be >= 1, got ", max_chunk));
  }
  if (max_model_len < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_model_len must be >= 1, got ", max_model_len));
  }
  if (group_windows.empty()) return absl::InvalidArgumentError("no window groups");
  if (group_windows.size() != blocks_per_group.size()) {
    return absl::InvalidArgumentError(absl::StrCat(group_windows.size(), " window groups but ",
                                                   blocks_per_group.size(), " pool sizes"));
  }
  for (size_t g = 0; g < group_windows.size(); ++g) {
    if (group_windows[g] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("window of group ", g, " must be >= 0, got ", group_windows[g]));
    }
    if (blocks_per_group[g] < 0 || blocks_per_group[g] > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("pool of group ", g, " must hold 0 .. ",
                                                     INT32_MAX, " blocks, got ",
                                                     blocks_per_group[g]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> PlanBlocksPerGroup(const KvLayout& layout, int64_t head_dim,
                                                        int64_t bytes_per_element,
                                                        int64_t block_size, int64_t max_chunk,
                                                        int64_t max_model_len,
                                                        int64_t kv_cache_bytes) {
  if (layout.groups.empty()) return absl::InvalidArgumentError("KV layout has no window groups");
  if (head_dim < 1 || bytes_per_element < 1 || block_size < 1 || max_chunk < 1 ||
      max_model_len < 1 || kv_cache_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad KV cache plan: head_dim ", head_dim, ", bytes_per_element ", bytes_per_element,
        ", block_size ", block_size, ", max_chunk ", max_chunk, ", max_model_len ",
        max_model_len, ", kv_cache_bytes ", kv_cache_bytes));
  }
  // 128-bit: kv_cache_bytes * bound_g overflows int64 for terabyte budgets with long contexts.
  __int128 per_seq = 0;
  std::vector<int64_t> bounds;
  for (const WindowGroup& group : layout.groups) {
    bounds.push_back(RingSize(group.window, max_chunk, block_size, max_model_len));
    per_seq += static_cast<__int128>(bounds.back()) * 2 * group.num_heads * block_size * head_dim *
               bytes_per_element;
  }
  if (per_seq > kv_cache_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv_cache_bytes ", kv_cache_bytes, " cannot hold one sequence: one needs ",
        static_cast<int64_t>(per_seq), " bytes (block_size ", block_size, ", max_chunk ",
        max_chunk, ", max_model_len ", max_model_len, ")"));
  }
  std::vector<int64_t> blocks;
  for (size_t g = 0; g < bounds.size(); ++g) {
    const __int128 b = static_cast<__int128>(kv_cache_bytes) * bounds[g] / per_seq;
    if (b > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "KV pool of window group ", g, " would exceed ", INT32_MAX,
          " blocks; raise block_size or lower kv_cache_bytes"));
    }
    blocks.push_back(static_cast<int64_t>(b));
  }
  return blocks;
}

absl::StatusOr<KvCacheManager> KvCacheManager::Create(KvCacheConfig config) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  return KvCacheManager(std::move(config));
}

KvCacheManager::KvCacheManager(KvCacheConfig config) : config_(std::move(config)) {
  for (size_t g = 0; g < config_.group_windows.size(); ++g) {
    Pool pool;
    pool.window = config_.group_windows[g];
    pool.ring_size =
        RingSize(pool.window, config_.max_chunk, config_.block_size, config_.max_model_len);
    pool.total = config_.blocks_per_group[g];
    // Highest id at the bottom so a fresh pool hands out 0, 1, 2, ... (readable tests).
    pool.free_list.reserve(pool.total);
    for (int64_t b = pool.total - 1; b >= 0; --b) pool.free_list.push_back(static_cast<int32_t>(b));
    groups_.push_back(std::move(pool));
  }
}

int64_t KvCacheManager::BlocksNeeded(int g, int64_t max_tokens) const {
  const Pool& pool = groups_[g];
  if (max_tokens < 0) return pool.window == 0 ? -1 : pool.ring_size;
  return BlocksForLength(pool.window, max_tokens, config_.max_chunk, config_.block_size);
}

absl::Status KvCacheManager::Admit(int64_t seq_id, int64_t max_tokens) {
  if (seqs_.count(seq_id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", seq_id, " is already admitted"));
  }
  // Check every group before touching any, so a refusal leaves nothing reserved.
  std::vector<int64_t> need(groups_.size());
  bool busy = false;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Pool& pool = groups_[g];
    if (pool.window == 0) {
      if (max_tokens < 0) {
        return absl::InvalidArgumentError(
            "a sequence of unknown length has no KV bound: the model has full-attention "
            "(unbounded window) heads; give max_tokens");
      }
      if (max_tokens > config_.max_model_len) {
        return absl::InvalidArgumentError(
            absl::StrCat("sequence of up to ", max_tokens, " tokens exceeds max_model_len ",
                         config_.max_model_len, " (the model has full-attention heads)"));
      }
    }
    need[g] = BlocksNeeded(static_cast<int>(g), max_tokens);
    if (need[g] > pool.total) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence of up to ", max_tokens, " tokens needs ", need[g],
          " KV blocks in window group ", g, " (window ", pool.window,
          ") but its pool has only ", pool.total));
    }
    if (need[g] > pool.total - pool.reserved) busy = true;
  }
  if (busy) {
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache busy: cannot reserve blocks for sequence ", seq_id, " now"));
  }
  Sequence seq;
  seq.max_tokens = max_tokens;
  seq.groups.resize(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].reserved += need[g];
    seq.groups[g].reservation = need[g];
    seq.groups[g].ring.assign(groups_[g].ring_size, -1);
  }
  seqs_.emplace(seq_id, std::move(seq));
  return absl::OkStatus();
}

absl::Status KvCacheManager::Append(int64_t seq_id, int64_t n) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return absl::NotFoundError(absl::StrCat("unknown sequence ", seq_id));
  Sequence& seq = it->second;
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("cannot append ", n, " tokens"));
  if (n > config_.max_chunk) {
    return absl::FailedPreconditionError(
        absl::StrCat("append of ", n, " tokens exceeds max_chunk ", config_.max_chunk));
  }
  const int64_t new_tokens = seq.num_tokens + n;
  if (seq.max_tokens >= 0 && new_tokens > seq.max_tokens) {
    return absl::FailedPreconditionError(
        absl::StrCat("sequence ", seq_id, " would reach ", new_tokens,
                     " tokens, beyond the ", seq.max_tokens, " it was admitted with"));
  }
  const int64_t new_end = CeilDiv(new_tokens, config_.block_size);
  for (size_t g = 0; g < groups_.size(); ++g) {
    const SeqGroup& sg = seq.groups[g];
    if (new_end - sg.first_live > sg.reservation) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sequence ", seq_id, " would hold ", new_end - sg.first_live,
          " blocks in window group ", g, ", beyond its reservation of ", sg.reservation,
          " (FreeOutOfWindow must run after every step)"));
    }
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    Pool& pool = groups_[g];
    SeqGroup& sg = seq.groups[g];
    for (int64_t b = sg.end; b < new_end; ++b) {
      // Live blocks <= reservation <= pool - others' reservations, so the list is never empty;
      // and live blocks <= reservation <= ring_size consecutive ones, so the slot is empty.
      assert(!pool.free_list.empty());
      int32_t& slot = sg.ring[b % pool.ring_size];
      assert(slot == -1);
      slot = pool.free_list.back();
      pool.free_list.pop_back();
    }
    sg.end = std::max(sg.end, new_end);
  }
  seq.num_tokens = new_tokens;
  return absl::OkStatus();
}

void KvCacheManager::FreeBlock(int g, int32_t block) {
  groups_[g].free_list.push_back(block);
  if (on_free_) on_free_(g, block);
}

int64_t KvCacheManager::FreeOutOfWindow(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return 0;
  Sequence& seq = it->second;
  seq.freed_at = seq.num_tokens;
  int64_t freed = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    Pool& pool = groups_[g];
    if (pool.window == 0) continue;
    SeqGroup& sg = seq.groups[g];
    // Block b's last position (b+1)*B - 1 is older than `oldest` exactly when b < oldest / B.
    // oldest <= num_tokens, so first_needed <= end: the block the next position goes to stays.
    const int64_t oldest = OldestVisible(seq.num_tokens, pool.window);
    const int64_t first_needed = oldest / config_.block_size;
    for (int64_t b = sg.first_live; b < first_needed; ++b) {
      int32_t& slot = sg.ring[b % pool.ring_size];
      const int32_t block = slot;
      slot = -1;
      FreeBlock(static_cast<int>(g), block);
      ++freed;
      ++pool.freed_by_window;
    }
    sg.first_live = std::max(sg.first_live, first_needed);
  }
  return freed;
}

void KvCacheManager::Release(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  Sequence& seq = it->second;
  for (size_t g = 0; g < groups_.size(); ++g) {
    Pool& pool = groups_[g];
    SeqGroup& sg = seq.groups[g];
    for (int64_t b = sg.first_live; b < sg.end; ++b) {
      FreeBlock(static_cast<int>(g), sg.ring[b % pool.ring_size]);
    }
    pool.reserved -= sg.reservation;
  }
  seqs_.erase(it);
}

const int32_t* KvCacheManager::BlockTable(int64_t seq_id, int g) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? nullptr : it->second.groups[g].ring.data();
}

int64_t KvCacheManager::num_tokens(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.num_tokens;
}

int64_t KvCacheManager::live_blocks(int64_t seq_id, int g) const {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return -1;
  return it->second.groups[g].end - it->second.groups[g].first_live;
}

int64_t KvCacheManager::reservation(int64_t seq_id, int g) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.groups[g].reservation;
}

absl::Status KvCacheManager::CheckInvariants() const {
  const int64_t B = config_.block_size;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Pool& pool = groups_[g];
    // owners[block]: how many places (free list, ring slots) hold it; must be exactly one.
    std::vector<int> owners(pool.total, 0);
    auto own = [&](int32_t block, const std::string& where) -> absl::Status {
      if (block < 0 || block >= pool.total) {
        return absl::InternalError(
            absl::StrCat("group ", g, ": block id ", block, " out of range in ", where));
      }
      if (++owners[block] > 1) {
        return absl::InternalError(absl::StrCat("group ", g, ": block ", block,
                                                " owned twice (second owner: ", where, ")"));
      }
      return absl::OkStatus();
    };
    const std::string free_list = "free list";
    for (int32_t block : pool.free_list) {
      if (absl::Status s = own(block, free_list); !s.ok()) return s;
    }
    int64_t reserved = 0;
    int64_t live = 0;
    for (const auto& [id, seq] : seqs_) {
      const SeqGroup& sg = seq.groups[g];
      const std::string where = absl::StrCat("sequence ", id);
      reserved += sg.reservation;
      const int64_t n = sg.end - sg.first_live;
      live += n;
      if (static_cast<int64_t>(sg.ring.size()) != pool.ring_size) {
        return absl::InternalError(absl::StrCat(where, ", group ", g, ": ring has ",
                                                sg.ring.size(), " entries, not ", pool.ring_size));
      }
      if (sg.end != CeilDiv(seq.num_tokens, B) || sg.first_live < 0 || n < 0 ||
          n > sg.reservation || sg.reservation > pool.ring_size) {
        return absl::InternalError(absl::StrCat(
            where, ", group ", g, ": live blocks [", sg.first_live, ", ", sg.end, ") for ",
            seq.num_tokens, " tokens, reservation ", sg.reservation, ", ring ", pool.ring_size));
      }
      // Every live logical block in its own slot; every other slot empty.
      int64_t filled = 0;
      for (int32_t entry : sg.ring) {
        if (entry == -1) continue;
        ++filled;
        if (absl::Status s = own(entry, where); !s.ok()) return s;
      }
      for (int64_t b = sg.first_live; b < sg.end; ++b) {
        if (sg.ring[b % pool.ring_size] == -1) {
          return absl::InternalError(
              absl::StrCat(where, ", group ", g, ": live logical block ", b, " has no block"));
        }
      }
      if (filled != n) {
        return absl::InternalError(absl::StrCat(where, ", group ", g, ": ", filled,
                                                " ring entries for ", n, " live blocks"));
      }
      // Position p is still needed when some query at or after freed_at sees it; the query at
      // max(p, freed_at) is the most permissive. Needed-ness only grows with b, so checking the
      // first live block and the one before it decides "live == needed" for all of them.
      auto needed = [&](int64_t b) {
        for (int64_t p = b * B; p < (b + 1) * B; ++p) {
          if (InWindow(std::max(p, seq.freed_at), p, pool.window)) return true;
        }
        return false;
      };
      if ((n > 0 && !needed(sg.first_live)) || (sg.first_live > 0 && needed(sg.first_live - 1))) {
        return absl::InternalError(absl::StrCat(
            where, ", group ", g, " (window ", pool.window, "): live blocks start at ",
            sg.first_live, " but the last free was at position ", seq.freed_at));
      }
    }
    for (int64_t b = 0; b < pool.total; ++b) {
      if (owners[b] != 1) {
        return absl::InternalError(absl::StrCat("group ", g, ": block ", b, " leaked"));
      }
    }
    if (reserved != pool.reserved || pool.reserved > pool.total || live != used_blocks(g)) {
      return absl::InternalError(absl::StrCat(
          "group ", g, ": reservations sum to ", reserved, " (recorded ", pool.reserved,
          ", pool ", pool.total, "), live blocks ", live, ", used ", used_blocks(g)));
    }
  }
  return absl::OkStatus();
}

}  // namespace mswa
