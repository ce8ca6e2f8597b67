// Shared config.json readers for the family mappers (see family.h).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/format/families/family.h"
#include "model/status_macros.h"

namespace mswa {

absl::Status ParseDecoderFields(const json& cfg, const std::string& source, bool tied_default,
                                ModelConfig& c) {
  ASSIGN_OR_RETURN(c.vocab_size, GetInt(cfg, "vocab_size", source, true));
  ASSIGN_OR_RETURN(c.hidden_size, GetInt(cfg, "hidden_size", source, true));
  ASSIGN_OR_RETURN(c.intermediate_size, GetInt(cfg, "intermediate_size", source, true));
  ASSIGN_OR_RETURN(c.num_hidden_layers, GetInt(cfg, "num_hidden_layers", source, true));
  ASSIGN_OR_RETURN(c.num_attention_heads, GetInt(cfg, "num_attention_heads", source, true));
  ASSIGN_OR_RETURN(c.num_key_value_heads,
                   GetInt(cfg, "num_key_value_heads", source, false, c.num_attention_heads));
  RETURN_IF_ERROR(CheckLayerAndHeadCounts(c, source));
  const int64_t default_head_dim =
      c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  ASSIGN_OR_RETURN(c.head_dim, GetInt(cfg, "head_dim", source, false, default_head_dim));
  ASSIGN_OR_RETURN(c.rms_norm_eps, GetDouble(cfg, "rms_norm_eps", source, false, 1e-6));
  ASSIGN_OR_RETURN(c.rope_theta, GetDouble(cfg, "rope_theta", source, false, 10000.0));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, GetBool(cfg, "tie_word_embeddings", source, tied_default));
  ASSIGN_OR_RETURN(c.bos_token_id, GetInt(cfg, "bos_token_id", source, false, -1));
  c.eos_token_ids.clear();
  if (auto it = cfg.find("eos_token_id"); it != cfg.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_number_integer()) {
        return FieldError(source, absl::StrCat("eos_token_id[", i, "]"), "must be an integer");
      }
      c.eos_token_ids.push_back((*it)[i].get<int64_t>());
    }
  } else {
    ASSIGN_OR_RETURN(int64_t eos, GetInt(cfg, "eos_token_id", source, false, -1));
    if (eos >= 0) c.eos_token_ids.push_back(eos);
  }
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (auto it = cfg.find(key); it != cfg.end() && it->is_string()) {
      c.torch_dtype = it->get<std::string>();
      break;
    }
  }
  // What no family mapper implements.
  if (cfg.contains("quantization_config")) {
    return FieldError(source, "quantization_config",
                      "is set: quantized checkpoints are not supported; use the bf16, f16 or f32 "
                      "weights of this model");
  }
  for (const char* key : {"num_experts", "num_local_experts", "n_routed_experts"}) {
    ASSIGN_OR_RETURN(int64_t experts, GetInt(cfg, key, source, false, 0));
    if (experts > 0) {
      return FieldError(source, key,
                        absl::StrCat("is ", experts, ": mixture-of-experts models are not supported"));
    }
  }
  ASSIGN_OR_RETURN(bool bidirectional, GetBool(cfg, "use_bidirectional_attention", source, false));
  if (bidirectional) {
    return FieldError(source, "use_bidirectional_attention",
                      "is true: only causal decoders are supported");
  }
  return absl::OkStatus();
}

