// SentencePiece tokenizer: a .model file as written by spm_train, behind the Tokenizer interface.
//
// TokenBytes by piece kind:
//   normal, user-defined, unused   the piece text with "\xe2\x96\x81" (U+2581, the word-boundary
//                                  mark) replaced by ' '            "▁the" -> " the"
//   byte (byte fallback)           that one byte                    "<0xF0>" -> "\xF0"
//   control (<s>, </s>, <pad>)     ""
//   unknown (<unk>)                sentencepiece's unk surface, " \xe2\x81\x87 " (" ⁇ ") unless the
//                                  model was trained with another --unk_surface. Not "": text
//                                  with unknown characters then decodes as sentencepiece does.
//
// Decode(ids) is the concatenated TokenBytes minus one leading ' ' when strips_leading_space().
// For ids that Encode produced, this equals sentencepiece's own DecodeIds, except that:
//   - a byte-fallback run that is not valid UTF-8 comes out as raw bytes, where DecodeIds writes
//     U+FFFD per bad byte (raw bytes keep Decode equal to the streamed text; such runs only come
//     from generated ids, since Encode's input is normalized to valid UTF-8 first);
//   - a model's denormalizer rules (rare; none by default) are not applied.
// For arbitrary generated ids DecodeIds can also differ at the very start: it does not strip the
// space of a leading " ⁇ ", and with remove_extra_whitespaces it strips the mark of every leading
// "▁" piece, not only the first.
//
// Models trained with --treat_whitespace_as_suffix are not supported: their dummy space is a
// suffix, which neither strips_leading_space() nor Decode removes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/tokenizer.h"

struct MswaSpmApi;

namespace mswa {

// Immutable after Load; all methods are thread-safe.
class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads the model file at `path`. Errors:
  //   NotFound          `path` does not exist (the message names it)
  //   FailedPrecondition  libmswa_spm.so (built beside the binaries) cannot be loaded; the
  //                     message lists where it was looked for ($MSWA_SPM_LIBRARY overrides)
  //   InvalidArgument   sentencepiece cannot load it; the message names `path` and carries
  //                     sentencepiece's own message
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // Without BOS/EOS. Input that is not valid UTF-8 is normalized by sentencepiece first, so only
  // valid UTF-8 round-trips.
  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string TokenBytes(int32_t id) const override;
  std::string Decode(const std::vector<int32_t>& ids) const override;

  int32_t vocab_size() const override { return static_cast<int32_t>(token_bytes_.size()); }
  // -1 when the model has no such piece (trained with --bos_id=-1 / --eos_id=-1).
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  // The model adds a dummy "▁" before the text (NormalizerSpec.add_dummy_prefix, the default).
  // Detected at Load by encoding "a" and looking for the mark at the start of the first piece.
  bool strips_leading_space() const override { return strips_leading_space_; }
  std::string kind() const override { return "sentencepiece"; }

 private:
  SentencePieceTokenizer() = default;

  // sentencepiece runs inside libmswa_spm.so, loaded in isolation (see sentencepiece_shim.h).
  const MswaSpmApi* api_ = nullptr;
  void* processor_ = nullptr;
  // TokenBytes for every id, computed once at Load: [vocab_size].
  std::vector<std::string> token_bytes_;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  bool strips_leading_space_ = false;
};

}  // namespace mswa
