#include "model/tokenizer/hf_pre_tokenizer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/utf8.h"

namespace mswa::hf {
namespace {

// The pre-tokenizer regex of GPT-2, which ByteLevel uses when use_regex is true.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Splits `piece` as Hugging Face's NormalizedString::split does: matches and the stretches
// between them, labelled, then grouped by `behavior`; empty results are dropped.
//   "a-b" on "-": Isolated a | - | b; Removed a | b; MergedWithPrevious a- | b;
//   MergedWithNext a | -b; Contiguous merges runs of matches and runs of non-matches.
void SplitPiece(const PreTokenizerStep& step, const Piece& piece, std::vector<Piece>* out) {
  std::vector<Pcre2Regex::Span> matches;
  step.pattern.FindAll(piece.text, &matches);
  struct Part {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Part> parts;
  parts.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const Pcre2Regex::Span& m : matches) {
    if (prev != m.first) parts.push_back({prev, m.first, step.invert});
    parts.push_back({m.first, m.second, !step.invert});
    prev = m.second;
  }
  if (prev != piece.text.size()) parts.push_back({prev, piece.text.size(), step.invert});

  std::vector<Part> grouped;
  grouped.reserve(parts.size());
  bool previous_match = false;
  switch (step.behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& p : parts) {
        if (!p.is_match) grouped.push_back(p);
      }
      break;
    case SplitBehavior::kIsolated:
      grouped = std::move(parts);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !grouped.empty()) {
          grouped.back().end = p.end;
        } else {
          grouped.push_back(p);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !grouped.empty()) {
          grouped.back().begin = it->begin;
        } else {
          grouped.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(grouped.begin(), grouped.end());
      break;
    case SplitBehavior::kContiguous:
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !grouped.empty()) {
          grouped.back().end = p.end;
        } else {
          grouped.push_back(p);
        }
        previous_match = p.is_match;
      }
      break;
  }
  for (const Part& p : grouped) {
    if (p.end > p.begin) {
      out->push_back({piece.text.substr(p.begin, p.end - p.begin), piece.at_start && p.begin == 0});
    }
  }
}

absl::StatusOr<SplitBehavior> ParseBehavior(const json& obj, const std::string& where) {
  ASSIGN_OR_RETURN(const std::string name, ReqString(obj, "behavior", where));
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return JsonError(where, absl::StrCat("\"behavior\" \"", name, "\" is not one of Removed, "
                                       "Isolated, MergedWithPrevious, MergedWithNext, Contiguous"));
}

}  // namespace

void ApplyPreTokenizerStep(const PreTokenizerStep& step, std::vector<Piece>* pieces,
                           Arena* arena) {
  switch (step.kind) {
    case PreTokenizerStep::Kind::kSplit: {
      std::vector<Piece> out;
      out.reserve(pieces->size());
      for (const Piece& piece : *pieces) SplitPiece(step, piece, &out);
      *pieces = std::move(out);
      break;
    }
    case PreTokenizerStep::Kind::kMetaspace:
      for (Piece& piece : *pieces) {
        std::string text;
        text.reserve(piece.text.size() + 3);
        for (const char c : piece.text) {
          if (c == ' ') {
            text += step.replacement;
          } else {
            text.push_back(c);
          }
        }
        const bool starts = text.compare(0, step.replacement.size(), step.replacement) == 0;
        if (!starts && (step.prepend == PrependScheme::kAlways ||
                        (step.prepend == PrependScheme::kFirst && piece.at_start))) {
          text.insert(0, step.replacement);
        }
        piece.text = arena->emplace_back(std::move(text));
      }
      break;
    case PreTokenizerStep::Kind::kPrefixSpace:
      for (Piece& piece : *pieces) {
        if (piece.text.empty() || piece.text[0] != ' ') {
          std::string text(" ");
          text.append(piece.text);
          piece.text = arena->emplace_back(std::move(text));
        }
      }
      break;
  }
}

