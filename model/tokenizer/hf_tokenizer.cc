#include "model/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "model/status_macros.h"
#include "model/tokenizer/bpe_model.h"
#include "model/tokenizer/hf_added_tokens.h"
#include "model/tokenizer/hf_common.h"
#include "model/tokenizer/hf_decoder.h"
#include "model/tokenizer/hf_normalizer.h"
#include "model/tokenizer/hf_pre_tokenizer.h"
#include "model/tokenizer/pcre2_regex.h"

namespace mswa {
namespace {

using hf::AddedToken;
using hf::AddedTokenMatcher;
using hf::Alphabet;
using hf::ApplyPreTokenizerStep;
using hf::Arena;
using hf::DecodeToken;
using hf::DecoderConfig;
using hf::JsonError;
using hf::Normalize;
using hf::NormalizerStep;
using hf::OptBool;
using hf::OptInt;
using hf::OptString;
using hf::ParseDecoder;
using hf::ParseNormalizer;
using hf::ParsePreTokenizer;
using hf::Piece;
using hf::PreTokenizerConfig;
using hf::PreTokenizerStep;
using hf::ReqString;
using hf::Segment;
using hf::TypeOf;
using hf::Unsupported;
using hf::json;
using hf::kMetaspace;

// ---- post-processor, tokenizer_config.json ---------------------------------------------------

struct PostProcessorInfo {
  int32_t bos_id = -1;     // the token put before a single sequence
  bool appends_eos = false;
};

absl::Status ParsePostProcessor(const json& obj, const std::string& where,
                                PostProcessorInfo* info) {
  if (obj.is_null()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string type, TypeOf(obj, where));
  const std::string here = absl::StrCat(where, " (", type, ")");
  if (type == "Sequence") {
    const auto it = obj.find("processors");
    if (it == obj.end() || !it->is_array()) {
      return JsonError(here, "\"processors\" must be a list");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      RETURN_IF_ERROR(ParsePostProcessor((*it)[i], absl::StrCat(where, ".processors[", i, "]"),
                                         info));
    }
  } else if (type == "ByteLevel") {
    // Adjusts offsets only.
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    // "cls": ["<s>", 0], "sep": ["</s>", 2]: <s> A </s>.
    const auto cls = obj.find("cls");
    if (cls == obj.end() || !cls->is_array() || cls->size() != 2 ||
        !(*cls)[1].is_number_integer()) {
      return JsonError(here, "\"cls\" must be [token, id]");
    }
    if (info->bos_id < 0) info->bos_id = (*cls)[1].get<int32_t>();
    info->appends_eos = true;
  } else if (type == "TemplateProcessing") {
    const auto single = obj.find("single");
    if (single == obj.end() || !single->is_array()) {
      return JsonError(here, "\"single\" must be a list");
    }
    const auto specials = obj.find("special_tokens");
    bool seen_sequence = false;
    for (const json& item : *single) {
      if (item.is_object() && item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      const auto special = item.is_object() ? item.find("SpecialToken") : item.end();
      if (special == item.end() || !special->is_object()) {
        return JsonError(here, "\"single\" items must be {\"Sequence\": ...} or "
                               "{\"SpecialToken\": ...}");
      }
      ASSIGN_OR_RETURN(const std::string name, ReqString(*special, "id", here));
      if (seen_sequence) {
        info->appends_eos = true;
        continue;
      }
      if (info->bos_id >= 0) continue;
      const json* entry = nullptr;
      if (specials != obj.end() && specials->is_object() && specials->contains(name)) {
        entry = &(*specials)[name];
      }
      if (entry == nullptr || !entry->contains("ids") || !(*entry)["ids"].is_array() ||
          (*entry)["ids"].empty() || !(*entry)["ids"][0].is_number_integer()) {
        return JsonError(here, absl::StrCat("special token \"", name,
                                            "\" has no ids in \"special_tokens\""));
      }
      info->bos_id = (*entry)["ids"][0].get<int32_t>();
    }
  } else {
    return Unsupported(
        where, type,
        "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
  }
  return absl::OkStatus();
}

// A tokenizer_config.json token field: "text", {"content": "text", ...} or null.
absl::StatusOr<std::optional<std::string>> ConfigToken(const json& config, const char* key,
                                                       const std::string& where) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) return OptString(*it, "content", absl::StrCat(where, " \"", key, "\""));
  return JsonError(where, absl::StrCat("\"", key, "\" must be a string or {\"content\": ...}"));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  return buffer.str();
}

}  // namespace

// ---- the tokenizer ---------------------------------------------------------------------------

struct HfTokenizer::Impl {
  std::vector<NormalizerStep> normalizers;
  PreTokenizerConfig pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  // Owns the AddedToken records the matchers point to.
  std::vector<AddedToken> added_tokens;
  absl::flat_hash_map<std::string, int32_t> added_ids;  // content -> id
  AddedTokenMatcher raw_matcher;         // "normalized": false, matched in the raw text
  AddedTokenMatcher normalized_matcher;  // "normalized": true, matched after normalization
  std::unique_ptr<Pcre2Regex> word_char;  // \w, for single_word tokens
  std::vector<std::string> token_bytes;  // [vocab_size]
  std::vector<bool> special;             // [vocab_size]
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  bool appends_eos = false;
  bool strips_leading_space = false;

