#include "server/api/score_request.h"

namespace mswa {

ScoreOptions ScoreOptionsFor(bool add_bos, bool per_token_logprobs) {
  ScoreOptions o;
  o.add_bos = add_bos;
  o.per_token_logprobs = per_token_logprobs;
  return o;
}

absl::StatusOr<PreparedScore> PrepareScore(const ScoreInput& input, const Engine& engine,
                                           const RequestLimits& limits) {
  const int64_t bytes = static_cast<int64_t>(input.text.size());
  if (absl::Status s = CheckScoreText(limits, bytes); !s.ok()) return s;
  PreparedScore out;
  out.options = ScoreOptionsFor(input.add_bos, input.per_token_logprobs);
  out.tokens = engine.tokenizer().Encode(input.text);
  out.bytes = bytes;
  return out;
}

}  // namespace mswa