// Metaspace's prepend_scheme, or the older add_prefix_space flag.
absl::StatusOr<PrependScheme> ParsePrependScheme(const json& obj, const std::string& where) {
  ASSIGN_OR_RETURN(std::optional<std::string> scheme, OptString(obj, "prepend_scheme", where));
  if (!scheme) {
    ASSIGN_OR_RETURN(const bool add, OptBool(obj, "add_prefix_space", true, where));
    return add ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  if (*scheme == "always") return PrependScheme::kAlways;
  if (*scheme == "first") return PrependScheme::kFirst;
  if (*scheme == "never") return PrependScheme::kNever;
  return JsonError(where, absl::StrCat("\"prepend_scheme\" \"", *scheme,
                                       "\" is not one of always, first, never"));
}

absl::Status ParsePreTokenizer(const json& obj, const std::string& where,
                               PreTokenizerConfig* config) {
  if (obj.is_null()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string type, TypeOf(obj, where));
  const std::string here = absl::StrCat(where, " (", type, ")");
  if (config->byte_level) {
    return JsonError(here, "follows a ByteLevel pre-tokenizer; ByteLevel must be the last one");
  }
  PreTokenizerStep step;
  if (type == "Sequence") {
    const auto it = obj.find("pretokenizers");
    if (it == obj.end() || !it->is_array()) {
      return JsonError(here, "\"pretokenizers\" must be a list");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      RETURN_IF_ERROR(ParsePreTokenizer(
          (*it)[i], absl::StrCat(where, ".pretokenizers[", i, "]"), config));
    }
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    ASSIGN_OR_RETURN(step.pattern, ParsePattern(obj, here));
    ASSIGN_OR_RETURN(step.behavior, ParseBehavior(obj, here));
    ASSIGN_OR_RETURN(step.invert, OptBool(obj, "invert", false, here));
    config->steps.push_back(std::move(step));
  } else if (type == "Digits") {
    // Hugging Face splits on char::is_numeric (\p{N}): each digit isolated, or runs of them.
    ASSIGN_OR_RETURN(const bool individual, OptBool(obj, "individual_digits", false, here));
    step.kind = PreTokenizerStep::Kind::kSplit;
    ASSIGN_OR_RETURN(step.pattern, RegexPattern(individual ? R"(\p{N})" : R"(\p{N}+)"));
    step.behavior = SplitBehavior::kIsolated;
    config->steps.push_back(std::move(step));
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    ASSIGN_OR_RETURN(std::optional<std::string> replacement,
                     OptString(obj, "replacement", here));
    step.replacement = replacement.value_or(kMetaspace);
    uint32_t cp;
    if (step.replacement.empty() ||
        DecodeUtf8(step.replacement, 0, &cp) != step.replacement.size()) {
      return JsonError(here, "\"replacement\" must be one character");
    }
    ASSIGN_OR_RETURN(step.prepend, ParsePrependScheme(obj, here));
    ASSIGN_OR_RETURN(const bool split, OptBool(obj, "split", true, here));
    config->adds_prefix = config->adds_prefix || step.prepend != PrependScheme::kNever;
    PreTokenizerStep split_step;
    split_step.kind = PreTokenizerStep::Kind::kSplit;
    split_step.pattern.literal = step.replacement;
    split_step.behavior = SplitBehavior::kMergedWithNext;
    config->steps.push_back(std::move(step));
    if (split) config->steps.push_back(std::move(split_step));
  } else if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(const bool add_prefix_space, OptBool(obj, "add_prefix_space", true, here));
    ASSIGN_OR_RETURN(const bool use_regex, OptBool(obj, "use_regex", true, here));
    if (add_prefix_space) {
      step.kind = PreTokenizerStep::Kind::kPrefixSpace;
      config->steps.push_back(step);
      config->adds_prefix = true;
    }
    if (use_regex) {
      PreTokenizerStep split_step;
      split_step.kind = PreTokenizerStep::Kind::kSplit;
      ASSIGN_OR_RETURN(split_step.pattern, RegexPattern(kGpt2Pattern));
      split_step.behavior = SplitBehavior::kIsolated;
      config->steps.push_back(std::move(split_step));
    }
    // The mapping of bytes to characters is not done: the model works on raw bytes.
    config->byte_level = true;
  } else {
    return Unsupported(where, type, "ByteLevel, Split, Metaspace, Digits, Sequence");
  }
  return absl::OkStatus();
}

}  // namespace mswa::hf
