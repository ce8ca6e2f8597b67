// What a caller hands the engine and what the engine streams back. Plain structs: the gRPC
// service converts protos to and from these, tests use them directly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/runtime/sampler.h"

namespace mswa {

enum class FinishReason {
  kNone,       // still running
  kLength,     // max_tokens generated
  kEos,        // the model produced EOS
  kStop,       // a stop string matched
  kCancelled,  // the caller cancelled (or its deadline passed)
  kAborted,    // the engine shut down, or the request failed (see EngineEvent::error)
};
const char* FinishReasonName(FinishReason reason);

// The most alternatives a request may ask for per sampled token (GenerateOptions::top_logprobs).
inline constexpr int32_t kMaxTopLogprobs = 20;

struct GenerateOptions {
  SamplingParams sampling;
  int32_t max_tokens = 16;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool logprobs = false;      // report each sampled token's logprob
  int32_t top_logprobs = 0;   // and this many alternatives (0..kMaxTopLogprobs)
  // With the engine's prefix caching on: resume after the longest cached prefix of the prompt,
  // and leave this request's blocks for later ones. false: compute everything, cache nothing.
  bool use_prefix_cache = true;
};

struct ScoreOptions {
  bool add_bos = true;             // score the first token given BOS
  bool per_token_logprobs = false;
};

struct ScoreTotals {
  int64_t tokens = 0;   // tokens whose log-likelihood was summed
  int64_t bytes = 0;    // bytes of text received (the whole text once finished)
  int64_t bytes_scored = 0;  // bytes the scored tokens stand for (progress)
  double total_nll = 0;  // nats
  double perplexity() const;     // exp(total_nll / tokens); 1 for no tokens
  double bits_per_byte() const;  // total_nll / ln 2 / bytes; 0 for no bytes
};

struct Timings {
  double queue_seconds = 0;         // arrival -> admitted (KV reserved)
  double first_token_seconds = 0;   // arrival -> first output
  double total_seconds = 0;         // arrival -> finished
};

// One message from the engine to a request's owner. Emitted on the engine thread: the sink must
// not block (queue it, or write to a stream that buffers).
struct EngineEvent {
  int64_t request_id = 0;
  // Generate: text completed by this step (whole UTF-8 characters, stop strings withheld) and
  // the tokens sampled in it.
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<SampleResult> logprobs;  // when asked for; one per token id
  // Score: progress so far (and the per-token logprobs scored in this step, when asked for).
  ScoreTotals score;
  std::vector<float> token_logprobs;
  // Set on the last event only.
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  std::string matched_stop;
  absl::Status error;  // non-OK when the request failed after admission (kAborted)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  Timings timings;
};

using EventSink = std::function<void(EngineEvent)>;

}  // namespace mswa
