// Llama (incl. Llama 3 and SmolLM2) and Mistral: transformers' models/llama and models/mistral.
// RMSNorm w * x / rms, SwiGLU, RoPE over the whole head (rope_scaling: linear or llama3),
// optional biases on every attention projection (attention_bias) and MLP projection (mlp_bias).
// Mistral's sliding_window (null: none) applies to every layer.
#include "model/format/families/family.h"
#include "model/status_macros.h"

namespace mswa {

absl::Status MapLlamaLike(const json& cfg, const std::string& source, ModelConfig& c,
                          bool mistral) {
  RETURN_IF_ERROR(ParseDecoderFields(cfg, source, /*tied_default=*/false, c));
  ASSIGN_OR_RETURN(c.arch.activation, ParseActivation(cfg, source, {"hidden_act"}, Activation::kSilu));
  if (c.arch.activation != Activation::kSilu) {
    return FieldError(source, "hidden_act", "must be \"silu\" for this family");
  }
  ASSIGN_OR_RETURN(bool attention_bias, GetBool(cfg, "attention_bias", source, false));
  c.arch.qkv_bias = c.arch.o_bias = attention_bias;
  ASSIGN_OR_RETURN(c.arch.mlp_bias, GetBool(cfg, "mlp_bias", source, false));
  ASSIGN_OR_RETURN(RopeSpec rope, ParseRope(cfg, source, "full_attention", 10000.0, c.head_dim));
  c.arch.ropes = {rope};
  int64_t window = 0;
  if (mistral) {
    ASSIGN_OR_RETURN(window, SlidingWindow(cfg, source));
  }
  ASSIGN_OR_RETURN(std::vector<bool> sliding,
                   SlidingLayers(cfg, source, c.num_hidden_layers,
                                 [&](int64_t) { return window > 0; }));
  SetLayerWindows(c, sliding, window);
  return absl::OkStatus();
}

absl::Status MapLlama(const json& cfg, const std::string& source, ModelConfig& c) {
  return MapLlamaLike(cfg, source, c, /*mistral=*/false);
}

absl::Status MapMistral(const json& cfg, const std::string& source, ModelConfig& c) {
  return MapLlamaLike(cfg, source, c, /*mistral=*/true);
}

}  // namespace mswa
