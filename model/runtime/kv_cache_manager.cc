#include "model/runtime/kv_cache_manager.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mswa {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

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
    // A sequence's bound is its ring: R_g, or every block of the longest sequence.
    bounds.push_back(
        WindowLimits::For(group.window, max_chunk, block_size, max_model_len).ring_size);
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
    WindowGroupOptions options;
    options.group = static_cast<int>(g);
    options.window = config_.group_windows[g];
    options.block_size = config_.block_size;
    options.max_chunk = config_.max_chunk;
    options.max_model_len = config_.max_model_len;
    options.num_blocks = static_cast<int32_t>(config_.blocks_per_group[g]);
    groups_.emplace_back(options);
  }
}

void KvCacheManager::set_on_free(std::function<void(int g, int32_t block)> fn) {
  for (WindowGroupManager& group : groups_) {
    std::function<void(int32_t)> hook;
    // Captures the function and the index by value, never `this`: the manager is moved around
    // (StatusOr, the engine) and the pools move with it.
    if (fn) hook = [fn, g = group.group()](int32_t block) { fn(g, block); };
    group.pool().set_on_free(std::move(hook));
  }
}

absl::Status KvCacheManager::CheckAdmit(int64_t seq_id, int64_t max_tokens) const {
  if (seqs_.count(seq_id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", seq_id, " is already admitted"));
  }
  // Check every group before touching any, so a refusal leaves nothing reserved; a request that
  // can never fit is told so even while the pools are busy.
  bool busy = false;
  for (const WindowGroupManager& group : groups_) {
    const absl::Status s = group.CheckReserve(max_tokens);
    if (absl::IsResourceExhausted(s)) {
      busy = true;
    } else if (!s.ok()) {
      return s;
    }
  }
  if (busy) {
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache busy: cannot reserve blocks for sequence ", seq_id, " now"));
  }
  return absl::OkStatus();
}

absl::Status KvCacheManager::Admit(int64_t seq_id, int64_t max_tokens) {
  if (absl::Status s = CheckAdmit(seq_id, max_tokens); !s.ok()) return s;
  for (WindowGroupManager& group : groups_) group.Reserve(seq_id, max_tokens);
  Sequence seq;
  seq.max_tokens = max_tokens;
  seqs_.emplace(seq_id, std::move(seq));
  return absl::OkStatus();
}

int64_t KvCacheManager::LongestCachedPrefix(absl::Span<const int32_t> prompt) const {
  if (!config_.enable_prefix_caching || prompt.size() < 2) return 0;
  const int64_t B = config_.block_size;
  // Full blocks before the last prompt token, which must be computed for its logits.
  const int64_t max_blocks = (static_cast<int64_t>(prompt.size()) - 1) / B;
  const std::vector<uint64_t> chain =
      ChainHashes(prompt, B, config_.prefix_cache_seed, max_blocks);
  // missing[g][b] = how many of blocks 0 .. b-1 group g lacks, so a range [lo, hi) is fully
  // cached exactly when missing[g][hi] == missing[g][lo]: each P costs O(groups), not O(blocks).
  std::vector<std::vector<int64_t>> missing(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const BlockPool& pool = groups_[g].pool();
    missing[g].assign(max_blocks + 1, 0);
    for (int64_t b = 0; b < max_blocks; ++b) {
      missing[g][b + 1] = missing[g][b] + (pool.Lookup(chain[b]) == -1 ? 1 : 0);
    }
  }
  for (int64_t blocks = max_blocks; blocks > 0; --blocks) {
    bool hit = true;
    for (size_t g = 0; g < groups_.size() && hit; ++g) {
      const LogicalBlockRange needed = groups_[g].NeededBlocks(blocks * B);
      hit = missing[g][needed.end] == missing[g][needed.begin];
    }
    if (hit) return blocks * B;
  }
  return 0;
}

absl::Status KvCacheManager::CheckCachedPrefix(absl::Span<const int32_t> prompt,
                                               int64_t cached_tokens, int64_t max_tokens,
                                               std::vector<uint64_t>* chain) const {
  const int64_t B = config_.block_size;
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  if (cached_tokens < 0 || cached_tokens % B != 0 ||
      (cached_tokens > 0 && cached_tokens >= prompt_len) ||
      (max_tokens >= 0 && cached_tokens > max_tokens)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cached prefix of ", cached_tokens, " tokens for a prompt of ", prompt_len,
        " (max_tokens ", max_tokens, "): must be a multiple of ", B,
        " below the prompt length and within max_tokens"));
  }
  if (cached_tokens > 0 && !config_.enable_prefix_caching) {
    return absl::InvalidArgumentError("cached prefix given but prefix caching is off");
  }
  *chain = ChainHashes(prompt, B, config_.prefix_cache_seed, cached_tokens / B);
  for (const WindowGroupManager& group : groups_) {
    if (!group.HasPrefix(cached_tokens, *chain)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the first ", cached_tokens, " prompt tokens are no longer cached in window group ",
          group.group(), "; look the prefix up again"));
    }
  }
  return absl::OkStatus();
}

