// Gemma 3: transformers' models/gemma3 (Gemma3TextConfig, and Gemma3Config for the multimodal
// directories, whose "text_config" holds the decoder). Gemma 2's layer without its default
// soft-capping (applied only when set), plus:
//   per-head (1 + w) RMSNorm of q and k before RoPE;
//   two RoPEs: local (sliding) layers use rope_local_base_freq without scaling, global layers
//   rope_theta with rope_scaling; or, in the newer form, rope_parameters per layer type;
//   layer types from "layer_types", else layer i slides unless (i + 1) is a multiple of
//   sliding_window_pattern (default 6).
// Multimodal directories: the decoder's tensors live under "model.language_model." (current
// transformers) or "language_model.model." (older saves); the vision tower and projector are
// skipped.
#include <cmath>

#include "model/format/families/family.h"
#include "model/format/families/gemma.h"
#include "model/status_macros.h"

namespace mswa {

namespace {

// Gemma3TextConfig's defaults, for the fields a multimodal text_config often leaves out.
json Gemma3TextDefaults() {
  return json{{"vocab_size", 262208},     {"hidden_size", 2304},
              {"intermediate_size", 9216}, {"num_hidden_layers", 26},
              {"num_attention_heads", 8}, {"num_key_value_heads", 4},
              {"head_dim", 256},          {"rms_norm_eps", 1e-6},
              {"rope_theta", 1000000.0},  {"query_pre_attn_scalar", 256},
              {"sliding_window", 4096},   {"rope_local_base_freq", 10000.0},
              {"tie_word_embeddings", true}};
}

absl::Status MapGemma3Text(const json& given, const std::string& source, ModelConfig& c) {
  json cfg = Gemma3TextDefaults();
  for (auto it = given.begin(); it != given.end(); ++it) {
    if (!it.value().is_null() || !cfg.contains(it.key())) cfg[it.key()] = it.value();
  }
  RETURN_IF_ERROR(ParseDecoderFields(cfg, source, /*tied_default=*/true, c));
  RETURN_IF_ERROR(MapGemmaLayer(cfg, source, c));
  ArchSpec& a = c.arch;
  a.qk_norm = true;

  ASSIGN_OR_RETURN(RopeSpec global, ParseRope(cfg, source, "full_attention", 1e6, c.head_dim));
  RopeSpec local;
  if (cfg.contains("rope_parameters") && !cfg["rope_parameters"].is_null()) {
    ASSIGN_OR_RETURN(local, ParseRope(cfg, source, "sliding_attention", 10000.0, c.head_dim));
  } else {
    local = global;
    local.scaling = RopeSpec::Scaling::kNone;
    local.factor = 1.0;
    ASSIGN_OR_RETURN(local.theta, GetDouble(cfg, "rope_local_base_freq", source, false, 10000.0));
  }
  a.ropes = {global, local};

  ASSIGN_OR_RETURN(int64_t window, GetInt(cfg, "sliding_window", source, false, 4096));
  if (window < 0) return FieldError(source, "sliding_window", "must be >= 0");
  int64_t pattern = 6;
  for (const char* key : {"sliding_window_pattern", "_sliding_window_pattern"}) {
    if (cfg.contains(key)) {
      ASSIGN_OR_RETURN(pattern, GetInt(cfg, key, source, false, 6));
      break;
    }
  }
  if (pattern < 1) return FieldError(source, "sliding_window_pattern", "must be >= 1");
  ASSIGN_OR_RETURN(std::vector<bool> sliding,
                   SlidingLayers(cfg, source, c.num_hidden_layers,
                                 [&](int64_t i) { return (i + 1) % pattern != 0; }));
  SetLayerWindows(c, sliding, window);
  a.layer_rope.clear();
  for (bool s : sliding) a.layer_rope.push_back(s ? 1 : 0);
  return absl::OkStatus();
}

}  // namespace

absl::Status MapGemma3TextFamily(const json& cfg, const std::string& source, ModelConfig& c) {
  return MapGemma3Text(cfg, source, c);
}

absl::Status MapGemma3Multimodal(const json& cfg, const std::string& source, ModelConfig& c) {
  auto text = cfg.find("text_config");
  if (text == cfg.end() || !text->is_object()) {
    return FieldError(source, "text_config", "is missing (a multimodal gemma3 config nests the "
                                             "decoder's fields there)");
  }
  json merged = *text;
  // Token ids and the dtype usually sit at the top level of a multimodal config.
  for (const char* key : {"bos_token_id", "eos_token_id", "torch_dtype", "dtype",
                          "tie_word_embeddings"}) {
    if (!merged.contains(key) && cfg.contains(key)) merged[key] = cfg[key];
  }
  RETURN_IF_ERROR(MapGemma3Text(merged, source + " text_config", c));
  c.arch.weight_prefix = "model.language_model.";
  c.arch.alt_weight_prefix = "language_model.model.";
  c.arch.skipped_prefixes = {"model.vision_tower.", "model.multi_modal_projector.",
                             "vision_tower.", "multi_modal_projector."};
  return absl::OkStatus();
}

}  // namespace mswa
