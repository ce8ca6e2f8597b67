// Family mappers: one per Hugging Face model_type (model/format/families/*.cc). A mapper reads
// config.json as that family's configuration class defines it and fills a ModelConfig: sizes,
// the ArchSpec switches, weight names and per-layer windows. Nothing outside this folder knows
// family names.
//
// Anything a config asks for that the forward pass does not implement (a hidden_act we lack,
// an unknown rope type, MoE, quantized weights, bidirectional attention) is refused here,
// naming the field and value, never approximated.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/format/config.h"
#include "model/format/json_fields.h"

namespace mswa {

struct Family {
  std::string_view model_type;
  // Fills `c` from `cfg` (for a multimodal config, the whole file: the mapper unwraps it).
  absl::Status (*map)(const json& cfg, const std::string& source, ModelConfig& c);
};

// nullptr for a model_type no mapper handles.
const Family* FindFamily(std::string_view model_type);
// "\"mswa\", \"llama\", ..." for error messages.
std::string SupportedFamilies();

// ---- pieces the mappers share (families/common.cc) ----

// vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads (default: heads), head_dim (default: hidden / heads), rms_norm_eps,
// tie_word_embeddings (default `tied_default`), bos_token_id, eos_token_id (an id or a list),
// torch_dtype / dtype. Also refuses MoE, quantization and bidirectional attention.
absl::Status ParseDecoderFields(const json& cfg, const std::string& source, bool tied_default,
                                ModelConfig& c);

// num_hidden_layers, num_attention_heads and num_key_value_heads within
// [1, kMaxHiddenLayers] / [1, kMaxAttentionHeads]: called as soon as they are read, before
// anything is sized by them.
absl::Status CheckLayerAndHeadCounts(const ModelConfig& c, const std::string& source);

// The activation named by the first of `keys` present (silu / swish, gelu_pytorch_tanh);
// `fallback` when none is.
absl::StatusOr<Activation> ParseActivation(const json& cfg, const std::string& source,
                                           const std::vector<std::string>& keys,
                                           Activation fallback);

// The RoPE of a layer type from either config form: the older top-level "rope_theta" and
// "rope_scaling", or the newer "rope_parameters" (one object, or one per layer type, keyed by
// `layer_type`). `theta_default` applies when neither names a theta. Rotary dims are head_dim
// times partial_rotary_factor (top level or inside the parameters). rope types: default,
// linear, llama3; any other is refused naming the field.
absl::StatusOr<RopeSpec> ParseRope(const json& cfg, const std::string& source,
                                   const std::string& layer_type, double theta_default,
                                   int64_t head_dim, bool apply_scaling = true);

// Which layers are sliding: from "layer_types" ("sliding_attention" / "full_attention") when
// present, else legacy(i) per layer.
absl::StatusOr<std::vector<bool>> SlidingLayers(const json& cfg, const std::string& source,
                                                int64_t num_layers,
                                                const std::function<bool(int64_t)>& legacy);

// "sliding_window" (null or absent: 0, unbounded).
absl::StatusOr<int64_t> SlidingWindow(const json& cfg, const std::string& source);

// Sets native and attention windows: `window` on sliding layers, 0 (unbounded) elsewhere.
void SetLayerWindows(ModelConfig& c, const std::vector<bool>& sliding, int64_t window);

}  // namespace mswa
