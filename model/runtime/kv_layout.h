// How the KV cache is laid out by window (pure integers, no tensors).
//
// A slice is (layer, contiguous run of KV heads with one window). A window group is every slice
// with the same window W_g; one block id addresses the same token range in every slice of its
// group, so a group's storage is [num_blocks_g, heads_g, block_size, head_dim] for K and for V,
// heads_g = KV heads of all its slices over all layers.
//
// Example: 2 layers, 4 KV heads, windows per KV head [16 16 64 64] and [64 64 0 0]:
//   group 0 (W=16): slices (layer 0, heads 0-1)                      heads_g = 2
//   group 1 (W=64): slices (layer 0, heads 2-3), (layer 1, heads 0-1) heads_g = 4
//   group 2 (W=0):  slices (layer 1, heads 2-3)                      heads_g = 2
// Groups are ordered by window, unbounded (0) last.
#pragma once

#include <cstdint>
#include <vector>

#include "model/format/config.h"

namespace mswa {

struct KvSlice {
  int64_t layer = 0;
  int64_t kv_head_begin = 0;  // first KV head of the layer in this slice
  int64_t num_kv_heads = 0;
  int64_t group = 0;          // window group index
  int64_t group_head_offset = 0;  // first head of this slice inside the group's storage
};

struct WindowGroup {
  int64_t window = 0;  // 0 = unbounded
  int64_t num_heads = 0;  // heads_g
  std::vector<int64_t> slices;  // indices into KvLayout::slices
};

struct KvLayout {
  std::vector<WindowGroup> groups;
  std::vector<KvSlice> slices;
  // group_of[layer][kv_head] and head_offset[layer][kv_head]: where a KV head's rows live.
  std::vector<std::vector<int64_t>> group_of;
  std::vector<std::vector<int64_t>> head_offset;
};

// Requires config.Validate() to have passed.
KvLayout BuildKvLayout(const ModelConfig& config);

// R_g: the most blocks a sequence ever holds at once in a group of finite `window`, when prefill
// chunks have at most `chunk` tokens. A chunk starting at position t needs keys from
// t - W + 1 to t + C - 1 (W - 1 + C tokens), which straddle at most one extra block:
//   R_g = ceil((W - 1 + C) / block_size) + 1.
// Example: W = 64, C = 16, block 16: ceil(79 / 16) + 1 = 6.
int64_t MaxBlocksPerSequence(int64_t window, int64_t chunk, int64_t block_size);

// Peak blocks a sequence of `length` tokens holds in a group: min(R_g, ceil(length / block))
// for a finite window, ceil(length / block) for an unbounded one.
int64_t BlocksForLength(int64_t window, int64_t length, int64_t chunk, int64_t block_size);

struct KvMemoryOptions {
  int64_t block_size = 16;
  int64_t chunk = 512;          // the largest prefill chunk
  int64_t bytes_per_element = 2;  // f16/bf16 cache
};

// Peak KV bytes (K and V, every layer) of one sequence of `length` tokens.
int64_t KvBytesPerSequence(const KvLayout& layout, int64_t head_dim,
                           const KvMemoryOptions& options, int64_t length);
// The same for a model of the same shape with full attention everywhere (no paging waste).
int64_t FullAttentionKvBytes(const ModelConfig& config, int64_t bytes_per_element,
                             int64_t length);

}  // namespace mswa