void KvCacheManager::AdoptChecked(int64_t seq_id, Sequence& seq, int64_t prompt_len,
                                  int64_t cached_tokens, const std::vector<uint64_t>& chain) {
  for (WindowGroupManager& group : groups_) group.AdoptPrefix(seq_id, cached_tokens, chain);
  seq.num_tokens = cached_tokens;
  seq.num_committed = cached_tokens;
  if (!chain.empty()) seq.last_hash = chain.back();
  if (config_.enable_prefix_caching) {
    prefix_queried_tokens_ += prompt_len;
    prefix_hit_tokens_ += cached_tokens;
  }
}

absl::Status KvCacheManager::Admit(int64_t seq_id, int64_t max_tokens,
                                   absl::Span<const int32_t> prompt, int64_t cached_tokens) {
  if (absl::Status s = CheckAdmit(seq_id, max_tokens); !s.ok()) return s;
  std::vector<uint64_t> chain;
  if (absl::Status s = CheckCachedPrefix(prompt, cached_tokens, max_tokens, &chain); !s.ok()) {
    return s;
  }
  for (WindowGroupManager& group : groups_) group.Reserve(seq_id, max_tokens);
  Sequence& seq = seqs_.emplace(seq_id, Sequence{}).first->second;
  seq.max_tokens = max_tokens;
  AdoptChecked(seq_id, seq, static_cast<int64_t>(prompt.size()), cached_tokens, chain);
  return absl::OkStatus();
}

absl::Status KvCacheManager::AdoptCachedPrefix(int64_t seq_id, absl::Span<const int32_t> prompt,
                                               int64_t cached_tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return absl::NotFoundError(absl::StrCat("unknown sequence ", seq_id));
  Sequence& seq = it->second;
  if (seq.num_tokens != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sequence ", seq_id, " has ", seq.num_tokens, " positions already; a cached prefix can "
        "only start a sequence"));
  }
  std::vector<uint64_t> chain;
  if (absl::Status s = CheckCachedPrefix(prompt, cached_tokens, seq.max_tokens, &chain); !s.ok()) {
    return s;
  }
  AdoptChecked(seq_id, seq, static_cast<int64_t>(prompt.size()), cached_tokens, chain);
  return absl::OkStatus();
}

absl::Status KvCacheManager::CommitTokens(int64_t seq_id, absl::Span<const int32_t> tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return absl::NotFoundError(absl::StrCat("unknown sequence ", seq_id));
  Sequence& seq = it->second;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (seq.num_committed + n > seq.num_tokens) {
    return absl::FailedPreconditionError(
        absl::StrCat("sequence ", seq_id, ": committing ", n, " token ids after ",
                     seq.num_committed, " but only ", seq.num_tokens, " positions appended"));
  }
  if (!config_.enable_prefix_caching) return absl::OkStatus();
  const int64_t B = config_.block_size;
  for (int32_t token : tokens) {
    seq.partial.push_back(token);
    ++seq.num_committed;
    if (static_cast<int64_t>(seq.partial.size()) < B) continue;
    seq.last_hash = BlockHash(seq.last_hash, seq.partial, config_.prefix_cache_seed);
    seq.partial.clear();
    const int64_t b = seq.num_committed / B - 1;
    for (WindowGroupManager& group : groups_) group.HashBlock(seq_id, b, seq.last_hash);
  }
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
  // All groups or none: a refusal leaves every table as it was.
  for (const WindowGroupManager& group : groups_) {
    if (absl::Status s = group.CheckAppend(seq_id, new_tokens); !s.ok()) return s;
  }
  for (WindowGroupManager& group : groups_) group.Append(seq_id, new_tokens);
  seq.num_tokens = new_tokens;
  return absl::OkStatus();
}