absl::Status CheckLayerAndHeadCounts(const ModelConfig& c, const std::string& source) {
  const struct {
    const char* field;
    int64_t value;
    int64_t max;
  } counts[] = {{"num_hidden_layers", c.num_hidden_layers, kMaxHiddenLayers},
                {"num_attention_heads", c.num_attention_heads, kMaxAttentionHeads},
                {"num_key_value_heads", c.num_key_value_heads, kMaxAttentionHeads}};
  for (const auto& count : counts) {
    if (count.value < 1 || count.value > count.max) {
      return FieldError(source, count.field,
                        absl::StrCat("is ", count.value, "; it must be in [1, ", count.max, "]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Activation> ParseActivation(const json& cfg, const std::string& source,
                                           const std::vector<std::string>& keys,
                                           Activation fallback) {
  for (const std::string& key : keys) {
    ASSIGN_OR_RETURN(std::optional<std::string> name, GetString(cfg, key, source));
    if (!name.has_value()) continue;
    if (*name == "silu" || *name == "swish") return Activation::kSilu;
    if (*name == "gelu_pytorch_tanh" || *name == "gelu_tanh") return Activation::kGeluTanh;
    return FieldError(source, key,
                      absl::StrCat("is \"", *name,
                                   "\"; supported: \"silu\", \"gelu_pytorch_tanh\""));
  }
  return fallback;
}

namespace {

// Reads one rope parameter object (rope_scaling or a rope_parameters entry) into `r`.
absl::Status ParseRopeObject(const json& p, const std::string& source, const std::string& field,
                             bool apply_scaling, RopeSpec& r) {
  if (!p.is_object()) return FieldError(source, field, "must be an object or null");
  ASSIGN_OR_RETURN(r.theta, GetDouble(p, "rope_theta", source, false, r.theta));
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (auto it = p.find(key); it != p.end() && it->is_string()) {
      type = it->get<std::string>();
      break;
    }
  }
  if (type == "default" || !apply_scaling) return absl::OkStatus();
  const std::string where = absl::StrCat(field, ".");
  if (type == "linear") {
    r.scaling = RopeSpec::Scaling::kLinear;
    ASSIGN_OR_RETURN(r.factor, GetDouble(p, "factor", source + " " + field, true, 1.0));
  } else if (type == "llama3") {
    r.scaling = RopeSpec::Scaling::kLlama3;
    const std::string s = source + " " + field;
    ASSIGN_OR_RETURN(r.factor, GetDouble(p, "factor", s, true, 1.0));
    ASSIGN_OR_RETURN(r.low_freq_factor, GetDouble(p, "low_freq_factor", s, true, 1.0));
    ASSIGN_OR_RETURN(r.high_freq_factor, GetDouble(p, "high_freq_factor", s, true, 4.0));
    ASSIGN_OR_RETURN(r.original_max_position,
                     GetDouble(p, "original_max_position_embeddings", s, true, 8192));
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      return FieldError(source, where + "high_freq_factor", "must be > low_freq_factor");
    }
  } else {
    return FieldError(source, where + "rope_type",
                      absl::StrCat("is \"", type,
                                   "\"; supported RoPE types: default, linear, llama3"));
  }
  if (!(r.factor > 0)) return FieldError(source, where + "factor", "must be > 0");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RopeSpec> ParseRope(const json& cfg, const std::string& source,
                                   const std::string& layer_type, double theta_default,
                                   int64_t head_dim, bool apply_scaling) {
  RopeSpec r;
  ASSIGN_OR_RETURN(r.theta, GetDouble(cfg, "rope_theta", source, false, theta_default));
  ASSIGN_OR_RETURN(double partial, GetDouble(cfg, "partial_rotary_factor", source, false, 1.0));
  auto params = cfg.find("rope_parameters");
  if (params != cfg.end() && !params->is_null()) {
    if (!params->is_object()) return FieldError(source, "rope_parameters", "must be an object");
    const bool per_type = params->contains("full_attention") || params->contains("sliding_attention");
    const json* p = &*params;
    std::string field = "rope_parameters";
    if (per_type) {
      auto it = params->find(layer_type);
      if (it == params->end()) {
        return FieldError(source, "rope_parameters",
                          absl::StrCat("has no entry for layer type \"", layer_type, "\""));
      }
      p = &*it;
      field = absl::StrCat("rope_parameters.", layer_type);
    }
    RETURN_IF_ERROR(ParseRopeObject(*p, source, field, apply_scaling, r));
    ASSIGN_OR_RETURN(partial, GetDouble(*p, "partial_rotary_factor", source, false, partial));
  } else if (auto s = cfg.find("rope_scaling"); s != cfg.end() && !s->is_null()) {
    RETURN_IF_ERROR(ParseRopeObject(*s, source, "rope_scaling", apply_scaling, r));
  }
  if (!(r.theta > 1)) return FieldError(source, "rope_theta", absl::StrCat("must be > 1, got ", r.theta));
  if (!(partial > 0 && partial <= 1)) {
    return FieldError(source, "partial_rotary_factor", absl::StrCat("must be in (0, 1], got ", partial));
  }
  r.rotary_dim = static_cast<int64_t>(std::llround(static_cast<double>(head_dim) * partial));
  if (r.rotary_dim % 2 != 0 || r.rotary_dim < 2) {
    return FieldError(source, "partial_rotary_factor",
                      absl::StrCat("gives ", r.rotary_dim, " rotary dims of head_dim ", head_dim,
                                   "; it must be an even number"));
  }
  return r;
}

absl::StatusOr<std::vector<bool>> SlidingLayers(const json& cfg, const std::string& source,
                                                int64_t num_layers,
                                                const std::function<bool(int64_t)>& legacy) {
  std::vector<bool> sliding(std::max<int64_t>(num_layers, 0));
  auto types = cfg.find("layer_types");
  if (types == cfg.end() || types->is_null()) {
    for (int64_t i = 0; i < num_layers; ++i) sliding[i] = legacy(i);
    return sliding;
  }
  if (!types->is_array() || static_cast<int64_t>(types->size()) != num_layers) {
    return FieldError(source, "layer_types",
                      absl::StrCat("must be a list of num_hidden_layers (", num_layers, ") strings"));
  }
  for (int64_t i = 0; i < num_layers; ++i) {
    const json& t = (*types)[i];
    const std::string name = t.is_string() ? t.get<std::string>() : t.dump();
    if (name == "sliding_attention") {
      sliding[i] = true;
    } else if (name != "full_attention") {
      return FieldError(source, absl::StrCat("layer_types[", i, "]"),
                        absl::StrCat("is ", json(name).dump(),
                                     "; supported: \"full_attention\", \"sliding_attention\""));
    }
  }
  return sliding;
}

absl::StatusOr<int64_t> SlidingWindow(const json& cfg, const std::string& source) {
  ASSIGN_OR_RETURN(int64_t w, GetInt(cfg, "sliding_window", source, false, 0));
  if (w < 0) return FieldError(source, "sliding_window", "must be >= 0 or null");
  return w;
}

void SetLayerWindows(ModelConfig& c, const std::vector<bool>& sliding, int64_t window) {
  c.native_windows.clear();
  for (size_t l = 0; l < sliding.size(); ++l) {
    c.native_windows.push_back(std::vector<int64_t>(std::max<int64_t>(c.num_attention_heads, 0),
                                                    sliding[l] ? window : 0));
  }
  c.attention_windows = c.native_windows;
}

}  // namespace mswa
