#include "server/api/generate_request.h"

#include <atomic>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mswa {

std::vector<int32_t> EncodeWithBos(const Engine& engine, std::string_view text, bool add_bos) {
  std::vector<int32_t> ids;
  const int64_t bos = engine.config().bos_token_id;
  if (add_bos && bos >= 0) ids.push_back(static_cast<int32_t>(bos));
  const std::vector<int32_t> body = engine.tokenizer().Encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

uint64_t FreshSeed() {
  static std::atomic<uint64_t> counter{0};
  // splitmix64's increment keeps seeds of back-to-back calls far apart.
  return static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
         (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
}

absl::StatusOr<PreparedGenerate> PrepareGenerate(const GenerateInput& in, const Engine& engine,
                                                 const RequestLimits& limits,
                                                 uint64_t random_seed) {
  // Sizes first: nothing is copied or tokenized before they pass.
  if (in.prompt_text.has_value()) {
    if (!in.prompt_token_ids.empty()) {
      return absl::InvalidArgumentError("prompt: give text or token ids, not both");
    }
    if (in.prompt_text->empty()) return absl::InvalidArgumentError("prompt: must not be empty");
    if (absl::Status s = CheckPromptText(limits, static_cast<int64_t>(in.prompt_text->size()));
        !s.ok()) {
      return s;
    }
  } else {
    if (in.prompt_token_ids.empty()) return absl::InvalidArgumentError("prompt: must not be empty");
    if (absl::Status s = CheckPromptTokens(limits, static_cast<int64_t>(in.prompt_token_ids.size()));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckStopCount(limits, "stop", static_cast<int64_t>(in.stop.size())); !s.ok()) {
    return s;
  }
  for (const std::string& stop : in.stop) {
    if (absl::Status s = CheckStopString(limits, "stop", static_cast<int64_t>(stop.size())); !s.ok()) {
      return s;
    }
  }

  PreparedGenerate out;
  GenerateOptions& g = out.options;
  if (in.top_k < 0 || in.top_k > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("top_k: must be >= 0 (0 = off), got ", in.top_k));
  }
  g.sampling.temperature = static_cast<float>(in.temperature);
  g.sampling.top_k = static_cast<int32_t>(in.top_k);
  g.sampling.top_p = static_cast<float>(in.top_p);
  g.sampling.min_p = static_cast<float>(in.min_p);
  g.sampling.repetition_penalty = static_cast<float>(in.repetition_penalty);
  g.sampling.seed = in.seed.has_value() ? *in.seed : random_seed;
  // Its messages start with the field's name ("top_p must be in (0, 1] ...").
  if (absl::Status s = g.sampling.Validate(); !s.ok()) return s;

  const int64_t max_new = engine.options().max_new_tokens;
  if (in.max_tokens < 1 || in.max_tokens > max_new) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: must be in [1, ", max_new,
                                                   "] (--max_new_tokens), got ", in.max_tokens));
  }
  g.max_tokens = static_cast<int32_t>(in.max_tokens);
  if (in.top_logprobs < 0 || in.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs: must be in [0, ", kMaxTopLogprobs,
                                                   "], got ", in.top_logprobs));
  }
  g.top_logprobs = static_cast<int32_t>(in.top_logprobs);
  g.logprobs = in.logprobs || in.top_logprobs > 0;
  g.ignore_eos = in.ignore_eos;
  g.use_prefix_cache = in.use_prefix_cache;
  g.stop = in.stop;

  if (in.prompt_text.has_value()) {
    out.prompt = EncodeWithBos(engine, *in.prompt_text, in.add_bos);
  } else {
    const int64_t vocab = engine.config().vocab_size;
    for (int32_t t : in.prompt_token_ids) {
      if (t < 0 || t >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("prompt: token id ", t, " is outside the vocabulary [0, ", vocab, ")"));
      }
    }
    out.prompt = EncodeWithBos(engine, "", in.add_bos);
    out.prompt.insert(out.prompt.end(), in.prompt_token_ids.begin(), in.prompt_token_ids.end());
  }
  if (out.prompt.empty()) {
    return absl::InvalidArgumentError("prompt: encodes to no tokens and the model has no BOS");
  }
  return out;
}

}  // namespace mswa
