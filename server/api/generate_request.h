// A generation request as every front end (gRPC Generate, HTTP /v1/completions and
// /v1/chat/completions) hands it over, and the one function that validates it and turns it into
// what Engine::SubmitGenerate takes. Both protocols call PrepareGenerate, so the same request
// gives the same prompt tokens and, when it is bad, the same error text either way.
//
// Field names in error messages are the protocol-neutral ones ("temperature", "top_p", "stop",
// "max_tokens", "top_logprobs", "prompt"): the OpenAI JSON names, and the leaf names of the gRPC
// fields (sampling.temperature, stopping.stop, ...).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/api/generate_input.h"
#include "server/api/limits.h"
#include "server/engine.h"
#include "server/request.h"

namespace mswa {

struct PreparedGenerate {
  std::vector<int32_t> prompt;  // BOS first when it was added
  GenerateOptions options;
};

// Checks sizes before anything is copied or tokenized, then every field; the first problem is
// an InvalidArgument "<field>: ..." (limits name their flag, see server/api/limits.h):
//   prompt: empty, too many bytes or ids, an id outside the vocabulary;
//   temperature >= 0 and finite, top_k >= 0, top_p in (0, 1], min_p in [0, 1],
//   repetition_penalty > 0 and finite;
//   max_tokens in [1, --max_new_tokens];
//   stop: at most max_stop_strings, none empty, each at most max_stop_bytes;
//   top_logprobs in [0, kMaxTopLogprobs].
// Thread-safe (reads the engine's immutable config and tokenizer only).
absl::StatusOr<PreparedGenerate> PrepareGenerate(const GenerateInput& input, const Engine& engine,
                                                 const RequestLimits& limits,
                                                 uint64_t random_seed);

// The one BOS rule: `text` tokenized without specials, after the model's BOS when `add_bos`
// and the model has one. Used by generation, Tokenize and the chat prompt.
std::vector<int32_t> EncodeWithBos(const Engine& engine, std::string_view text, bool add_bos);

// A seed for requests that give none: differs between calls (time and a counter).
uint64_t FreshSeed();

}  // namespace mswa
