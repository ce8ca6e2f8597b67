// Tokenizers behind one interface: byte-level (256 byte ids + BOS + EOS), SentencePiece and
// Hugging Face tokenizer.json (BPE).
//
// Tokens map to raw byte strings (TokenBytes), which is what makes streaming detokenization
// exact: the streamed text is the concatenation of the bytes, released only as whole UTF-8
// characters (see StreamingDetokenizer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mswa {

// Which tokenizer a model directory uses (config.json "tokenizer").
struct TokenizerSpec {
  enum class Type { kBytes, kSentencePiece, kHfJson };
  Type type = Type::kBytes;
  // SentencePiece: the .model file; kHfJson: "tokenizer.json". Relative to the model directory.
  std::string model_file = "tokenizer.model";
};

// Immutable after construction; all methods are thread-safe.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids for `text`, without BOS/EOS. Never fails: any byte string has an encoding
  // (SentencePiece models without byte fallback map unknown characters to unk).
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  // The raw bytes token `id` stands for ("" for specials and out-of-range ids). For
  // SentencePiece, "\xe2\x96\x81" (the word-boundary mark) is a space and <0xAB> pieces are bytes.
  virtual std::string TokenBytes(int32_t id) const = 0;
  // The text of `ids` (specials dropped). Equal to concatenated TokenBytes, except that a
  // tokenizer whose encoder adds a leading space (SentencePiece's dummy prefix, a tokenizer.json
  // that prepends "▁") strips that single space.
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // True when Decode strips one leading space (the prefix the encoder adds).
  virtual bool strips_leading_space() const = 0;
  // What kind of tokenizer this is, for people: "bytes", "sentencepiece",
  // "tokenizer.json (byte-level BPE)", "tokenizer.json (BPE, byte fallback)".
  virtual std::string kind() const = 0;
};

// Creates the tokenizer of a model directory. InvalidArgument / NotFound naming the file when a
// SentencePiece model or tokenizer.json is missing or does not load.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const TokenizerSpec& spec,
                                                        const std::string& model_dir);

}  // namespace mswa
