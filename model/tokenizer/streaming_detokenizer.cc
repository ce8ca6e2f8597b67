#include "model/tokenizer/streaming_detokenizer.h"

#include <algorithm>

namespace mswa {
namespace {

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Total length of the sequence that lead byte `b` starts; 0 when `b` cannot start one
// (a continuation byte, C0/C1 which only start overlongs, F5..FF which exceed U+10FFFF).
int SequenceLength(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Whether `second` may follow `lead`. Narrower than 80..BF exactly where the plain range would
// allow overlongs (E0, F0), surrogates (ED) or code points above U+10FFFF (F4).
bool ValidSecondByte(unsigned char lead, unsigned char second) {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return IsContinuation(second);
  }
}

}  // namespace

size_t Utf8CompletePrefixLength(std::string_view bytes) {
  const size_t n = bytes.size();
  // Walk back over at most 3 trailing continuation bytes to the byte that would lead them. A
  // 4-byte sequence has at most 3 bytes while incomplete, so nothing further back can matter.
  for (size_t k = 1; k <= std::min<size_t>(3, n); ++k) {
    const size_t start = n - k;
    const auto lead = static_cast<unsigned char>(bytes[start]);
    if (IsContinuation(lead)) continue;
    // `lead` is the last non-continuation byte: the tail is incomplete-but-valid only if it
    // starts a longer sequence and every byte so far fits.
    const int length = SequenceLength(lead);
    if (length <= static_cast<int>(k)) return n;
    if (k >= 2 && !ValidSecondByte(lead, static_cast<unsigned char>(bytes[start + 1]))) return n;
    return start;  // Bytes 3 and 4 only need to be continuations, which the walk checked.
  }
  return n;
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer), strip_leading_space_(tokenizer.strips_leading_space()) {}

std::string StreamingDetokenizer::Push(int32_t id) {
  std::string bytes = tokenizer_.TokenBytes(id);
  if (bytes.empty()) return "";
  if (strip_leading_space_) {
    strip_leading_space_ = false;
    if (bytes[0] == ' ') bytes.erase(0, 1);
  }
  pending_ += bytes;
  const size_t complete = Utf8CompletePrefixLength(pending_);
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  return out;
}

std::string StreamingDetokenizer::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace mswa
