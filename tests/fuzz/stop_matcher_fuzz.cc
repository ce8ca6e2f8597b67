// StopMatcher on arbitrary stop strings and pieces, against a byte-by-byte reference:
//  - the match is the occurrence that ends first in the whole text, the longest among those
//    ending at the same byte; released text + matched_stop() == the text up to the match end,
//    and nothing is released afterwards;
//  - without a match, released text + Flush() == all pushed text;
//  - after every Push the held-back text is exactly the longest suffix of the pushed text that
//    is a proper prefix of some stop (text is released as early as possible).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/runtime/stop_matcher.h"

namespace {

// Length of the longest suffix of `text` that is a proper prefix of a non-empty stop.
size_t LongestHeldSuffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const std::string& stop : stops) {
    for (size_t len = std::min(text.size(), stop.empty() ? 0 : stop.size() - 1); len > best;
         --len) {
      if (text.compare(text.size() - len, len, stop, 0, len) == 0) {
        best = len;
        break;
      }
    }
  }
  return best;
}

// The first end position (1-based byte count) at which a non-empty stop completes, and that stop
// (the longest one ending there); end 0 when none does.
struct Match {
  size_t end = 0;
  std::string stop;
};

Match FirstMatch(const std::string& text, const std::vector<std::string>& stops) {
  for (size_t end = 1; end <= text.size(); ++end) {
    Match match;
    for (const std::string& stop : stops) {
      if (stop.empty() || stop.size() > end || stop.size() <= match.stop.size()) continue;
      if (text.compare(end - stop.size(), stop.size(), stop) == 0) {
        match.end = end;
        match.stop = stop;
      }
    }
    if (match.end != 0) return match;
  }
  return {};
}

// A 3-letter alphabet makes overlapping and repeated stops common.
void Narrow(std::string& text) {
  for (char& c : text) c = static_cast<char>('a' + static_cast<uint8_t>(c) % 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const bool narrow = input.ConsumeBool();
  std::vector<std::string> stops(input.ConsumeIntegralInRange<size_t>(0, 4));
  for (std::string& stop : stops) {
    stop = input.ConsumeRandomLengthString(8);
    if (narrow) Narrow(stop);
  }
  std::vector<std::string> pieces;
  while (input.remaining_bytes() > 0 && pieces.size() < 64) {
    pieces.push_back(input.ConsumeRandomLengthString(16));
    if (narrow) Narrow(pieces.back());
  }

  mswa::StopMatcher matcher(stops);
  std::string pushed;
  std::string released;
  for (const std::string& piece : pieces) {
    const bool was_matched = matcher.matched();
    const std::string out = matcher.Push(piece);
    if (was_matched) {
      if (!out.empty()) std::abort();
      continue;
    }
    pushed += piece;
    released += out;
    if (matcher.matched()) continue;
    const size_t held = LongestHeldSuffix(pushed, stops);
    if (released.size() + held != pushed.size()) std::abort();
    if (pushed.compare(0, released.size(), released) != 0) std::abort();
  }

  const Match expected = FirstMatch(pushed, stops);
  if (matcher.matched() != (expected.end != 0)) std::abort();
  if (matcher.matched()) {
    if (matcher.matched_stop() != expected.stop) std::abort();
    if (released + expected.stop != pushed.substr(0, expected.end)) std::abort();
    if (!matcher.Flush().empty()) std::abort();
  } else {
    if (!matcher.matched_stop().empty()) std::abort();
    if (released + matcher.Flush() != pushed) std::abort();
  }
  return 0;
}
