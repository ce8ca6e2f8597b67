#include "model/format/config.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/format/families/family.h"
#include "model/format/json_fields.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

absl::StatusOr<TokenizerSpec> ParseTokenizer(const json& v, const std::string& source) {
  if (!v.is_object()) return FieldError(source, "tokenizer", "must be an object");
  auto type = v.find("type");
  if (type == v.end() || !type->is_string()) {
    return FieldError(source, "tokenizer.type", "is missing (\"bytes\" or \"sentencepiece\")");
  }
  TokenizerSpec spec;
  const std::string t = type->get<std::string>();
  if (t == "bytes") {
    spec.type = TokenizerSpec::Type::kBytes;
  } else if (t == "sentencepiece") {
    spec.type = TokenizerSpec::Type::kSentencePiece;
    auto file = v.find("model_file");
    if (file != v.end()) {
      if (!file->is_string()) return FieldError(source, "tokenizer.model_file", "must be a string");
      spec.model_file = file->get<std::string>();
    }
  } else {
    return FieldError(source, "tokenizer.type",
                      absl::StrCat("is \"", t, "\"; expected \"bytes\" or \"sentencepiece\""));
  }
  return spec;
}

absl::StatusOr<std::vector<std::vector<int64_t>>> ParseWindows(const json& windows,
                                                              const std::string& source) {
  if (!windows.is_array()) {
    return FieldError(source, "attention_windows",
                      "must be a list (one list of windows per layer)");
  }
  std::vector<std::vector<int64_t>> out;
  for (size_t l = 0; l < windows.size(); ++l) {
    const json& row = windows[l];
    if (!row.is_array()) {
      return FieldError(source, absl::StrCat("attention_windows[", l, "]"),
                        "must be a list of one window per query head");
    }
    std::vector<int64_t> ws;
    for (size_t h = 0; h < row.size(); ++h) {
      if (!row[h].is_number_integer()) {
        return FieldError(source, absl::StrCat("attention_windows[", l, "][", h, "]"),
                          absl::StrCat("must be an integer, got ", row[h].type_name()));
      }
      ws.push_back(row[h].get<int64_t>());
    }
    out.push_back(std::move(ws));
  }
  return out;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool ModelConfig::is_eos(int64_t id) const {
  return std::find(eos_token_ids.begin(), eos_token_ids.end(), id) != eos_token_ids.end();
}

RopeSpec ModelConfig::rope(int64_t layer) const {
  if (arch.ropes.empty()) {
    RopeSpec r;
    r.theta = rope_theta;
    r.rotary_dim = head_dim;
    return r;
  }
  return arch.ropes[arch.layer_rope.empty() ? 0 : arch.layer_rope[layer]];
}

bool ModelConfig::windows_overridden() const {
  return !native_windows.empty() && native_windows != attention_windows;
}

bool ModelConfig::all_windows_finite() const {
  for (const auto& layer : attention_windows) {
    for (int64_t w : layer) {
      if (w == 0) return false;
    }
  }
  return true;
}

int64_t ModelConfig::max_window() const {
  int64_t m = 0;
  for (const auto& layer : attention_windows) {
    for (int64_t w : layer) m = std::max(m, w);
  }
  return m;
}

absl::Status ModelConfig::Validate() const {
  auto positive = [](const char* field, int64_t v,
                     int64_t max = std::numeric_limits<int64_t>::max()) -> absl::Status {
    if (v <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" must be > 0, got ", v));
    }
    if (v > max) {
      return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" must be <= ", max, ", got ", v));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  RETURN_IF_ERROR(positive("num_hidden_layers", num_hidden_layers, kMaxHiddenLayers));
  RETURN_IF_ERROR(positive("num_attention_heads", num_attention_heads, kMaxAttentionHeads));
  RETURN_IF_ERROR(positive("num_key_value_heads", num_key_value_heads));
  RETURN_IF_ERROR(positive("head_dim", head_dim));
  if (num_attention_heads % num_key_value_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"num_attention_heads\" (", num_attention_heads,
        ") must be a multiple of \"num_key_value_heads\" (", num_key_value_heads, ")"));
  }
  if (head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"head_dim\" must be even for rotary embeddings, got ", head_dim));
  }
  if (!(rms_norm_eps > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"rms_norm_eps\" must be > 0, got ", rms_norm_eps));
  }
  if (!(rope_theta > 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"rope_theta\" must be > 1, got ", rope_theta));
  }
  if (bos_token_id < -1 || bos_token_id >= vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"bos_token_id\" must be in [0, vocab_size=", vocab_size, ") or -1, got ", bos_token_id));
  }
  for (int64_t id : eos_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"eos_token_id\" must be in [0, vocab_size=", vocab_size, "), got ", id));
    }
  }
  if (!arch.layer_rope.empty() &&
      static_cast<int64_t>(arch.layer_rope.size()) != num_hidden_layers) {
    return absl::InvalidArgumentError("one RoPE type per layer is required");
  }
  for (int64_t l = 0; l < num_hidden_layers; ++l) {
    const RopeSpec r = rope(l);
    if (r.rotary_dim < 2 || r.rotary_dim > head_dim || r.rotary_dim % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", l, " rotates ", r.rotary_dim, " dims of head_dim ", head_dim,
          "; must be even and at most head_dim"));
    }
  }
  if (static_cast<int64_t>(attention_windows.size()) != num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"attention_windows\" must have one list per layer (num_hidden_layers=",
        num_hidden_layers, "), got ", attention_windows.size()));
  }
  for (int64_t l = 0; l < num_hidden_layers; ++l) {
    const auto& row = attention_windows[l];
    if (static_cast<int64_t>(row.size()) != num_attention_heads) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"attention_windows[", l, "]\" must have one window per query head (",
          num_attention_heads, "), got ", row.size()));
    }
    for (int64_t h = 0; h < num_attention_heads; ++h) {
      if (row[h] < 0) {
        return absl::InvalidArgumentError(absl::StrCat("\"attention_windows[", l, "][", h,
                                                       "]\" must be >= 0 (0 = unbounded), got ",
                                                       row[h]));
      }
      const int64_t first = row[(h / gqa_group()) * gqa_group()];
      if (row[h] != first) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"attention_windows[", l, "]\": query heads ", (h / gqa_group()) * gqa_group(),
            " and ", h, " share KV head ", h / gqa_group(), " but have different windows (",
            first, " vs ", row[h], "); heads that share a KV head must share a window"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": must be a JSON object"));
  }
  auto type_it = root.find("model_type");
  if (type_it == root.end() || !type_it->is_string()) {
    return FieldError(source, "model_type",
                      absl::StrCat("is missing (supported: ", SupportedFamilies(), ")"));
  }
  ModelConfig c;
  c.model_type = type_it->get<std::string>();
  const Family* family = FindFamily(c.model_type);
  if (family == nullptr) {
    return FieldError(source, "model_type",
                      absl::StrCat("is \"", c.model_type, "\"; supported: ", SupportedFamilies()));
  }
  c.arch.family = c.model_type;
  RETURN_IF_ERROR(family->map(root, source, c));

  // Explicit windows (the mswa format, or a schedule applied to a pretrained model).
  auto windows = root.find("attention_windows");
  if (windows != root.end() && !windows->is_null()) {
    ASSIGN_OR_RETURN(c.attention_windows, ParseWindows(*windows, source));
  }

  auto tok = root.find("tokenizer");
  if (tok != root.end() && !tok->is_null()) {
    ASSIGN_OR_RETURN(c.tokenizer, ParseTokenizer(*tok, source));
  } else {
    // Resolved against the directory by LoadModelConfig.
    c.tokenizer.type = TokenizerSpec::Type::kSentencePiece;
  }

  absl::Status valid = c.Validate();
  if (!valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat(source, ": ", valid.message()));
  }
  if (!c.native_windows.empty() && c.native_windows.size() != c.attention_windows.size()) {
    return FieldError(source, "attention_windows", "must have one list per layer");
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat(
        path, ": cannot open (is ", model_dir, " a model directory with a config.json?)"));
  }
  ASSIGN_OR_RETURN(ModelConfig c, ParseModelConfig(*text, path));

  // generation_config.json's EOS (an id or a list) is what generation stops on.
  const std::string gen_path = model_dir + "/generation_config.json";
  if (FileExists(gen_path)) {
    ASSIGN_OR_RETURN(std::string gen_text, ReadFile(gen_path));
    json gen = json::parse(gen_text, nullptr, false);
    if (gen.is_discarded() || !gen.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(gen_path, ": not a JSON object"));
    }
    auto eos = gen.find("eos_token_id");
    if (eos != gen.end() && !eos->is_null()) {
      std::vector<int64_t> ids;
      const json list = eos->is_array() ? *eos : json::array({*eos});
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_number_integer() || list[i].get<int64_t>() < 0 ||
            list[i].get<int64_t>() >= c.vocab_size) {
          return FieldError(gen_path, "eos_token_id",
                            absl::StrCat("must be token ids in [0, ", c.vocab_size, ")"));
        }
        ids.push_back(list[i].get<int64_t>());
      }
      c.eos_token_ids = ids;
    }
  }

  const bool explicit_tokenizer = json::parse(*text, nullptr, false).contains("tokenizer");
  if (!explicit_tokenizer) {
    if (FileExists(model_dir + "/tokenizer.json")) {
      c.tokenizer.type = TokenizerSpec::Type::kHfJson;
      c.tokenizer.model_file = "tokenizer.json";
    } else if (!FileExists(model_dir + "/" + c.tokenizer.model_file)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": no \"tokenizer\" entry and neither tokenizer.json nor tokenizer.model in ",
          model_dir, "; add \"tokenizer\": {\"type\": \"bytes\"} or the model's tokenizer files"));
    }
  }
  return c;
}

