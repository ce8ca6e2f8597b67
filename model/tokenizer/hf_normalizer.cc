#include "model/tokenizer/hf_normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/utf8.h"

namespace mswa::hf {
namespace {

// Applies `fn(run, out)` to each maximal run of well-formed UTF-8 in `text`, copying the bytes
// between runs unchanged.
template <typename Fn>
void ForEachValidRun(const std::string& text, Fn fn, std::string* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = pos;
    uint32_t cp;
    while (end < text.size()) {
      const size_t len = DecodeUtf8(text, end, &cp);
      if (len == 0) break;
      end += len;
    }
    if (end > pos) fn(std::string_view(text).substr(pos, end - pos), out);
    if (end < text.size()) out->push_back(text[end++]);
    pos = end;
  }
}

bool IsAscii(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

void UnicodeNormalize(int options, std::string* text) {
  if (IsAscii(*text)) return;  // every normalization form leaves ASCII unchanged
  std::string out;
  out.reserve(text->size());
  ForEachValidRun(
      *text,
      [options](std::string_view run, std::string* out) {
        utf8proc_uint8_t* mapped = nullptr;
        const utf8proc_ssize_t n =
            utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                         static_cast<utf8proc_ssize_t>(run.size()), &mapped,
                         static_cast<utf8proc_option_t>(options));
        if (n >= 0) {
          out->append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
        } else {
          out->append(run);  // only on allocation failure: the run is well-formed
        }
        std::free(mapped);
      },
      &out);
  *text = std::move(out);
}

// Per-character lowercase mapping, as Rust's char::to_lowercase (no context rules): the simple
// mapping, plus U+0130 -> "i\u0307", its one unconditional multi-character lowercase.
void Lowercase(std::string* text) {
  std::string out;
  out.reserve(text->size());
  ForEachValidRun(
      *text,
      [](std::string_view run, std::string* out) {
        for (size_t pos = 0; pos < run.size();) {
          uint32_t cp = 0;
          pos += DecodeUtf8(run, pos, &cp);
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
          } else if (cp == 0x130) {
            out->append("i\xcc\x87");
          } else {
            AppendUtf8(static_cast<uint32_t>(utf8proc_tolower(static_cast<int32_t>(cp))), out);
          }
        }
      },
      &out);
  *text = std::move(out);
}

// Strips Unicode whitespace (White_Space) from the chosen ends.
void StripWhitespace(bool left, bool right, std::string* text) {
  size_t begin = 0;
  size_t end = text->size();
  uint32_t cp = 0;
  while (left && begin < end) {
    const size_t len = DecodeUtf8(*text, begin, &cp);
    if (len == 0 || !IsUnicodeWhitespace(cp)) break;
    begin += len;
  }
  while (right && end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>((*text)[start]) & 0xC0) == 0x80) --start;
    const size_t len = DecodeUtf8(*text, start, &cp);
    if (len != end - start || !IsUnicodeWhitespace(cp)) break;
    end = start;
  }
  *text = text->substr(begin, end - begin);
}

}  // namespace

void Normalize(const std::vector<NormalizerStep>& steps, std::string* text) {
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kReplace:
        ReplaceAll(step.pattern, step.content, text);
        break;
      case NormalizerStep::Kind::kPrepend:
        if (!text->empty()) text->insert(0, step.content);
        break;
      case NormalizerStep::Kind::kUnicode:
        UnicodeNormalize(step.utf8proc_options, text);
        break;
      case NormalizerStep::Kind::kLowercase:
        Lowercase(text);
        break;
      case NormalizerStep::Kind::kStrip:
        StripWhitespace(step.strip_left, step.strip_right, text);
        break;
    }
  }
}

absl::Status ParseNormalizer(const json& obj, const std::string& where,
                             std::vector<NormalizerStep>* steps) {
  if (obj.is_null()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string type, TypeOf(obj, where));
  const std::string here = absl::StrCat(where, " (", type, ")");
  NormalizerStep step;
  if (type == "Sequence") {
    const auto it = obj.find("normalizers");
    if (it == obj.end() || !it->is_array()) {
      return JsonError(here, "\"normalizers\" must be a list");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      RETURN_IF_ERROR(ParseNormalizer((*it)[i], absl::StrCat(where, ".normalizers[", i, "]"),
                                      steps));
    }
    return absl::OkStatus();
  } else if (type == "Replace") {
    step.kind = NormalizerStep::Kind::kReplace;
    ASSIGN_OR_RETURN(step.pattern, ParsePattern(obj, here));
    ASSIGN_OR_RETURN(step.content, ReqString(obj, "content", here));
  } else if (type == "Prepend") {
    step.kind = NormalizerStep::Kind::kPrepend;
    ASSIGN_OR_RETURN(step.content, ReqString(obj, "prepend", here));
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.kind = NormalizerStep::Kind::kUnicode;
    step.utf8proc_options = UTF8PROC_STABLE | (type[2] == 'C' || type[3] == 'C' ? UTF8PROC_COMPOSE
                                                                                : UTF8PROC_DECOMPOSE);
    if (type[2] == 'K') step.utf8proc_options |= UTF8PROC_COMPAT;
  } else if (type == "Lowercase") {
    step.kind = NormalizerStep::Kind::kLowercase;
  } else if (type == "Strip") {
    step.kind = NormalizerStep::Kind::kStrip;
    ASSIGN_OR_RETURN(step.strip_left, OptBool(obj, "strip_left", true, here));
    ASSIGN_OR_RETURN(step.strip_right, OptBool(obj, "strip_right", true, here));
  } else {
    return Unsupported(where, type,
                       "Replace, Prepend, NFC, NFD, NFKC, NFKD, Lowercase, Strip, Sequence");
  }
  steps->push_back(std::move(step));
  return absl::OkStatus();
}

}  // namespace mswa::hf
