// Streaming detokenization: token ids in, text out as soon as it is complete UTF-8.
//
// Tokens are raw bytes (Tokenizer::TokenBytes), and one character may span several tokens (an
// emoji as four byte-fallback pieces). The detokenizer holds back only a trailing sequence that
// is incomplete but could still become a valid character; everything else, including bytes that
// can never be valid UTF-8, is released at once, so the output never stalls and never holds more
// than 3 bytes.
//
// Invariant: the concatenation of every Push and the final Flush equals the concatenated
// TokenBytes of all pushed ids, minus its first byte when strips_leading_space() and that byte is
// ' '; that is exactly Tokenizer::Decode of all pushed ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "model/tokenizer/tokenizer.h"

namespace mswa {

// Length of the longest prefix of `bytes` that does not end inside an incomplete UTF-8 sequence
// that the next bytes could still complete (RFC 3629: no overlongs, no surrogates, nothing above
// U+10FFFF). Invalid bytes do not count as incomplete: they belong to the prefix.
//   "ab"                 -> 2
//   "a\xE2\x82"          -> 1   (first two bytes of "€" = E2 82 AC)
//   "a\xE2\x82\xAC"      -> 4
//   "a\xF0\x9F\x98"      -> 1   (three of the four bytes of U+1F600)
//   "a\xE2A"             -> 3   (E2 followed by a non-continuation byte can never be valid)
//   "a\xFF", "a\x80"     -> 2   (invalid lead byte; continuation byte without a lead)
//   "a\xE0\x80"          -> 3   (would be an overlong encoding)
//   "a\xED\xA0"          -> 3   (would be a surrogate)
// O(1): looks at no more than the last 3 bytes.
size_t Utf8CompletePrefixLength(std::string_view bytes);

// One per generated sequence. Not thread-safe: one thread pushes. `tokenizer` must outlive it.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer);

  // Appends the bytes of token `id` (nothing for specials and out-of-range ids) and returns the
  // newly completed text, possibly "".
  std::string Push(int32_t id);
  // Returns the held-back bytes (an incomplete sequence, released as is) and clears them. Pushing
  // may continue afterwards; the leading space is still stripped at most once.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  // Still waiting for the first byte, which is dropped if it is the dummy-prefix space.
  bool strip_leading_space_;
  // Bytes of an incomplete trailing UTF-8 sequence: at most 3.
  std::string pending_;
};

}  // namespace mswa
