#include "model/format/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using json = nlohmann::json;

absl::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": \"", field, "\" ", problem));
}

const char* JsonTypeName(const json& v) { return v.type_name(); }

// Reads an integer field. `required` false returns `fallback` when the key is absent or null.
absl::StatusOr<int64_t> GetInt(const json& obj, const std::string& key, const std::string& source,
                               bool required, int64_t fallback = 0) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return FieldError(source, key, "is missing");
    return fallback;
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  // JSON writers sometimes emit 256.0 for integers: accept exact integral floats.
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  return FieldError(source, key, absl::StrCat("must be an integer, got ", JsonTypeName(*it)));
}

absl::StatusOr<double> GetDouble(const json& obj, const std::string& key,
                                 const std::string& source, bool required, double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return FieldError(source, key, "is missing");
    return fallback;
  }
  if (!it->is_number()) {
    return FieldError(source, key, absl::StrCat("must be a number, got ", JsonTypeName(*it)));
  }
  return it->get<double>();
}

absl::StatusOr<bool> GetBool(const json& obj, const std::string& key, const std::string& source,
                             bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return FieldError(source, key, absl::StrCat("must be true or false, got ", JsonTypeName(*it)));
  }
  return it->get<bool>();
}

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

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

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
  auto positive = [](const char* field, int64_t v) -> absl::Status {
    if (v <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" must be > 0, got ", v));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  RETURN_IF_ERROR(positive("num_hidden_layers", num_hidden_layers));
  RETURN_IF_ERROR(positive("num_attention_heads", num_attention_heads));
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
  for (const auto& [field, id] : {std::pair<const char*, int64_t>{"bos_token_id", bos_token_id},
                                  {"eos_token_id", eos_token_id}}) {
    if (id < -1 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" must be in [0, vocab_size=",
                                                     vocab_size, ") or -1, got ", id));
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
  ModelConfig c;
  auto type_it = root.find("model_type");
  if (type_it == root.end() || !type_it->is_string()) {
    return FieldError(source, "model_type", "is missing (\"mswa\", \"llama\" or \"mistral\")");
  }
  c.model_type = type_it->get<std::string>();
  const bool is_mswa = c.model_type == "mswa";
  if (!is_mswa && c.model_type != "llama" && c.model_type != "mistral") {
    return FieldError(source, "model_type",
                      absl::StrCat("is \"", c.model_type,
                                   "\"; supported: \"mswa\", \"llama\", \"mistral\""));
  }
  ASSIGN_OR_RETURN(c.vocab_size, GetInt(root, "vocab_size", source, true));
  ASSIGN_OR_RETURN(c.hidden_size, GetInt(root, "hidden_size", source, true));
  ASSIGN_OR_RETURN(c.intermediate_size, GetInt(root, "intermediate_size", source, true));
  ASSIGN_OR_RETURN(c.num_hidden_layers, GetInt(root, "num_hidden_layers", source, true));
  ASSIGN_OR_RETURN(c.num_attention_heads, GetInt(root, "num_attention_heads", source, true));
  ASSIGN_OR_RETURN(c.num_key_value_heads,
                   GetInt(root, "num_key_value_heads", source, is_mswa, c.num_attention_heads));
  const int64_t default_head_dim =
      c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  ASSIGN_OR_RETURN(c.head_dim, GetInt(root, "head_dim", source, is_mswa, default_head_dim));
  ASSIGN_OR_RETURN(c.rms_norm_eps, GetDouble(root, "rms_norm_eps", source, is_mswa, 1e-6));
  ASSIGN_OR_RETURN(c.rope_theta, GetDouble(root, "rope_theta", source, is_mswa, 10000.0));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, GetBool(root, "tie_word_embeddings", source, false));
  ASSIGN_OR_RETURN(c.bos_token_id, GetInt(root, "bos_token_id", source, is_mswa, -1));
  ASSIGN_OR_RETURN(c.eos_token_id, GetInt(root, "eos_token_id", source, is_mswa, -1));
  if (auto it = root.find("torch_dtype"); it != root.end() && it->is_string()) {
    c.torch_dtype = it->get<std::string>();
  }

  auto windows = root.find("attention_windows");
  if (windows != root.end() && !windows->is_null()) {
    if (!windows->is_array()) {
      return FieldError(source, "attention_windows",
                        "must be a list (one list of windows per layer)");
    }
    for (size_t l = 0; l < windows->size(); ++l) {
      const json& row = (*windows)[l];
      if (!row.is_array()) {
        return FieldError(source, absl::StrCat("attention_windows[", l, "]"),
                          "must be a list of one window per query head");
      }
      std::vector<int64_t> ws;
      for (size_t h = 0; h < row.size(); ++h) {
        if (!row[h].is_number_integer()) {
          return FieldError(source, absl::StrCat("attention_windows[", l, "][", h, "]"),
                            absl::StrCat("must be an integer, got ", JsonTypeName(row[h])));
        }
        ws.push_back(row[h].get<int64_t>());
      }
      c.attention_windows.push_back(std::move(ws));
    }
  } else if (is_mswa) {
    return FieldError(source, "attention_windows",
                      "is missing (one list per layer of one window per query head)");
  } else {
    ASSIGN_OR_RETURN(int64_t sliding, GetInt(root, "sliding_window", source, false, 0));
    if (sliding < 0) return FieldError(source, "sliding_window", "must be >= 0 or null");
    c.attention_windows.assign(std::max<int64_t>(c.num_hidden_layers, 0),
                               std::vector<int64_t>(std::max<int64_t>(c.num_attention_heads, 0),
                                                    sliding));
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
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        path, ": cannot open (is ", model_dir, " a model directory with a config.json?)"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(ModelConfig c, ParseModelConfig(ss.str(), path));
  const bool explicit_tokenizer =
      json::parse(ss.str(), nullptr, false).contains("tokenizer");
  if (!explicit_tokenizer && !FileExists(model_dir + "/" + c.tokenizer.model_file)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no \"tokenizer\" entry and no tokenizer.model in ", model_dir,
        "; add \"tokenizer\": {\"type\": \"bytes\"} or a SentencePiece tokenizer.model"));
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
    << "  \"eos_token_id\": " << c.eos_token_id << ",\n"
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
