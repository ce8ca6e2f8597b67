// RequestLimits::Validate and the per-request checks of server/api/limits.h on arbitrary limits
// and sizes. Checked: Validate accepts exactly the documented ranges and, when it does, the
// receive size fits in an int and is above every single limit; each check passes exactly when the
// size is within its limit (stop strings: also non-empty).
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "server/api/limits.h"

namespace {

// Edge values first: the fuzzer reaches them through the selector byte.
int64_t AnyInt64(FuzzedDataProvider& input) {
  switch (input.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      return 0;
    case 1:
      return std::numeric_limits<int64_t>::max();
    case 2:
      return std::numeric_limits<int64_t>::min();
    case 3:
      return int64_t{1} << 30;
    case 4:
      return (int64_t{1} << 30) + input.ConsumeIntegralInRange<int64_t>(-2, 2);
    default:
      return input.ConsumeIntegral<int64_t>();
  }
}

double AnyDouble(FuzzedDataProvider& input) {
  const uint64_t bits = input.ConsumeIntegral<uint64_t>();
  double value;
  static_assert(sizeof(value) == sizeof(bits));
  __builtin_memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  mswa::RequestLimits limits;
  limits.max_tokenize_bytes = AnyInt64(input);
  limits.max_score_bytes = AnyInt64(input);
  limits.max_prompt_bytes = AnyInt64(input);
  limits.max_prompt_tokens = AnyInt64(input);
  limits.max_stream_chunk_bytes = AnyInt64(input);
  limits.stream_idle_timeout_seconds = AnyDouble(input);

  const int64_t sizes[] = {limits.max_tokenize_bytes, limits.max_score_bytes,
                           limits.max_prompt_bytes, limits.max_prompt_tokens,
                           limits.max_stream_chunk_bytes};
  bool valid = std::isfinite(limits.stream_idle_timeout_seconds) &&
               limits.stream_idle_timeout_seconds >= 0;
  for (int64_t limit : sizes) valid = valid && limit >= 1 && limit <= (int64_t{1} << 30);
  // 4 bytes per prompt token id plus 64 KiB for the other fields must fit in an int.
  valid = valid && 4 * limits.max_prompt_tokens + (64 << 10) <= std::numeric_limits<int>::max();
  if (limits.Validate().ok() != valid) std::abort();
  if (!valid) return 0;

  const int64_t receive = limits.MaxReceiveMessageBytes();
  if (receive > std::numeric_limits<int>::max()) std::abort();
  for (int64_t limit : sizes) {
    if (receive <= limit) std::abort();
  }

  const int64_t n = AnyInt64(input);
  if (mswa::CheckTokenizeText(limits, n).ok() != (n <= limits.max_tokenize_bytes)) std::abort();
  if (mswa::CheckScoreText(limits, n).ok() != (n <= limits.max_score_bytes)) std::abort();
  if (mswa::CheckPromptText(limits, n).ok() != (n <= limits.max_prompt_bytes)) std::abort();
  if (mswa::CheckPromptTokens(limits, n).ok() != (n <= limits.max_prompt_tokens)) std::abort();
  if (mswa::CheckStreamChunk(limits, n).ok() != (n <= limits.max_stream_chunk_bytes)) std::abort();
  if (mswa::CheckStopCount(limits, "stop", n).ok() != (n <= limits.max_stop_strings)) std::abort();
  if (mswa::CheckStopString(limits, "stop", n).ok() != (n != 0 && n <= limits.max_stop_bytes)) {
    std::abort();
  }
  return 0;
}
