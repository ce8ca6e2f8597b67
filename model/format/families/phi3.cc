// Phi-3: transformers' models/phi3. Llama's layer with fused projections split at load
// (self_attn.qkv_proj = [q; k; v], mlp.gate_up_proj = [gate; up]), RoPE over the first
// head_dim * partial_rotary_factor dims, and sliding_window on every layer. longrope / su
// scaling is refused by ParseRope.
#include "model/format/families/family.h"
#include "model/status_macros.h"

namespace mswa {

absl::Status MapPhi3(const json& cfg, const std::string& source, ModelConfig& c) {
  RETURN_IF_ERROR(ParseDecoderFields(cfg, source, /*tied_default=*/false, c));
  ASSIGN_OR_RETURN(c.arch.activation, ParseActivation(cfg, source, {"hidden_act"}, Activation::kSilu));
  c.arch.fused_qkv = true;
  c.arch.fused_gate_up = true;
  ASSIGN_OR_RETURN(RopeSpec rope, ParseRope(cfg, source, "full_attention", 10000.0, c.head_dim));
  c.arch.ropes = {rope};
  ASSIGN_OR_RETURN(int64_t window, SlidingWindow(cfg, source));
  ASSIGN_OR_RETURN(std::vector<bool> sliding,
                   SlidingLayers(cfg, source, c.num_hidden_layers,
                                 [&](int64_t) { return window > 0; }));
  SetLayerWindows(c, sliding, window);
  return absl::OkStatus();
}

}  // namespace mswa
