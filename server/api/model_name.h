// Requests may name the model they want: the served name (what GetModelInfo and /v1/models
// report) or nothing. Shared by every front end so that the refusal reads the same.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace mswa {

// OK when `requested` is empty or equals `served`; otherwise NotFound
//   model: "<requested, cut to 256 bytes>" is not served here; this server serves "<served>"
// (gRPC answers it as INVALID_ARGUMENT, as it always has; HTTP as 404, as OpenAI does).
absl::Status CheckModelName(const std::string& served, const std::string& requested);

}  // namespace mswa
