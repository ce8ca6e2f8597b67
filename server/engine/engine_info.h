// What the engine serves, as plain values: the model's architecture, its windows, the KV cache's
// layout, memory bounds and the engine's limits. Computed in one place (Engine::Info) so that
// every front end (gRPC GetModelInfo, HTTP /v1/models, mswa-client info) reports the same
// numbers and none of them touches LibTorch types or recomputes the KV bounds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mswa {

struct EngineInfo {
  // Architecture.
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t num_parameters = 0;
  std::string tokenizer;  // Tokenizer::kind()
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;  // every id that ends generation; the first is the primary
  // Windows per layer and head as served, and as the checkpoint defines them when they were
  // overridden (empty otherwise). 0 = unbounded.
  std::vector<std::vector<int64_t>> attention_windows;
  std::vector<std::vector<int64_t>> native_windows;

  // KV cache.
  int64_t kv_block_size = 0;
  std::string kv_dtype;  // "float32", "float16", "bfloat16"
  struct WindowGroup {
    int64_t window = 0;                   // 0 = unbounded
    int64_t kv_heads = 0;
    int64_t max_blocks_per_sequence = 0;  // 0 for an unbounded window (it grows with length)
    int64_t total_blocks = 0;
  };
  std::vector<WindowGroup> window_groups;
  // Bytes of KV one sequence can ever hold; 0 when some window is unbounded.
  int64_t kv_bytes_per_sequence_bound = 0;
  struct KvAtLength {
    int64_t tokens = 0;
    int64_t bytes = 0;                 // with this model's windows
    int64_t full_attention_bytes = 0;  // the same model with every window unbounded
  };
  std::vector<KvAtLength> kv_bytes_at_length;  // at 4096, 32768 and 131072 tokens
  int64_t kv_cache_bytes = 0;

  // Engine limits.
  int32_t max_new_tokens = 0;
  int32_t max_waiting = 0;
  int64_t max_tokens_per_step = 0;
  // Longest sequence (prompt + output); 0 when every window is finite (no limit).
  int64_t max_sequence_length = 0;
  std::string device;  // "cpu" or "cuda"
  std::string dtype;   // the matrix products': "float32", "bfloat16", "float16", "int8" or "q4"
  std::string activation_dtype;  // their activations': "float32" or "bfloat16"
  std::string product_kernel;    // ProductKernelName: what a decode step's products run on
  bool prefix_caching = false;  // EngineOptions::enable_prefix_caching
};

}  // namespace mswa
