// GenerateInput: a generation request as every front end hands it over, before validation
// (server/api/generate_request.h validates it and turns it into an engine request). Plain data,
// no engine headers, so that protocol parsers (and their unit tests) need nothing heavier.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mswa {

struct GenerateInput {
  // The prompt: text (tokenized by PrepareGenerate) or token ids (used as given), never both. Text is
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
  int64_t top_logprobs = 0;  // and this many alternatives, [0, kMaxTopLogprobs of server/request.h]
  bool use_prefix_cache = true;  // false: this request neither reads nor fills the prefix cache
};

}  // namespace mswa