  int32_t TokenId(std::string_view token) const {
    if (const auto it = added_ids.find(absl::string_view(token.data(), token.size()));
        it != added_ids.end()) {
      return it->second;
    }
    if (pre_tokenizer.byte_level) {
      const std::optional<std::string> bytes = Alphabet().ToBytes(token);
      return bytes ? model->TokenId(*bytes) : -1;
    }
    return model->TokenId(token);
  }

  // Runs everything before the model on `text`: calls on_token(id) for each added token and
  // on_piece(pre_token) for each pre-token, in text order.
  template <typename OnToken, typename OnPiece>
  void PreTokenize(std::string_view text, OnToken on_token, OnPiece on_piece) const {
    std::vector<Segment> segments;
    if (raw_matcher.empty()) {
      segments.push_back({0, text.size(), -1});
    } else {
      raw_matcher.Split(text, word_char.get(), &segments);
    }
    Arena arena;
    std::vector<Segment> sub_segments;
    std::vector<Piece> pieces;
    for (const Segment& segment : segments) {
      if (segment.token >= 0) {
        on_token(segment.token);
        continue;
      }
      const bool at_start = segment.begin == 0;
      std::string_view normalized = text.substr(segment.begin, segment.end - segment.begin);
      if (!normalizers.empty()) {
        std::string s(normalized);
        Normalize(normalizers, &s);
        normalized = arena.emplace_back(std::move(s));
      }
      sub_segments.clear();
      if (normalized_matcher.empty()) {
        sub_segments.push_back({0, normalized.size(), -1});
      } else {
        normalized_matcher.Split(normalized, word_char.get(), &sub_segments);
      }
      for (const Segment& sub : sub_segments) {
        if (sub.token >= 0) {
          on_token(sub.token);
          continue;
        }
        pieces.clear();
        pieces.push_back({normalized.substr(sub.begin, sub.end - sub.begin),
                          at_start && sub.begin == 0});
        for (const PreTokenizerStep& step : pre_tokenizer.steps) {
          ApplyPreTokenizerStep(step, &pieces, &arena);
        }
        for (const Piece& piece : pieces) on_piece(piece.text);
      }
    }
  }
};

HfTokenizer::HfTokenizer(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::Load(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer.json";
  const std::string config_path = model_dir + "/tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer.json not found: ", path));
  }
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  std::string config_text;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    ASSIGN_OR_RETURN(config_text, ReadFile(config_path));
  }
  return FromJson(text, config_text, model_dir);
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromJson(
    std::string_view tokenizer_json, std::string_view tokenizer_config_json,
    const std::string& source) {
  const std::string file = absl::StrCat(source, "/tokenizer.json");
  const std::string config_file = absl::StrCat(source, "/tokenizer_config.json");
  auto impl = std::make_unique<Impl>();

  json root = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return JsonError(file, "is not valid JSON");
  if (!root.is_object()) return JsonError(file, "must be a JSON object");
  const json null_value;
  const auto field = [&](const char* key) -> const json& {
    const auto it = root.find(key);
    return it == root.end() ? null_value : *it;
  };

  // Components around the model.
  RETURN_IF_ERROR(ParseNormalizer(field("normalizer"), file + ": normalizer", &impl->normalizers));
  RETURN_IF_ERROR(
      ParsePreTokenizer(field("pre_tokenizer"), file + ": pre_tokenizer", &impl->pre_tokenizer));
  DecoderConfig decoder;
  bool joined = false;
  RETURN_IF_ERROR(ParseDecoder(field("decoder"), file + ": decoder", &joined, &decoder));
  if (decoder.byte_level != impl->pre_tokenizer.byte_level) {
    return JsonError(file + ":", decoder.byte_level
                               ? "a ByteLevel decoder needs a ByteLevel pre_tokenizer"
                               : "a ByteLevel pre_tokenizer needs a ByteLevel decoder");
  }
  PostProcessorInfo post;
  RETURN_IF_ERROR(ParsePostProcessor(field("post_processor"), file + ": post_processor", &post));

  // The model.
  const std::string where = file + ": model";
  const json& model = field("model");
  if (!model.is_object()) return JsonError(where, "is missing");
  ASSIGN_OR_RETURN(std::optional<std::string> model_type, OptString(model, "type", where));
  if (model_type.value_or(model.contains("merges") ? "BPE" : "") != "BPE") {
    return JsonError(where, absl::StrCat("type \"", model_type.value_or("(none)"),
                                         "\" is not supported (supported: BPE)"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    ASSIGN_OR_RETURN(std::optional<std::string> value, OptString(model, key, where));
    if (value && !value->empty()) {
      return JsonError(where, absl::StrCat("\"", key, "\" \"", *value, "\" is not supported"));
    }
  }
  if (const auto dropout = model.find("dropout"); dropout != model.end() && !dropout->is_null()) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      return JsonError(where, "\"dropout\" is not supported (encoding is deterministic)");
    }
  }
  const auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return JsonError(where, "\"vocab\" is missing (an object of token -> id)");
  }
  absl::flat_hash_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_it->size());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab_it->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 30)) {
      return JsonError(where, absl::StrCat("\"vocab\" id of \"", token,
                                           "\" must be an integer in [0, 2^30)"));
    }
    vocab.emplace(token, id.get<int32_t>());
    max_id = std::max(max_id, id.get<int32_t>());
  }
  const auto id_of = [&vocab](const std::string& token) {
    const auto it = vocab.find(token);
    return it == vocab.end() ? -1 : it->second;
  };

  std::vector<BpeModel::Merge> merges;
  if (const auto merges_it = model.find("merges");
      merges_it != model.end() && !merges_it->is_null()) {
    if (!merges_it->is_array()) return JsonError(where, "\"merges\" must be a list");
    merges.reserve(merges_it->size());
    for (size_t i = 0; i < merges_it->size(); ++i) {
      const json& m = (*merges_it)[i];
      std::string left, right;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          return JsonError(where, absl::StrCat("merges[", i, "] \"", s,
                                               "\" must be two tokens separated by one space"));
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
      } else {
        return JsonError(where, absl::StrCat("merges[", i, "] must be \"a b\" or [\"a\", \"b\"]"));
      }
      const int32_t l = id_of(left), r = id_of(right), result = id_of(left + right);
      if (l < 0 || r < 0 || result < 0) {
        const std::string& missing = l < 0 ? left : r < 0 ? right : left + right;
        return JsonError(where, absl::StrCat("merges[", i, "] (\"", left, "\", \"", right,
                                             "\"): \"", missing, "\" is not in the vocabulary"));
      }
      merges.push_back({l, r, result});
    }
  }

  BpeModel::Options options;
  options.byte_level = impl->pre_tokenizer.byte_level;
  ASSIGN_OR_RETURN(options.byte_fallback, OptBool(model, "byte_fallback", false, where));
  ASSIGN_OR_RETURN(options.fuse_unk, OptBool(model, "fuse_unk", false, where));
  ASSIGN_OR_RETURN(options.ignore_merges, OptBool(model, "ignore_merges", false, where));
  ASSIGN_OR_RETURN(std::optional<std::string> unk_token, OptString(model, "unk_token", where));
  if (unk_token) {
    options.unk_id = id_of(*unk_token);
    if (options.unk_id < 0) {
      return JsonError(where, absl::StrCat("\"unk_token\" \"", *unk_token,
                                           "\" is not in the vocabulary"));
    }
  }

  // Token strings by id, before the vocabulary moves into the model.
  std::vector<std::string> tokens(static_cast<size_t>(max_id + 1));
  for (const auto& [token, id] : vocab) {
    if (tokens[id].empty()) tokens[id] = token;
  }
  if (options.byte_level) {
    // Byte-level keys become the bytes they stand for; a key with a character outside the
    // alphabet can never come out of the byte-level pre-tokenizer and is left out.
    absl::flat_hash_map<std::string, int32_t> byte_vocab;
    byte_vocab.reserve(vocab.size());
    for (const auto& [token, id] : vocab) {
      if (std::optional<std::string> bytes = Alphabet().ToBytes(token)) {
        byte_vocab.emplace(std::move(*bytes), id);
      }
    }
    vocab = std::move(byte_vocab);
  }
  impl->model = std::make_unique<BpeModel>(options, std::move(vocab), merges);

  // Added tokens.
  if (const auto added = root.find("added_tokens"); added != root.end() && !added->is_null()) {
    if (!added->is_array()) return JsonError(file + ":", "\"added_tokens\" must be a list");
    impl->added_tokens.reserve(added->size());
    for (size_t i = 0; i < added->size(); ++i) {
      const json& t = (*added)[i];
      const std::string here = absl::StrCat(file, ": added_tokens[", i, "]");
      if (!t.is_object()) return JsonError(here, "must be an object");
      AddedToken token;
      ASSIGN_OR_RETURN(token.content, ReqString(t, "content", here));
      ASSIGN_OR_RETURN(const int64_t id, OptInt(t, "id", -1, here));
      if (id < 0 || id >= (1 << 30)) return JsonError(here, "\"id\" must be in [0, 2^30)");
      token.id = static_cast<int32_t>(id);
      ASSIGN_OR_RETURN(token.special, OptBool(t, "special", false, here));
      ASSIGN_OR_RETURN(token.lstrip, OptBool(t, "lstrip", false, here));
      ASSIGN_OR_RETURN(token.rstrip, OptBool(t, "rstrip", false, here));
      ASSIGN_OR_RETURN(token.single_word, OptBool(t, "single_word", false, here));
      ASSIGN_OR_RETURN(token.normalized, OptBool(t, "normalized", !token.special, here));
      impl->added_tokens.push_back(std::move(token));
    }
  }
  for (const AddedToken& token : impl->added_tokens) {
    max_id = std::max(max_id, token.id);
    impl->added_ids.emplace(token.content, token.id);
    if (token.normalized) {
      // Matched in normalized text, so the pattern is the normalized content.
      std::string pattern = token.content;
      Normalize(impl->normalizers, &pattern);
      impl->normalized_matcher.Add(pattern, &token);
    } else {
      impl->raw_matcher.Add(token.content, &token);
    }
  }
  if (impl->raw_matcher.needs_word_regex() || impl->normalized_matcher.needs_word_regex()) {
    ASSIGN_OR_RETURN(impl->word_char, Pcre2Regex::Compile(R"(\w)"));
  }

  // Bytes of every token.
  const size_t vocab_size = static_cast<size_t>(max_id + 1);
  tokens.resize(vocab_size);
  impl->special.assign(vocab_size, false);
  for (const AddedToken& token : impl->added_tokens) {
    tokens[token.id] = token.content;
    impl->special[token.id] = token.special;
  }
  impl->token_bytes.resize(vocab_size);
  for (size_t id = 0; id < vocab_size; ++id) {
    if (!impl->special[id] && !tokens[id].empty()) {
      impl->token_bytes[id] = DecodeToken(decoder.per_token, std::move(tokens[id]));
    }
  }

  // Which prefix the encoder adds (and Decode removes).
  bool prepends_mark = impl->pre_tokenizer.adds_prefix;
  for (const NormalizerStep& step : impl->normalizers) {
    if (step.kind == NormalizerStep::Kind::kPrepend &&
        (step.content == kMetaspace || step.content == " ")) {
      prepends_mark = true;
    }
  }
  impl->strips_leading_space = prepends_mark;

  // BOS / EOS.
  impl->bos_id = post.bos_id;
  impl->appends_eos = post.appends_eos;
  if (!tokenizer_config_json.empty()) {
    json config = json::parse(tokenizer_config_json, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded()) return JsonError(config_file, "is not valid JSON");
    if (!config.is_object()) return JsonError(config_file, "must be a JSON object");
    const auto resolve = [&](const char* key) -> absl::StatusOr<int32_t> {
      ASSIGN_OR_RETURN(std::optional<std::string> token, ConfigToken(config, key, config_file));
      if (!token) return -1;
      const int32_t id = impl->TokenId(*token);
      if (id < 0) {
        return JsonError(config_file, absl::StrCat("\"", key, "\" \"", *token,
                                                   "\" is not a token of tokenizer.json"));
      }
      return id;
    };
    ASSIGN_OR_RETURN(const int32_t config_bos, resolve("bos_token"));
    ASSIGN_OR_RETURN(impl->eos_id, resolve("eos_token"));
    if (const auto add_bos = config.find("add_bos_token");
        add_bos != config.end() && add_bos->is_boolean()) {
      if (!add_bos->get<bool>()) {
        impl->bos_id = -1;
      } else if (config_bos >= 0) {
        impl->bos_id = config_bos;
      }
    }
    if (const auto add_eos = config.find("add_eos_token");
        add_eos != config.end() && add_eos->is_boolean()) {
      impl->appends_eos = add_eos->get<bool>();
    }
  }
  if (impl->bos_id >= static_cast<int32_t>(vocab_size)) {
    return JsonError(file + ":", absl::StrCat("post_processor BOS id ", impl->bos_id,
                                        " is outside the vocabulary"));
  }
  return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
}

