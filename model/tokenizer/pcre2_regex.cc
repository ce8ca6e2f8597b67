#include "model/tokenizer/pcre2_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/tokenizer/utf8.h"

namespace mswa {
namespace {

// Per-thread match state: match data (one ovector pair: only whole matches are used) and a JIT
// stack larger than PCRE2's 32 KiB default, so long runs of whitespace under `\s+(?!\S)` never
// exhaust it.
class ThreadMatchState {
 public:
  ThreadMatchState()
      : data_(pcre2_match_data_create(1, nullptr)),
        context_(pcre2_match_context_create(nullptr)),
        jit_stack_(pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr)) {
    if (context_ != nullptr && jit_stack_ != nullptr) {
      pcre2_jit_stack_assign(context_, nullptr, jit_stack_);
    }
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack_);
    pcre2_match_context_free(context_);
    pcre2_match_data_free(data_);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;

  pcre2_match_data* data() { return data_; }
  pcre2_match_context* context() { return context_; }

 private:
  pcre2_match_data* data_;
  pcre2_match_context* context_;
  pcre2_jit_stack* jit_stack_;
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pcre2Regex>> Pcre2Regex::Compile(std::string_view pattern) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error,
                                   &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(absl::StrCat("regex \"", std::string(pattern), "\" does not compile: ",
                                                   reinterpret_cast<const char*>(message),
                                                   " at offset ", error_offset));
  }
  std::unique_ptr<Pcre2Regex> regex(new Pcre2Regex());
  regex->code_ = code;
  regex->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return regex;
}

Pcre2Regex::~Pcre2Regex() { pcre2_code_free(code_); }

bool Pcre2Regex::MatchAt(std::string_view text, size_t start, Span* match) const {
  ThreadMatchState& state = MatchState();
  const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                             0, state.data(), state.context());
  if (rc < 0) return false;  // PCRE2_ERROR_NOMATCH, or a limit: both end the search
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data());
  *match = {ovector[0], ovector[1]};
  return true;
}

void Pcre2Regex::FindAll(std::string_view text, std::vector<Span>* out) const {
  size_t start = 0;
  Span match;
  while (start <= text.size() && MatchAt(text, start, &match)) {
    out->push_back(match);
    if (match.second > match.first) {
      start = match.second;
    } else if (match.second < text.size()) {
      start = match.second + Utf8UnitLength(text, match.second);
    } else {
      break;
    }
  }
}

bool Pcre2Regex::Search(std::string_view text) const {
  Span match;
  return MatchAt(text, 0, &match);
}

}  // namespace mswa
