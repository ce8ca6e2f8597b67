// A PCRE2 regular expression for tokenizer patterns (the Split pre-tokenizer, Replace
// normalizers and decoders, the GPT-2 byte-level split).
//
// Compiled with PCRE2_UTF | PCRE2_UCP (\s, \w, \d and the POSIX classes follow Unicode
// properties) | PCRE2_MATCH_INVALID_UTF: the subject may hold bytes that are not well-formed
// UTF-8; such bytes are never part of a match and matching goes on after them. JIT-compiled when
// the library has a JIT for this CPU (about 10x faster), interpreted otherwise.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

struct pcre2_real_code_8;

namespace mswa {

// Immutable after Compile; FindAll may be called from any number of threads at once (match
// state lives in per-thread buffers).
class Pcre2Regex {
 public:
  // A match as [begin, end) byte offsets into the subject.
  using Span = std::pair<size_t, size_t>;

  // InvalidArgument carrying PCRE2's message and the offset in `pattern` when it does not
  // compile.
  static absl::StatusOr<std::unique_ptr<Pcre2Regex>> Compile(std::string_view pattern);
  ~Pcre2Regex();
  Pcre2Regex(const Pcre2Regex&) = delete;
  Pcre2Regex& operator=(const Pcre2Regex&) = delete;

  // Appends the non-overlapping matches in `text`, left to right. After an empty match the
  // search resumes one character further on (as Oniguruma's find_iter, which Hugging Face
  // tokenizers uses), so empty matches are reported but never repeat. If PCRE2 gives up on a
  // match attempt (match or memory limits; never seen with tokenizer patterns), the rest of
  // `text` is reported as unmatched.
  void FindAll(std::string_view text, std::vector<Span>* out) const;

  // True when `text` contains a match.
  bool Search(std::string_view text) const;

  bool jit() const { return jit_; }

 private:
  Pcre2Regex() = default;
  // One match attempt from `start`; false when there is none.
  bool MatchAt(std::string_view text, size_t start, Span* match) const;

  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace mswa