int64_t KvCacheManager::FreeOutOfWindow(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return 0;
  int64_t freed = 0;
  for (WindowGroupManager& group : groups_) {
    freed += group.FreeOutOfWindow(seq_id, it->second.num_tokens);
  }
  return freed;
}

void KvCacheManager::Release(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  for (WindowGroupManager& group : groups_) group.Release(seq_id);
  seqs_.erase(it);
}

const int32_t* KvCacheManager::BlockTable(int64_t seq_id, int g) const {
  return groups_[g].BlockTable(seq_id);
}

int64_t KvCacheManager::num_tokens(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.num_tokens;
}

int64_t KvCacheManager::live_blocks(int64_t seq_id, int g) const {
  return groups_[g].live_blocks(seq_id);
}

int64_t KvCacheManager::reservation(int64_t seq_id, int g) const {
  return groups_[g].reservation(seq_id);
}

absl::Status KvCacheManager::CheckInvariants() const {
  for (const WindowGroupManager& group : groups_) {
    if (absl::Status s = group.CheckInvariants(); !s.ok()) return s;
    if (!config_.enable_prefix_caching && group.pool().num_hashed() != 0) {
      return absl::InternalError(absl::StrCat("group ", group.group(), " has ",
                                              group.pool().num_hashed(),
                                              " hashed blocks with prefix caching off"));
    }
    if (group.num_sequences() != num_sequences()) {
      return absl::InternalError(absl::StrCat("group ", group.group(), " holds ",
                                              group.num_sequences(), " sequences, not ",
                                              num_sequences()));
    }
    for (const auto& entry : seqs_) {
      const int64_t want = CeilDiv(entry.second.num_tokens, config_.block_size);
      if (group.end_block(entry.first) != want) {
        return absl::InternalError(absl::StrCat(
            "sequence ", entry.first, ", group ", group.group(), ": blocks allocated up to ",
            group.end_block(entry.first), " for ", entry.second.num_tokens, " tokens (want ",
            want, ")"));
      }
      if (absl::Status s = CheckSharing(group, entry.first, entry.second); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status KvCacheManager::CheckSharing(const WindowGroupManager& group, int64_t seq_id,
                                          const Sequence& seq) const {
  const int64_t B = config_.block_size;
  const bool partial_ok = !config_.enable_prefix_caching ||
                          static_cast<int64_t>(seq.partial.size()) == seq.num_committed % B;
  if (seq.num_committed > seq.num_tokens || !partial_ok) {
    return absl::InternalError(absl::StrCat("sequence ", seq_id, ": ", seq.num_committed,
                                            " positions committed (", seq.partial.size(),
                                            " in the partial block) of ", seq.num_tokens));
  }
  // A hashed block may be shared and found by other prompts, so nothing may write it again:
  // it must be full and committed, i.e. before every position this sequence will append.
  const LogicalBlockRange live = group.live_range(seq_id);
  for (int64_t b = live.begin; b < live.end; ++b) {
    const int32_t block = group.block_at(seq_id, b);
    const bool hashed = group.pool().hash(block) != 0;
    if ((group.pool().ref_count(block) > 1 && !hashed) ||
        (hashed && (b + 1) * B > seq.num_committed)) {
      return absl::InternalError(absl::StrCat(
          "sequence ", seq_id, ", group ", group.group(), ": logical block ", b, " (block ",
          block, ", ref_count ", group.pool().ref_count(block), ", hashed ", hashed,
          ") is shared or hashed but not full and committed (", seq.num_committed,
          " positions committed)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mswa
