// Gemma 2: transformers' models/gemma2. Against Llama:
//   RMSNorm by (1 + w); four norms per layer (input_layernorm, post_attention_layernorm on the
//   attention output, pre_feedforward_layernorm, post_feedforward_layernorm on the MLP output);
//   embedding times sqrt(hidden_size) rounded to the weights' type; GeGLU with the tanh GELU
//   (hidden_activation); q.k scaled by query_pre_attn_scalar^-0.5; attention logits and final
//   logits soft-capped (tanh(x / cap) * cap); tied embeddings by default.
// Layers alternate, sliding first: from "layer_types", else layer i slides when i is even.
#include "model/format/families/gemma.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "model/format/families/family.h"
#include "model/status_macros.h"

namespace mswa {

double GemmaEmbedScale(int64_t hidden_size, const std::string& torch_dtype) {
  const float f = static_cast<float>(std::sqrt(static_cast<double>(hidden_size)));
  if (torch_dtype == "bfloat16") {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;  // round to nearest even
    float r;
    std::memcpy(&r, &bits, 4);
    return r;
  }
  if (torch_dtype == "float16") return static_cast<float>(static_cast<_Float16>(f));
  return f;
}

absl::Status MapGemmaLayer(const json& cfg, const std::string& source, ModelConfig& c) {
  ArchSpec& a = c.arch;
  a.norm_plus_one = true;
  a.sandwich_norms = true;
  a.sandwich_names = true;
  a.embed_scale = GemmaEmbedScale(c.hidden_size, c.torch_dtype);
  ASSIGN_OR_RETURN(a.activation, ParseActivation(cfg, source, {"hidden_activation", "hidden_act"},
                                                 Activation::kGeluTanh));
  ASSIGN_OR_RETURN(double scalar, GetDouble(cfg, "query_pre_attn_scalar", source, false, 256));
  if (!(scalar > 0)) return FieldError(source, "query_pre_attn_scalar", "must be > 0");
  a.attn_scale = 1.0 / std::sqrt(scalar);
  ASSIGN_OR_RETURN(a.attn_softcap, GetDouble(cfg, "attn_logit_softcapping", source, false, 0));
  ASSIGN_OR_RETURN(a.final_softcap, GetDouble(cfg, "final_logit_softcapping", source, false, 0));
  return absl::OkStatus();
}

absl::Status MapGemma2(const json& cfg, const std::string& source, ModelConfig& c) {
  RETURN_IF_ERROR(ParseDecoderFields(cfg, source, /*tied_default=*/true, c));
  RETURN_IF_ERROR(MapGemmaLayer(cfg, source, c));
  ArchSpec& a = c.arch;
  ASSIGN_OR_RETURN(RopeSpec rope, ParseRope(cfg, source, "full_attention", 10000.0, c.head_dim));
  a.ropes = {rope};
  ASSIGN_OR_RETURN(int64_t window, GetInt(cfg, "sliding_window", source, false, 4096));
  if (window < 0) return FieldError(source, "sliding_window", "must be >= 0");
  ASSIGN_OR_RETURN(std::vector<bool> sliding,
                   SlidingLayers(cfg, source, c.num_hidden_layers,
                                 [](int64_t i) { return (i + 1) % 2 != 0; }));
  SetLayerWindows(c, sliding, window);
  return absl::OkStatus();
}

}  // namespace mswa
