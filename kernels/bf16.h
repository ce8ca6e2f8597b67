// bfloat16 as its bits: the upper half of an fp32. The element type of bfloat16 weights
// (kernels/small_linear.h) and KV pools (kernels/paged_attention.h, KvDType::kBF16).
#pragma once

#include <cstdint>
#include <cstring>

namespace mswa {

struct Bf16 {
  uint16_t bits;
};

// fp32 to bfloat16, rounding to nearest even (as CUDA's __float2bfloat16_rn); NaN stays NaN.
inline Bf16 RoundToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  return Bf16{nan ? static_cast<uint16_t>((bits >> 16) | 0x40u)
                  : static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16)};
}

}  // namespace mswa
