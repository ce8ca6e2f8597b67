// A Hugging Face tokenizer.json (BPE model) behind the Tokenizer interface, encoding as the
// Rust `tokenizers` library does with add_special_tokens=false.
//
// Encode(text) runs the tokenizer.json pipeline:
//   1. added tokens (special or not) whose "normalized" is false are matched in the raw text,
//      leftmost first and longest among those starting there; special-token literals typed in
//      the text are matched too (Hugging Face's default). lstrip / rstrip take the whitespace on
//      that side into the token; single_word matches only between non-word characters.
//   2. each stretch of text between them is normalized, then searched for the added tokens
//      whose "normalized" is true;
//   3. pre-tokenized, then each pre-token is encoded by the BPE model (see bpe_model.h).
// Supported components (anything else is refused at Load, naming it):
//   model          BPE: vocab, merges ("a b" strings or ["a", "b"] pairs), ignore_merges,
//                  byte_fallback, fuse_unk, unk_token. continuing_subword_prefix /
//                  end_of_word_suffix must be null or "", dropout null or 0.
//   normalizer     Replace (String or Regex), Prepend, NFC, NFD, NFKC, NFKD (utf8proc),
//                  Lowercase, Strip, Sequence, null.
//   pre_tokenizer  ByteLevel (last in a Sequence), Split (String or Regex; Isolated, Removed,
//                  MergedWithPrevious, MergedWithNext, Contiguous; invert), Metaspace,
//                  Digits, Sequence, null.
//   post_processor TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence,
//                  null: only read to find which token a single sequence starts with (BOS).
//   decoder        ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence, null.
// Regexes are PCRE2 (UTF + Unicode properties) where Hugging Face uses Oniguruma; the patterns
// tokenizer.json files use mean the same in both. The components live in hf_normalizer.h,
// hf_pre_tokenizer.h, hf_added_tokens.h and hf_decoder.h, the model in bpe_model.h.
// Load parses JSON with nlohmann (Gemma 3's 33 MB tokenizer.json: ~1.5 s, ~250 MB peak).
//
// Text that is not valid UTF-8 (which the Rust library cannot take at all) is encoded
// losslessly where the vocabulary allows it: a byte that is not part of a well-formed character
// passes through normalizers unchanged (Unicode normalization and lowercasing apply to the
// well-formed runs around it), is never matched by a regex (it ends up in a pre-token of its
// own or inside a non-matching stretch) and reaches the model as a symbol of its own:
//   byte-level BPE   the byte's own symbol: concatenated TokenBytes give back the exact input;
//   byte fallback    its <0xAB> token: same;
//   neither          the unknown token (or nothing when the model has none).
//
// TokenBytes(id) is the token's string put through the decoder chain on its own: byte-level
// characters mapped back to bytes, "<0xAB>" to byte 0xAB, Replace and Metaspace rules applied
// (so "▁" becomes ' '). Special added tokens give "". Decoders that act on the joined text (a
// Strip after Fuse, Metaspace's removal of the first space) are not applied per token; instead
// Decode drops one leading ' ' when strips_leading_space(). Byte-fallback runs that are not
// valid UTF-8 stay raw bytes where Hugging Face's decode writes U+FFFD.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/tokenizer.h"

namespace mswa {

// Immutable after Load; all methods are thread-safe.
class HfTokenizer final : public Tokenizer {
 public:
  // Reads `model_dir`/tokenizer.json and, when present, `model_dir`/tokenizer_config.json.
  // Errors (messages name the file and the field or component):
  //   NotFound         tokenizer.json does not exist
  //   InvalidArgument  a file is not valid JSON, a field is missing or malformed, a component
  //                    type is not supported (the type is named), a regex does not compile,
  //                    a merge names a token missing from the vocabulary, or
  //                    tokenizer_config.json names a bos/eos token tokenizer.json lacks
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> Load(const std::string& model_dir);
  // The same from file contents; `tokenizer_config_json` "" means no tokenizer_config.json.
  // `source` prefixes error messages.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromJson(
      std::string_view tokenizer_json, std::string_view tokenizer_config_json,
      const std::string& source);
  ~HfTokenizer() override;
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  // Without BOS/EOS (as Hugging Face's encode with add_special_tokens=false). Never fails.
  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string TokenBytes(int32_t id) const override;
  // Concatenated TokenBytes minus one leading ' ' when strips_leading_space().
  std::string Decode(const std::vector<int32_t>& ids) const override;

  // One more than the largest id of the vocabulary and the added tokens.
  int32_t vocab_size() const override;
  // The token the post_processor puts before a single sequence (Llama 3's
  // "<|begin_of_text|>", Gemma's "<bos>"), -1 when it puts none (Qwen). tokenizer_config.json's
  // add_bos_token overrides: false gives -1, true gives its bos_token.
  int32_t bos_id() const override;
  // tokenizer_config.json's eos_token, -1 when it has none (or there is no such file).
  int32_t eos_id() const override;
  // True when the encoder adds a space-like prefix that the text did not have: a Metaspace
  // pre-tokenizer with prepend_scheme "first"/"always" (or legacy add_prefix_space), a Prepend
  // normalizer of "▁", or a ByteLevel pre-tokenizer with add_prefix_space. Text that already
  // starts with a space then decodes without it, as in Hugging Face (Metaspace, ByteLevel
  // add a prefix only when there is none).
  bool strips_leading_space() const override;
  // "tokenizer.json (byte-level BPE)", "tokenizer.json (BPE, byte fallback)" or
  // "tokenizer.json (BPE)".
  std::string kind() const override;

  // Whether a single sequence is meant to end with EOS (the post_processor appends a special
  // token, or tokenizer_config.json's add_eos_token). Encode never appends it.
  bool appends_eos() const;
  // The id of a token string (vocabulary or added token), -1 when there is none.
  int32_t TokenId(std::string_view token) const;
  // True for added tokens marked special.
  bool IsSpecial(int32_t id) const;
  // What the model receives for `text`, for tests and tools: the pre-tokens in order (raw
  // bytes for byte-level tokenizers, "Hello world" -> "Hello", " world"), with each added token
  // as its content.
  std::vector<std::string> PreTokens(std::string_view text) const;

  struct Impl;

 private:
  explicit HfTokenizer(std::unique_ptr<const Impl> impl);
  std::unique_ptr<const Impl> impl_;
};

}  // namespace mswa
