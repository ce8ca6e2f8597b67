// Byte-level tokenizer: ids 0..255 are the bytes themselves, 256 is BOS, 257 is EOS. Every byte
// string (invalid UTF-8 and NUL bytes included) round-trips: Decode(Encode(s)) == s.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace mswa {

// Stateless; all methods are thread-safe.
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBosId = 256;
  static constexpr int32_t kEosId = 257;
  static constexpr int32_t kVocabSize = 258;

  std::vector<int32_t> Encode(std::string_view text) const override;
  // One byte for ids 0..255; "" for BOS, EOS and out-of-range ids.
  std::string TokenBytes(int32_t id) const override;
  // Concatenated TokenBytes; nothing is stripped.
  std::string Decode(const std::vector<int32_t>& ids) const override;

  int32_t vocab_size() const override { return kVocabSize; }
  int32_t bos_id() const override { return kBosId; }
  int32_t eos_id() const override { return kEosId; }
  bool strips_leading_space() const override { return false; }
  std::string kind() const override { return "bytes"; }
};

}  // namespace mswa
