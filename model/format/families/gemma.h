// Shared by the Gemma 2 and Gemma 3 mappers.
#pragma once

#include <string>

#include "model/format/families/family.h"

namespace mswa {

// sqrt(hidden_size) rounded to `torch_dtype` ("bfloat16", "float16", else float32): Gemma scales
// the embedding by a scalar it first casts to the weights' type.
double GemmaEmbedScale(int64_t hidden_size, const std::string& torch_dtype);

// What Gemma 2 and 3 share, after ParseDecoderFields: (1 + w) and sandwich norms, the embedding
// scale, the activation (hidden_activation), query_pre_attn_scalar and both soft-caps (0 when
// absent or null).
absl::Status MapGemmaLayer(const json& cfg, const std::string& source, ModelConfig& c);

}  // namespace mswa
