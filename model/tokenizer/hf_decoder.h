// tokenizer.json decoders, applied to one token at a time to give its bytes (TokenBytes):
// ByteLevel (GPT-2 characters back to bytes), Replace, ByteFallback ("<0xAB>" -> byte 0xAB),
// Metaspace (the mark -> ' '), Strip; Fuse and Sequence structure them. Steps after the tokens
// are joined (after Fuse or ByteLevel) act on the whole text and are not applied per token.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "model/tokenizer/hf_common.h"

namespace mswa::hf {

// GPT-2's reversible byte -> character map: printable Latin-1 bytes stand for themselves, the
// other 68 bytes for U+0100.. in byte order (' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
struct ByteLevelAlphabet {
  ByteLevelAlphabet();
  // The bytes `token` stands for; nullopt when one of its characters is not in the alphabet.
  std::optional<std::string> ToBytes(std::string_view token) const;

  std::array<uint32_t, 256> byte_to_char;
  absl::flat_hash_map<uint32_t, unsigned char> char_to_byte;
};

// The one alphabet (built on first use).
const ByteLevelAlphabet& Alphabet();

struct DecoderStep {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kStrip, kMetaspace };
  Kind kind;
  Pattern pattern;          // kReplace
  std::string content;      // kReplace: replacement; kStrip: the character stripped
  std::string replacement;  // kMetaspace
  int64_t start = 0;        // kStrip
  int64_t stop = 0;         // kStrip
};

struct DecoderConfig {
  // Steps applied to each token on its own (those before the tokens are joined).
  std::vector<DecoderStep> per_token;
  bool byte_level = false;
};

// Appends the per-token steps of tokenizer.json's "decoder" (null: none) to `config`;
// `*joined` becomes true once the tokens are joined. InvalidArgument naming `where` and the type
// for unsupported types.
absl::Status ParseDecoder(const json& obj, const std::string& where, bool* joined,
                          DecoderConfig* config);

// `token` put through the per-token decoder steps.
std::string DecodeToken(const std::vector<DecoderStep>& steps, std::string token);

}  // namespace mswa::hf
