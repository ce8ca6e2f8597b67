// tokenizer.json pre-tokenizers: Split (String or Regex pattern; Isolated, Removed,
// MergedWithPrevious, MergedWithNext, Contiguous; invert), Metaspace, Digits, ByteLevel and
// Sequence, each reduced to a few step kinds:
//   Digits        Split on \p{N} (individual_digits) or \p{N}+, Isolated
//   Metaspace     replace ' ' and prepend the mark, then (split) Split on the mark, MergedWithNext
//   ByteLevel     a prefix space (add_prefix_space), then (use_regex) Split on GPT-2's pattern,
//                 Isolated. Bytes are not mapped to GPT-2's characters: the model keeps raw bytes.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/hf_common.h"

namespace mswa::hf {

// A stretch of text on its way to the model. `at_start`: it begins at offset 0 of the original
// text (Metaspace's prepend_scheme "first" only prepends there).
struct Piece {
  std::string_view text;
  bool at_start;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizerStep {
  enum class Kind { kSplit, kMetaspace, kPrefixSpace };
  Kind kind;
  // kSplit
  Pattern pattern;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // kMetaspace: ' ' -> replacement, then the replacement prepended per the scheme.
  std::string replacement;
  PrependScheme prepend = PrependScheme::kAlways;
};

// Strings created while pre-tokenizing one text; a deque keeps earlier ones in place.
using Arena = std::deque<std::string>;

struct PreTokenizerConfig {
  std::vector<PreTokenizerStep> steps;
  bool byte_level = false;   // a ByteLevel pre-tokenizer (must be the last one)
  bool adds_prefix = false;  // some step prepends a space or the Metaspace mark
};

// Appends the steps of tokenizer.json's "pre_tokenizer" (null: none) to `config`.
// InvalidArgument naming `where` and the type for unsupported types, and for a ByteLevel that
// is not the last pre-tokenizer.
absl::Status ParsePreTokenizer(const json& obj, const std::string& where,
                               PreTokenizerConfig* config);

// Metaspace's "prepend_scheme" ("always", "first", "never"), or its older "add_prefix_space".
absl::StatusOr<PrependScheme> ParsePrependScheme(const json& obj, const std::string& where);

// Applies one step to every piece, in order. New strings (Metaspace, prefix space) live in
// `arena`; the others are views into the pieces' text.
void ApplyPreTokenizerStep(const PreTokenizerStep& step, std::vector<Piece>* pieces,
                           Arena* arena);

}  // namespace mswa::hf
