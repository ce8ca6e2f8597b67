// The OpenAI-compatible request bodies, parsed and checked for shape into the protocol-neutral
// GenerateInput (server/api/generate_request.h), which then validates values and limits exactly
// as it does for gRPC. Every refusal is an InvalidArgument whose message starts with the JSON
// field it is about ("temperature: must be a number", "n: only 1 is supported").
//
// What is refused (400, the field named), rather than silently ignored:
//   - n > 1, best_of > 1, a non-empty suffix or logit_bias, presence/frequency penalties other
//     than 0, tools / tool_choice / functions / function_call / response_format /
//     parallel_tool_calls, tool and function messages, non-text content parts (image_url,
//     input_audio, ...), echo together with logprobs (prompt logprobs are not computed);
//   - unknown top-level fields: a typo ("max_token") would otherwise change nothing and go
//     unnoticed. Accepted and ignored: "user" (an end-user id for the caller's own records).
// null counts as absent for every optional field, as OpenAI's own server treats it.
//
// vLLM's extensions map onto the engine's sampler: top_k (-1 or 0: off), min_p,
// repetition_penalty, ignore_eos; add_special_tokens (completions and /tokenize, default true:
// BOS before a text prompt).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/api/generate_input.h"

namespace mswa {

// POST /v1/completions.
struct CompletionRequest {
  std::string model;  // "" when absent
  // prompt: a string or a list of one string (text, BOS per add_special_tokens), a list of
  // token ids or a list of one list of ids (used as given, no BOS added).
  GenerateInput generate;  // max_tokens defaults to 16, temperature to 1, as OpenAI's do
  bool echo = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Legacy logprobs: the sampled token's logprob and this many alternatives per token; -1: none.
  int64_t logprobs = -1;
};
absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body);

// POST /v1/chat/completions.
struct ChatCompletionRequest {
  std::string model;
  // The conversation, normalized for the chat template: [{"role", "content": string}], the text
  // parts of a list content concatenated.
  nlohmann::ordered_json messages;
  GenerateInput generate;  // no prompt yet; max_tokens from max_completion_tokens / max_tokens
  bool max_tokens_given = false;  // false: up to --max_new_tokens
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;     // per sampled token
  int64_t top_logprobs = 0;  // alternatives per token (needs logprobs)
};
absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(absl::string_view body);

// POST /tokenize: {"prompt" | "content": string, "add_special_tokens"?: bool, "model"?}.
struct TokenizeRequest {
  std::string model;
  std::string text;
  bool add_bos = true;
};
absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(absl::string_view body);

// POST /detokenize: {"tokens": [ids], "model"?}.
struct DetokenizeRequest {
  std::string model;
  std::vector<int32_t> tokens;
};
absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(absl::string_view body);

// POST /v1/score: {"text": string, "add_bos"?: bool, "per_token_logprobs"?: bool, "model"?}.
struct ScoreHttpRequest {
  std::string model;
  std::string text;
  bool add_bos = true;
  bool per_token_logprobs = false;
};
absl::StatusOr<ScoreHttpRequest> ParseScoreRequest(absl::string_view body);

}  // namespace mswa
