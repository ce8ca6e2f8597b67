#include "server/api/limits.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mswa {
namespace {

// Room for every field besides the largest one: options, sixteen 256-byte stop strings, names.
constexpr int64_t kOtherFieldsBytes = 64 << 10;
// Bytes of one prompt token id on the wire: the varint of any id below 2^28.
constexpr int64_t kBytesPerTokenId = 4;

absl::Status OverLimit(absl::string_view field, int64_t size, absl::string_view unit,
                       int64_t limit, absl::string_view flag, absl::string_view hint = "") {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", size, " ", unit,
                                                 " is more than the limit of ", limit, " ", unit,
                                                 " (--", flag, ")", hint));
}

}  // namespace

absl::Status RequestLimits::Validate() const {
  const std::pair<const char*, int64_t> sizes[] = {
      {"max_tokenize_bytes", max_tokenize_bytes},
      {"max_score_bytes", max_score_bytes},
      {"max_prompt_bytes", max_prompt_bytes},
      {"max_prompt_tokens", max_prompt_tokens},
      {"max_stream_chunk_bytes", max_stream_chunk_bytes},
  };
  for (const auto& [flag, value] : sizes) {
    if (value < 1) return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be >= 1, got ", value));
    // Every limit must leave the receive size below 2 GiB (gRPC takes an int).
    if (value > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be at most 1 GiB, got ", value));
    }
  }
  if (!(stream_idle_timeout_seconds >= 0) || !std::isfinite(stream_idle_timeout_seconds)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--stream_idle_timeout_seconds must be >= 0 (0: never), got ", stream_idle_timeout_seconds));
  }
  if (MaxReceiveMessageBytes() > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        "--max_prompt_tokens: 4 bytes per token id must stay below 2 GiB per message");
  }
  return absl::OkStatus();
}

int64_t RequestLimits::MaxReceiveMessageBytes() const {
  const int64_t largest = std::max({max_tokenize_bytes, max_score_bytes, max_prompt_bytes,
                                    max_stream_chunk_bytes, kBytesPerTokenId * max_prompt_tokens});
  return largest + kOtherFieldsBytes;
}

absl::Status CheckTokenizeText(const RequestLimits& limits, int64_t bytes) {
  if (bytes <= limits.max_tokenize_bytes) return absl::OkStatus();
  return OverLimit("text", bytes, "bytes", limits.max_tokenize_bytes, "max_tokenize_bytes");
}

absl::Status CheckScoreText(const RequestLimits& limits, int64_t bytes) {
  if (bytes <= limits.max_score_bytes) return absl::OkStatus();
  return OverLimit("text", bytes, "bytes", limits.max_score_bytes, "max_score_bytes",
                   "; use ScoreStream for texts of any size");
}

absl::Status CheckPromptText(const RequestLimits& limits, int64_t bytes) {
  if (bytes <= limits.max_prompt_bytes) return absl::OkStatus();
  return OverLimit("prompt", bytes, "bytes", limits.max_prompt_bytes, "max_prompt_bytes");
}

absl::Status CheckPromptTokens(const RequestLimits& limits, int64_t count) {
  if (count <= limits.max_prompt_tokens) return absl::OkStatus();
  return OverLimit("prompt_token_ids", count, "tokens", limits.max_prompt_tokens,
                   "max_prompt_tokens");
}

absl::Status CheckStreamChunk(const RequestLimits& limits, int64_t bytes) {
  if (bytes <= limits.max_stream_chunk_bytes) return absl::OkStatus();
  return OverLimit("chunk", bytes, "bytes", limits.max_stream_chunk_bytes,
                   "max_stream_chunk_bytes", "; send the text in smaller chunks");
}

absl::Status CheckStopCount(const RequestLimits& limits, absl::string_view field, int64_t count) {
  if (count <= limits.max_stop_strings) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", limits.max_stop_strings,
                                                 " stop strings, got ", count));
}

absl::Status CheckStopString(const RequestLimits& limits, absl::string_view field, int64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError(absl::StrCat(field, ": stop strings must not be empty"));
  if (bytes <= limits.max_stop_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": each stop string may have at most ",
                                                 limits.max_stop_bytes, " bytes, got ", bytes));
}

}  // namespace mswa
