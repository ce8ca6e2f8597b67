#include "server/model_loader.h"

#include "model/status_macros.h"

namespace mswa {

absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(const std::string& model_dir,
                                                   const EngineOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(ModelWeights weights, LoadModelWeights(model_dir, config, std::nullopt));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(config.tokenizer, model_dir));
  if (config.tokenizer.type == TokenizerSpec::Type::kHfJson) {
    // Whether a BOS starts the text is the tokenizer's decision (its post-processor, or
    // tokenizer_config.json's add_bos_token), not config.json's bos_token_id: Qwen names a BOS
    // it never adds.
    config.bos_token_id = tokenizer->bos_id() >= 0 && tokenizer->bos_id() < config.vocab_size
                              ? tokenizer->bos_id()
                              : -1;
    if (config.eos_token_ids.empty() && tokenizer->eos_id() >= 0 &&
        tokenizer->eos_id() < config.vocab_size) {
      config.eos_token_ids.push_back(tokenizer->eos_id());
    }
  }
  return Engine::Create(config, std::move(weights), std::move(tokenizer), options);
}

}  // namespace mswa
