// Small model configurations shared by the LibTorch tests.
#pragma once

#include <vector>

#include "model/format/config.h"

namespace mswa::testing {

// 2 layers, 4 query heads over 2 KV heads (GQA), head_dim 8, bytes vocabulary; windows per
// query head are given per layer.
inline ModelConfig TinyConfig(std::vector<std::vector<int64_t>> windows = {{2, 2, 4, 4},
                                                                          {3, 3, 5, 5}},
                              bool tied = true) {
  ModelConfig c;
  c.vocab_size = 258;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = static_cast<int64_t>(windows.size());
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = tied;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  c.attention_windows = std::move(windows);
  c.tokenizer.type = TokenizerSpec::Type::kBytes;
  return c;
}

inline std::vector<int32_t> SomeTokens(int n, int salt = 0) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + salt * 11 + 5) % 256;
  return t;
}

}  // namespace mswa::testing
