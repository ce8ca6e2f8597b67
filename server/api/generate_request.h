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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/api/limits.h"
#include "server/engine.h"
#include "server/request.h"

namespace mswa {

struct GenerateInput {
  // The prompt: text (tokenized here) or token ids (used as given), never both. Text is
  // tokenized without specials; BOS is prepended when add_bos and the model has one (text and
  // ids alike).
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_token_ids;
  bool add_bos = true;

  // Sampling, in the engine's terms (server/request.h, model/runtime/sampler.h). Each protocol
  // fills in its own defaults (proto3 zeros mean "off"; OpenAI's temperature defaults to 1).
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  std::optional<uint64_t> seed;  // unset: `random_seed` of PrepareGenerate

  int64_t max_tokens = 16;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool logprobs = false;     // each sampled token's logprob
  int64_t top_logprobs = 0;  // and this many alternatives, [0, kMaxTopLogprobs]
};

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
