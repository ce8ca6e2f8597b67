// Builds an Engine from a model directory: config.json, model.safetensors, tokenizer.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/engine.h"

namespace mswa {

// Errors name the file and the problem (see LoadModelConfig, LoadModelWeights, LoadTokenizer).
// Weights keep their stored type. With a tokenizer.json, BOS is the one the tokenizer adds
// (none when it adds none), and EOS falls back to the tokenizer's when the configs name none.
absl::StatusOr<std::unique_ptr<Engine>> LoadEngine(const std::string& model_dir,
                                                   const EngineOptions& options);

}  // namespace mswa
