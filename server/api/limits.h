// Input limits that every front end applies before a request reaches the engine: the sizes a
// single request may have, so that no client can make the server tokenize, copy or hold an
// unbounded amount of data. Protocol-neutral: the checks take sizes and return absl::Status
// (InvalidArgument) whose message names the field, the limit, its value and the flag that sets it,
// e.g. "text: 8388609 bytes is more than the limit of 8388608 bytes (--max_score_bytes)". The
// gRPC service converts them with ToGrpcStatus; an HTTP front end can map them to 400.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mswa {

struct RequestLimits {
  int64_t max_tokenize_bytes = int64_t{1} << 20;      // Tokenize text
  int64_t max_score_bytes = int64_t{8} << 20;         // unary Score text
  int64_t max_prompt_bytes = int64_t{1} << 20;        // Generate prompt text
  int64_t max_prompt_tokens = int64_t{1} << 20;       // Generate prompt_token_ids
  int64_t max_stream_chunk_bytes = int64_t{1} << 20;  // one ScoreStream chunk
  // A ScoreStream whose client sends nothing (or reads nothing) for this long is ended and its KV
  // memory freed. 0: never.
  double stream_idle_timeout_seconds = 60;
  // Fixed (no flag): stop strings per Generate request and bytes per stop string.
  int32_t max_stop_strings = 16;
  int32_t max_stop_bytes = 256;

  // InvalidArgument naming the flag when a limit is < 1 (the idle timeout < 0 or not finite), or
  // when the receive size below would not fit in an int.
  absl::Status Validate() const;

  // The largest message the transport should accept: just above the largest single input any
  // limit allows (4 bytes per prompt token id, the varint size of any id below 2^28), plus room
  // for the other fields. A larger message is refused by the transport itself.
  int64_t MaxReceiveMessageBytes() const;
};

// Each check: OK, or InvalidArgument "<field>: <size> <unit> is more than the limit of <limit>
// <unit> (--<flag>)" (plus a hint where there is one).
absl::Status CheckTokenizeText(const RequestLimits& limits, int64_t bytes);
absl::Status CheckScoreText(const RequestLimits& limits, int64_t bytes);
absl::Status CheckPromptText(const RequestLimits& limits, int64_t bytes);
absl::Status CheckPromptTokens(const RequestLimits& limits, int64_t count);
absl::Status CheckStreamChunk(const RequestLimits& limits, int64_t bytes);
// Stop strings: at most max_stop_strings, none empty, each at most max_stop_bytes. `field` names
// them in the message ("stopping.stop" in gRPC).
absl::Status CheckStopCount(const RequestLimits& limits, absl::string_view field, int64_t count);
absl::Status CheckStopString(const RequestLimits& limits, absl::string_view field, int64_t bytes);

}  // namespace mswa
