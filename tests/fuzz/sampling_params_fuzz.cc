// SamplingParams::Validate on arbitrary field values (NaN, infinities, negative zero, extremes),
// then a Sampler with those params (validated or not: invalid fields must be treated as off) on
// arbitrary logits. Checked: Validate accepts exactly the documented ranges; Sample never
// crashes, returns a token in [0, vocab), and signals an undefined distribution only as
// documented (token 0, logprob -inf, empty top).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "model/runtime/sampler.h"

namespace {

// Any float bit pattern: NaNs, infinities and denormals included.
float AnyFloat(FuzzedDataProvider& input) {
  const uint32_t bits = input.ConsumeIntegral<uint32_t>();
  float value;
  static_assert(sizeof(value) == sizeof(bits));
  __builtin_memcpy(&value, &bits, sizeof(value));
  return value;
}

// A logit: any float, with finite values kept within +-1e38 (the range over which a sampled
// token's logprob is documented to be finite).
float AnyLogit(FuzzedDataProvider& input) {
  const float value = AnyFloat(input);
  if (std::isfinite(value)) return std::clamp(value, -1e38f, 1e38f);
  return value;
}

bool DocumentedValid(const mswa::SamplingParams& p) {
  return std::isfinite(p.temperature) && p.temperature >= 0 && p.top_k >= 0 && p.top_p > 0 &&
         p.top_p <= 1 && p.min_p >= 0 && p.min_p <= 1 && std::isfinite(p.repetition_penalty) &&
         p.repetition_penalty > 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  mswa::SamplingParams params;
  params.temperature = AnyFloat(input);
  params.top_k = input.ConsumeIntegral<int32_t>();
  params.top_p = AnyFloat(input);
  params.min_p = AnyFloat(input);
  params.repetition_penalty = AnyFloat(input);
  params.seed = input.ConsumeIntegral<uint64_t>();
  if (params.Validate().ok() != DocumentedValid(params)) std::abort();

  std::vector<int32_t> prompt(input.ConsumeIntegralInRange<size_t>(0, 8));
  for (int32_t& id : prompt) id = input.ConsumeIntegralInRange<int32_t>(-2, 40);
  mswa::Sampler sampler(params, prompt);
  for (int step = 0; step < 3 && input.remaining_bytes() > 0; ++step) {
    const int32_t vocab = input.ConsumeIntegralInRange<int32_t>(-1, 32);
    const int32_t top_n = input.ConsumeIntegralInRange<int32_t>(-1, 40);
    std::vector<float> logits(vocab > 0 ? vocab : 0);
    for (float& logit : logits) logit = AnyLogit(input);
    const mswa::SampleResult result = sampler.Sample(logits.data(), vocab, top_n);
    if (vocab <= 0) {
      if (result.token != 0 || !std::isinf(result.logprob) || !result.top.empty()) std::abort();
      continue;
    }
    if (result.token < 0 || result.token >= vocab) std::abort();
    if (std::isnan(result.logprob)) std::abort();
    if (result.logprob == -INFINITY) {
      if (result.token != 0 || !result.top.empty()) std::abort();
    } else {
      const size_t want = static_cast<size_t>(std::min(std::max(top_n, 0), vocab));
      if (result.top.size() != want) std::abort();
      if (result.logprob > 0) std::abort();
    }
  }
  return 0;
}
