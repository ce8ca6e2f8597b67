// A unary scoring request as every front end (gRPC Score, HTTP /v1/score) hands it over, and the
// one function that validates and tokenizes it. ScoreStream, which receives its text in pieces,
// shares ScoreOptionsFor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/api/limits.h"
#include "server/engine.h"
#include "server/request.h"

namespace mswa {

struct ScoreInput {
  std::string text;
  bool add_bos = true;              // score the first token given BOS
  bool per_token_logprobs = false;  // report every scored token's logprob
};

struct PreparedScore {
  ScoreOptions options;
  std::vector<int32_t> tokens;  // the text's tokens, without BOS (the engine adds it)
  int64_t bytes = 0;            // bytes of text they stand for
};

ScoreOptions ScoreOptionsFor(bool add_bos, bool per_token_logprobs);

// InvalidArgument "text: ... (--max_score_bytes)" before anything is tokenized when the text is
// too large. Thread-safe.
absl::StatusOr<PreparedScore> PrepareScore(const ScoreInput& input, const Engine& engine,
                                           const RequestLimits& limits);

}  // namespace mswa
