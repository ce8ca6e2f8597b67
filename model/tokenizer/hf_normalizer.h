// tokenizer.json normalizers: Replace (String or Regex), Prepend, NFC / NFD / NFKC / NFKD
// (utf8proc), Lowercase, Strip, Sequence. Bytes that are not well-formed UTF-8 pass through
// every one of them unchanged; Unicode normalization and lowercasing apply to the well-formed
// runs between such bytes.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/tokenizer/hf_common.h"

namespace mswa::hf {

// One normalizer (a Sequence is flattened into its steps).
struct NormalizerStep {
  enum class Kind { kReplace, kPrepend, kUnicode, kLowercase, kStrip };
  Kind kind;
  Pattern pattern;              // kReplace
  std::string content;          // kReplace: replacement; kPrepend: prefix
  int utf8proc_options = 0;     // kUnicode
  bool strip_left = false;      // kStrip
  bool strip_right = false;     // kStrip
};

// Appends the steps of tokenizer.json's "normalizer" (null: none). InvalidArgument naming
// `where` and the type for unsupported types.
absl::Status ParseNormalizer(const json& obj, const std::string& where,
                             std::vector<NormalizerStep>* steps);

// Applies `steps` in order.
void Normalize(const std::vector<NormalizerStep>& steps, std::string* text);

}  // namespace mswa::hf
