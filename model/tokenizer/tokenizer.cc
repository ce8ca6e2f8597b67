#include "model/tokenizer/tokenizer.h"

#include "absl/status/status.h"
#include "model/tokenizer/byte_tokenizer.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/sentencepiece_tokenizer.h"

namespace mswa {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const TokenizerSpec& spec,
                                                        const std::string& model_dir) {
  switch (spec.type) {
    case TokenizerSpec::Type::kBytes:
      return std::unique_ptr<Tokenizer>(std::make_unique<ByteTokenizer>());
    case TokenizerSpec::Type::kSentencePiece:
      return SentencePieceTokenizer::Load(model_dir + "/" + spec.model_file);
    case TokenizerSpec::Type::kHfJson:
      return HfTokenizer::Load(model_dir);
  }
  return absl::InternalError("LoadTokenizer: unknown tokenizer type");
}

}  // namespace mswa
