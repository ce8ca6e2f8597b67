#include "model/runtime/kv_layout.h"

#include <algorithm>
#include <map>

namespace mswa {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

KvLayout BuildKvLayout(const ModelConfig& config) {
  KvLayout layout;
  const int64_t L = config.num_hidden_layers;
  const int64_t KV = config.num_key_value_heads;
  // Order groups by window with unbounded last: key 0 maps to +infinity.
  auto order_key = [](int64_t w) { return w == 0 ? INT64_MAX : w; };
  std::map<int64_t, int64_t> group_index;  // order key -> group
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t h = 0; h < KV; ++h) group_index[order_key(config.kv_window(l, h))] = 0;
  }
  for (auto& [key, index] : group_index) {
    index = static_cast<int64_t>(layout.groups.size());
    layout.groups.push_back(WindowGroup{key == INT64_MAX ? 0 : key, 0, {}});
  }
  layout.group_of.assign(L, std::vector<int64_t>(KV));
  layout.head_offset.assign(L, std::vector<int64_t>(KV));
  for (int64_t l = 0; l < L; ++l) {
    int64_t h = 0;
    while (h < KV) {
      const int64_t w = config.kv_window(l, h);
      int64_t end = h;
      while (end < KV && config.kv_window(l, end) == w) ++end;
      const int64_t g = group_index[order_key(w)];
      WindowGroup& group = layout.groups[g];
      KvSlice slice{l, h, end - h, g, group.num_heads};
      for (int64_t k = h; k < end; ++k) {
        layout.group_of[l][k] = g;
        layout.head_offset[l][k] = group.num_heads + (k - h);
      }
      group.num_heads += end - h;
      group.slices.push_back(static_cast<int64_t>(layout.slices.size()));
      layout.slices.push_back(slice);
      h = end;
    }
  }
  return layout;
}

int64_t MaxBlocksPerSequence(int64_t window, int64_t chunk, int64_t block_size) {
  return CeilDiv(window - 1 + chunk, block_size) + 1;
}

int64_t BlocksForLength(int64_t window, int64_t length, int64_t chunk, int64_t block_size) {
  const int64_t all = CeilDiv(length, block_size);
  if (window == 0) return all;
  return std::min(all, MaxBlocksPerSequence(window, chunk, block_size));
}

int64_t KvBytesPerSequence(const KvLayout& layout, int64_t head_dim,
                           const KvMemoryOptions& options, int64_t length) {
  int64_t bytes = 0;
  for (const WindowGroup& g : layout.groups) {
    const int64_t blocks = BlocksForLength(g.window, length, options.chunk, options.block_size);
    bytes += 2 * blocks * g.num_heads * options.block_size * head_dim * options.bytes_per_element;
  }
  return bytes;
}

int64_t FullAttentionKvBytes(const ModelConfig& config, int64_t bytes_per_element,
                             int64_t length) {
  return 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * length *
         bytes_per_element;
}

}  // namespace mswa
