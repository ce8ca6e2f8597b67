// Shared by the tokenizer.json components (hf_*.cc): typed reads of JSON fields whose errors
// say where they are, and the String / Regex patterns of Split pre-tokenizers, Replace
// normalizers and Replace decoders.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/pcre2_regex.h"
#include "nlohmann/json.hpp"

namespace mswa::hf {

using json = nlohmann::json;

// U+2581, SentencePiece's word-boundary mark.
inline constexpr char kMetaspace[] = "\xe2\x96\x81";

// InvalidArgument "<where> <problem>", e.g. `dir/tokenizer.json: model "vocab" is missing`.
absl::Status JsonError(const std::string& where, const std::string& problem);
// InvalidArgument `<where> type "<type>" is not supported (supported: <supported>)`.
absl::Status Unsupported(const std::string& where, const std::string& type,
                         const std::string& supported);

// `obj[key]` as a string; nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> OptString(const json& obj, const char* key,
                                                     const std::string& where);
// `obj[key]` as a string; an error when absent or null.
absl::StatusOr<std::string> ReqString(const json& obj, const char* key, const std::string& where);
// `obj[key]` as a bool / integer; `fallback` when absent or null.
absl::StatusOr<bool> OptBool(const json& obj, const char* key, bool fallback,
                             const std::string& where);
absl::StatusOr<int64_t> OptInt(const json& obj, const char* key, int64_t fallback,
                               const std::string& where);
// The "type" of a component object.
absl::StatusOr<std::string> TypeOf(const json& obj, const std::string& where);

// A pattern: a literal string, or a PCRE2 regex (shared: steps are copied).
struct Pattern {
  std::string literal;
  std::shared_ptr<const Pcre2Regex> regex;  // null: match `literal`

  // Appends the non-overlapping matches in `text`, left to right. An empty literal never
  // matches.
  void FindAll(std::string_view text, std::vector<Pcre2Regex::Span>* out) const;
};

absl::StatusOr<Pattern> RegexPattern(std::string_view regex);
// obj["pattern"]: {"String": "..."} or {"Regex": "..."}.
absl::StatusOr<Pattern> ParsePattern(const json& obj, const std::string& where);
// Replaces every match of `pattern` in `*text` with `content` (taken literally).
void ReplaceAll(const Pattern& pattern, const std::string& content, std::string* text);

}  // namespace mswa::hf
