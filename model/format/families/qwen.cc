// Qwen2 and Qwen3: transformers' models/qwen2 and models/qwen3. Llama's layer plus
//   Qwen2: biases on q, k and v (not o);
//   Qwen3: per-head RMSNorm (w * x / rms) of q and k before RoPE, biases only with
//          attention_bias.
// Sliding windows only with use_sliding_window: true, and then (the configuration classes' rule,
// not their docstring) on layers i >= max_window_layers; "layer_types" overrides.
#include "model/format/families/family.h"
#include "model/status_macros.h"

namespace mswa {

namespace {

absl::Status MapQwen(const json& cfg, const std::string& source, ModelConfig& c, bool qwen3) {
  RETURN_IF_ERROR(ParseDecoderFields(cfg, source, /*tied_default=*/false, c));
  ASSIGN_OR_RETURN(c.arch.activation, ParseActivation(cfg, source, {"hidden_act"}, Activation::kSilu));
  if (qwen3) {
    c.arch.qk_norm = true;
    ASSIGN_OR_RETURN(bool attention_bias, GetBool(cfg, "attention_bias", source, false));
    c.arch.qkv_bias = c.arch.o_bias = attention_bias;
  } else {
    c.arch.qkv_bias = true;
  }
  ASSIGN_OR_RETURN(RopeSpec rope, ParseRope(cfg, source, "full_attention", 10000.0, c.head_dim));
  c.arch.ropes = {rope};
  ASSIGN_OR_RETURN(bool use_sliding, GetBool(cfg, "use_sliding_window", source, false));
  int64_t window = 0;
  if (use_sliding) {
    ASSIGN_OR_RETURN(window, SlidingWindow(cfg, source));
  }
  ASSIGN_OR_RETURN(int64_t max_window_layers,
                   GetInt(cfg, "max_window_layers", source, false, c.num_hidden_layers));
  ASSIGN_OR_RETURN(std::vector<bool> sliding,
                   SlidingLayers(cfg, source, c.num_hidden_layers, [&](int64_t i) {
                     return window > 0 && i >= max_window_layers;
                   }));
  if (window == 0) {
    // layer_types may name sliding layers while use_sliding_window is off: HF then has no
    // window to apply.
    std::fill(sliding.begin(), sliding.end(), false);
  }
  SetLayerWindows(c, sliding, window);
  return absl::OkStatus();
}

}  // namespace

absl::Status MapQwen2(const json& cfg, const std::string& source, ModelConfig& c) {
  return MapQwen(cfg, source, c, /*qwen3=*/false);
}

absl::Status MapQwen3(const json& cfg, const std::string& source, ModelConfig& c) {
  return MapQwen(cfg, source, c, /*qwen3=*/true);
}

}  // namespace mswa
