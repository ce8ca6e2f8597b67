// Errors of the HTTP API in OpenAI's shape, from the absl::Status every module returns:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature",
//              "code": "invalid_argument"}}
// with the HTTP status that OpenAI (and vLLM) clients expect:
//   InvalidArgument, OutOfRange, FailedPrecondition -> 400   Unauthenticated  -> 401
//   NotFound                                        -> 404   ResourceExhausted -> 429 (queue full)
//   Unavailable (loading, draining)                 -> 503   DeadlineExceeded  -> 504
//   anything else                                   -> 500
// "param" is the field the message starts with ("max_tokens: must be ...", "top_p must be ..."),
// null when it names none; "code" is the status's canonical name in lower case
// ("model_not_found" for an unknown model).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"

namespace mswa {

int HttpStatusFor(const absl::Status& status);
// "OK", "INVALID_ARGUMENT", ...: the canonical name (logs and the metrics' code label).
std::string StatusCodeName(absl::StatusCode code);
nlohmann::ordered_json OpenAiError(const absl::Status& status);
// The field a message names: its leading identifier (letters, digits, '_', '.', '[', ']')
// when a ':' or " must" follows it; "" otherwise.
std::string ParamOf(const std::string& message);

// Serializes for the wire: bytes that are not UTF-8 (a model's partial characters, raw token
// bytes) become U+FFFD instead of failing.
std::string DumpJson(const nlohmann::ordered_json& value);

}  // namespace mswa