std::string ModelConfigToJson(const ModelConfig& c) {
  // Written by hand rather than via json::dump so each layer's windows stay on one line.
  std::ostringstream o;
  o.precision(17);
  o << "{\n"
    << "  \"model_type\": \"mswa\",\n"
    << "  \"vocab_size\": " << c.vocab_size << ",\n"
    << "  \"hidden_size\": " << c.hidden_size << ",\n"
    << "  \"intermediate_size\": " << c.intermediate_size << ",\n"
    << "  \"num_hidden_layers\": " << c.num_hidden_layers << ",\n"
    << "  \"num_attention_heads\": " << c.num_attention_heads << ",\n"
    << "  \"num_key_value_heads\": " << c.num_key_value_heads << ",\n"
    << "  \"head_dim\": " << c.head_dim << ",\n"
    << "  \"rms_norm_eps\": " << json(c.rms_norm_eps).dump() << ",\n"
    << "  \"rope_theta\": " << json(c.rope_theta).dump() << ",\n"
    << "  \"tie_word_embeddings\": " << (c.tie_word_embeddings ? "true" : "false") << ",\n"
    << "  \"bos_token_id\": " << c.bos_token_id << ",\n"
    << "  \"eos_token_id\": " << c.first_eos() << ",\n"
    << "  \"torch_dtype\": " << json(c.torch_dtype).dump() << ",\n";
  if (c.tokenizer.type == TokenizerSpec::Type::kBytes) {
    o << "  \"tokenizer\": {\"type\": \"bytes\"},\n";
  } else {
    o << "  \"tokenizer\": {\"type\": \"sentencepiece\", \"model_file\": "
      << json(c.tokenizer.model_file).dump() << "},\n";
  }
  o << "  \"attention_windows\": [\n";
  for (size_t l = 0; l < c.attention_windows.size(); ++l) {
    o << "    [" << absl::StrJoin(c.attention_windows[l], ", ") << "]"
      << (l + 1 < c.attention_windows.size() ? ",\n" : "\n");
  }
  o << "  ]\n}\n";
  return o.str();
}

}  // namespace mswa
