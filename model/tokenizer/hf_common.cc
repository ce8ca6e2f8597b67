#include "model/tokenizer/hf_common.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace mswa::hf {

absl::Status JsonError(const std::string& where, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(where, " ", problem));
}

absl::Status Unsupported(const std::string& where, const std::string& type,
                         const std::string& supported) {
  return JsonError(where, absl::StrCat("type \"", type, "\" is not supported (supported: ",
                                       supported, ")"));
}

absl::StatusOr<std::optional<std::string>> OptString(const json& obj, const char* key,
                                                     const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return JsonError(where, absl::StrCat("\"", key, "\" must be a string"));
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<std::string> ReqString(const json& obj, const char* key, const std::string& where) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, OptString(obj, key, where));
  if (!value) return JsonError(where, absl::StrCat("\"", key, "\" is missing"));
  return *value;
}

absl::StatusOr<bool> OptBool(const json& obj, const char* key, bool fallback,
                             const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return JsonError(where, absl::StrCat("\"", key, "\" must be true/false"));
  return it->get<bool>();
}

absl::StatusOr<int64_t> OptInt(const json& obj, const char* key, int64_t fallback,
                               const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return JsonError(where, absl::StrCat("\"", key, "\" must be an integer"));
  }
  return it->get<int64_t>();
}

absl::StatusOr<std::string> TypeOf(const json& obj, const std::string& where) {
  if (!obj.is_object()) return JsonError(where, "must be an object or null");
  return ReqString(obj, "type", where);
}

void Pattern::FindAll(std::string_view text, std::vector<Pcre2Regex::Span>* out) const {
  if (regex != nullptr) {
    regex->FindAll(text, out);
    return;
  }
  if (literal.empty()) return;
  for (size_t pos = text.find(literal); pos != std::string_view::npos;
       pos = text.find(literal, pos + literal.size())) {
    out->push_back({pos, pos + literal.size()});
  }
}

absl::StatusOr<Pattern> RegexPattern(std::string_view regex) {
  Pattern pattern;
  ASSIGN_OR_RETURN(std::unique_ptr<Pcre2Regex> compiled, Pcre2Regex::Compile(regex));
  pattern.regex = std::move(compiled);
  return pattern;
}

absl::StatusOr<Pattern> ParsePattern(const json& obj, const std::string& where) {
  const auto it = obj.find("pattern");
  if (it == obj.end() || !it->is_object()) {
    return JsonError(where, "\"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
  }
  if (const auto s = it->find("String"); s != it->end() && s->is_string()) {
    Pattern pattern;
    pattern.literal = s->get<std::string>();
    return pattern;
  }
  if (const auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    absl::StatusOr<Pattern> pattern = RegexPattern(r->get<std::string>());
    if (!pattern.ok()) return JsonError(where, std::string(pattern.status().message()));
    return pattern;
  }
  return JsonError(where, "\"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
}

void ReplaceAll(const Pattern& pattern, const std::string& content, std::string* text) {
  std::vector<Pcre2Regex::Span> spans;
  pattern.FindAll(*text, &spans);
  if (spans.empty()) return;
  std::string out;
  out.reserve(text->size());
  size_t prev = 0;
  for (const Pcre2Regex::Span& s : spans) {
    out.append(*text, prev, s.first - prev);
    out += content;
    prev = s.second;
  }
  out.append(*text, prev, std::string::npos);
  *text = std::move(out);
}

}  // namespace mswa::hf
