// Shared by the Gemma 2 and Gemma 3 mappers.
#pragma once

#include <string>

namespace mswa {

// sqrt(hidden_size) rounded to `torch_dtype` ("bfloat16", "float16", else float32): Gemma scales
// the embedding by a scalar it first casts to the weights' type.
double GemmaEmbedScale(int64_t hidden_size, const std::string& torch_dtype);

}  // namespace mswa
