// Stop strings over streamed text: finds the first stop string in generated text that arrives
// in pieces, releasing text as early as possible and never releasing any byte of the match.
//
// Rules:
//  - Text is released unless it could still be the start of a stop string: after each Push the
//    longest suffix that is a proper prefix of some stop is held back (at most max stop length
//    - 1 bytes); everything before it is returned.
//  - The match is the occurrence that ENDS first in the whole text, i.e. the one a byte-by-byte
//    check would see complete first; among occurrences ending at the same byte, the longest
//    (earliest start) wins. Stops "ab" and "b" on "xab": "ab" wins, "x" is released. Stops "bcd"
//    and "c" on "abcd": "c" ends first, "ab" is released.
//  - After a match, Push returns the text before the match (the part not yet released), and
//    every later Push and Flush returns "".
// Invariant: released text + matched_stop() == the pushed text up to and including the match;
// without a match, released text + Flush() == all pushed text.
//
// Pieces are expected to be whole UTF-8 characters; if the stops are valid UTF-8 too, every
// released piece is whole characters (a held-back suffix equals the start of a stop, so it
// starts on a character boundary). Matching is byte-wise.
//
// Not thread-safe: one per generated sequence, used by one thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mswa {

class StopMatcher {
 public:
  // An empty list is allowed (Push passes everything through). Empty strings are ignored:
  // rejecting them is the caller's validation.
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `text` and returns what can be released now (possibly ""). O(|text| + h) per stop,
  // h the held-back length, plus O(L^2) per stop for the held suffix, L the longest stop.
  std::string Push(std::string_view text);

  // Returns the held-back text and clears it (call when generation ends without a match).
  // "" after a match. A later Push starts afresh: a stop spanning the flushed point is not seen.
  std::string Flush();

  bool matched() const { return matched_; }
  // The stop string that matched; "" until then.
  const std::string& matched_stop() const { return matched_stop_; }

 private:
  // Length of the longest suffix of pending_ that is a proper prefix of some stop.
  size_t HeldSuffixLength() const;

  std::vector<std::string> stops_;
  size_t max_stop_length_ = 0;
  std::string pending_;  // held back: no complete stop, shorter than max_stop_length_
  bool matched_ = false;
  std::string matched_stop_;
};

}  // namespace mswa
