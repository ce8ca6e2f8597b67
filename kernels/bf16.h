// bfloat16 as its bits: the upper half of an fp32. The element type of bfloat16 weights
// (kernels/small_linear.h) and KV pools (kernels/paged_attention.h, KvDType::kBF16).
#pragma once

#include <cstdint>

namespace mswa {

struct Bf16 {
  uint16_t bits;
};

}  // namespace mswa
