// The project's own format: every field explicit, windows per layer and query head in
// "attention_windows" (the MSWA schedule), Llama's layer.
#include "model/format/families/family.h"
#include "model/status_macros.h"

namespace mswa {

absl::Status MapMswa(const json& cfg, const std::string& source, ModelConfig& c) {
  ASSIGN_OR_RETURN(c.vocab_size, GetInt(cfg, "vocab_size", source, true));
  ASSIGN_OR_RETURN(c.hidden_size, GetInt(cfg, "hidden_size", source, true));
  ASSIGN_OR_RETURN(c.intermediate_size, GetInt(cfg, "intermediate_size", source, true));
  ASSIGN_OR_RETURN(c.num_hidden_layers, GetInt(cfg, "num_hidden_layers", source, true));
  ASSIGN_OR_RETURN(c.num_attention_heads, GetInt(cfg, "num_attention_heads", source, true));
  ASSIGN_OR_RETURN(c.num_key_value_heads, GetInt(cfg, "num_key_value_heads", source, true));
  RETURN_IF_ERROR(CheckLayerAndHeadCounts(c, source));
  ASSIGN_OR_RETURN(c.head_dim, GetInt(cfg, "head_dim", source, true));
  ASSIGN_OR_RETURN(c.rms_norm_eps, GetDouble(cfg, "rms_norm_eps", source, true, 1e-6));
  ASSIGN_OR_RETURN(c.rope_theta, GetDouble(cfg, "rope_theta", source, true, 10000.0));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, GetBool(cfg, "tie_word_embeddings", source, false));
  ASSIGN_OR_RETURN(c.bos_token_id, GetInt(cfg, "bos_token_id", source, true));
  ASSIGN_OR_RETURN(int64_t eos, GetInt(cfg, "eos_token_id", source, true));
  c.eos_token_ids.clear();
  if (eos >= 0) c.eos_token_ids.push_back(eos);
  if (auto it = cfg.find("torch_dtype"); it != cfg.end() && it->is_string()) {
    c.torch_dtype = it->get<std::string>();
  }
  if (!cfg.contains("attention_windows") || cfg["attention_windows"].is_null()) {
    return FieldError(source, "attention_windows",
                      "is missing (one list per layer of one window per query head)");
  }
  return absl::OkStatus();
}

}  // namespace mswa
