// The model directory's config.json: the architecture and, per layer and query head, the
// attention window (see kernels/window.h for what a window means).
//
//   {"model_type": "mswa", "vocab_size": 258, "hidden_size": 256, "intermediate_size": 704,
//    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
//    "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
//    "tie_word_embeddings": true, "bos_token_id": 256, "eos_token_id": 257,
//    "attention_windows": [[16, 16, 64, 64], [32, 32, 128, 128]],
//    "tokenizer": {"type": "bytes"}}
//
// Hugging Face directories of other families load unchanged (model/format/families/): their
// mapper fills the same fields plus `arch` (the switches of the forward pass) and derives the
// per-layer windows from the family's own fields (sliding_window, layer_types, ...). An explicit
// "attention_windows" in any config.json overrides them (an MSWA schedule applied to a
// pretrained model); `native_windows` keeps what the model was trained with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/format/arch_spec.h"
#include "model/tokenizer/tokenizer.h"

namespace mswa {

// Upper bounds on counts the parser allocates per layer and per head (the largest published
// decoders have 126 layers and 128 query heads): a config past them is refused before any
// allocation, so a mistyped "num_hidden_layers": 3e10 is an error, not an out-of-memory.
inline constexpr int64_t kMaxHiddenLayers = 4096;
inline constexpr int64_t kMaxAttentionHeads = 4096;

struct ModelConfig {
  std::string model_type = "mswa";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;  // -1: the model has none
  // Every id that ends generation (generation_config.json's list when the directory has one).
  std::vector<int64_t> eos_token_ids;
  // attention_windows[layer][query_head]; 0 = unbounded.
  std::vector<std::vector<int64_t>> attention_windows;
  // The windows the family's own fields give (empty for "mswa" configs, whose windows are
  // explicit): differs from attention_windows when a schedule was applied on top.
  std::vector<std::vector<int64_t>> native_windows;
  ArchSpec arch;
  TokenizerSpec tokenizer;
  // Storage dtype of the weights as written ("float32", "float16", "bfloat16"); informational.
  std::string torch_dtype = "float32";

  // Query heads per KV head (GQA group size).
  int64_t gqa_group() const { return num_attention_heads / num_key_value_heads; }
  int64_t window(int64_t layer, int64_t q_head) const { return attention_windows[layer][q_head]; }
  // The window of every query head that reads KV head `kv_head` (equal by validation).
  int64_t kv_window(int64_t layer, int64_t kv_head) const {
    return attention_windows[layer][kv_head * gqa_group()];
  }
  bool is_eos(int64_t id) const;
  int64_t first_eos() const { return eos_token_ids.empty() ? -1 : eos_token_ids.front(); }
  // The RoPE of `layer`: the family's spec, or theta = rope_theta over the whole head.
  RopeSpec rope(int64_t layer) const;
  // True when attention_windows differ from the windows the model was trained with.
  bool windows_overridden() const;
  // True when no head has an unbounded window: memory per sequence is then bounded.
  bool all_windows_finite() const;
  int64_t max_window() const;

  // Checks every invariant the engine relies on. InvalidArgument naming the field otherwise.
  absl::Status Validate() const;
};

// Parses config.json text. Errors name the field: missing, wrong type, out of range, or one of
// Validate()'s. `source` prefixes messages (usually the file path).
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source = "config.json");
// Reads `model_dir`/config.json, and generation_config.json when present (its eos_token_id,
// an id or a list, replaces the config's). When "tokenizer" is absent, a tokenizer.json beside
// it selects the Hugging Face tokenizer (what transformers loads by default), else a
// tokenizer.model selects SentencePiece; neither is an error.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);
// Serializes (model_type "mswa", every field explicit, windows one row per layer). Only for
// configs of the mswa family (arch at its defaults).
std::string ModelConfigToJson(const ModelConfig& config);

}  // namespace mswa
