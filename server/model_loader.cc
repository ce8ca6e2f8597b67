#include "server/model_loader.h"

#include "model/status_macros.h"

namespace mswa {

absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(const std::string& model_dir,
                                                   const EngineOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(ModelWeights weights, LoadModelWeights(model_dir, config, std::nullopt));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(config.tokenizer, model_dir));
  return Engine::Create(config, std::move(weights), std::move(tokenizer), options);
}

}  // namespace mswa