std::vector<int32_t> HfTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  BpeModel::Cache cache;
  impl_->PreTokenize(
      text, [&ids](int32_t id) { ids.push_back(id); },
      [&](std::string_view piece) { impl_->model->Tokenize(piece, &cache, &ids); });
  return ids;
}

std::vector<std::string> HfTokenizer::PreTokens(std::string_view text) const {
  std::vector<std::string> out;
  impl_->PreTokenize(
      text,
      [&](int32_t id) {
        for (const AddedToken& token : impl_->added_tokens) {
          if (token.id == id) {
            out.push_back(token.content);
            break;
          }
        }
      },
      [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}

std::string HfTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return impl_->token_bytes[id];
}

std::string HfTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (const int32_t id : ids) {
    if (id >= 0 && id < vocab_size()) text += impl_->token_bytes[id];
  }
  if (impl_->strips_leading_space && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

int32_t HfTokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->token_bytes.size());
}
int32_t HfTokenizer::bos_id() const { return impl_->bos_id; }
int32_t HfTokenizer::eos_id() const { return impl_->eos_id; }
bool HfTokenizer::strips_leading_space() const { return impl_->strips_leading_space; }
bool HfTokenizer::appends_eos() const { return impl_->appends_eos; }
int32_t HfTokenizer::TokenId(std::string_view token) const { return impl_->TokenId(token); }

bool HfTokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

std::string HfTokenizer::kind() const {
  const BpeModel::Options& options = impl_->model->options();
  if (options.byte_level) return "tokenizer.json (byte-level BPE)";
  if (options.byte_fallback) return "tokenizer.json (BPE, byte fallback)";
  return "tokenizer.json (BPE)";
}

}  // namespace mswa
