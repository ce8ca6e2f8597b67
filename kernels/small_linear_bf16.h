// Internal to kernels/: SmallLinearBf16Dot's AVX-512 BF16 kernel. vdpbf16ps multiplies 32 pairs
// of bfloat16 values and adds them into 16 fp32 lanes (two per lane), twice the multiply-adds
// of an fp32 FMA per instruction and half the bytes per loaded operand; both operands are
// bfloat16, so the activations are rounded to bfloat16 first (RoundToBf16). Every output is one
// accumulator per 32 columns summed in column order, then reduced by fold16.h's tree, then the
// columns past the last multiple of 32 added in order: the same operations whatever tile the
// output falls in, so a row's outputs do not depend on the other rows of the product.
#pragma once

#include <cstdint>

#include "kernels/bf16.h"

namespace mswa {
namespace bf16dot {

struct Product {
  const Bf16* x = nullptr;  // [rows, in], the activations rounded
  int64_t rows = 0;
  int64_t in = 0;
  const Bf16* w = nullptr;  // [out, in]
  float* y = nullptr;
  int64_t y_stride = 0;
  bool accumulate = false;
};

bool CpuHasAvx512Bf16();

// x [n] to bfloat16, rounding to nearest even (NaN stays NaN), as the KV pools round.
void RoundToBf16(const float* x, int64_t n, Bf16* out);

// Output rows [begin, end) of the product for every row of x. Only where CpuHasAvx512Bf16().
void ChunkAvx512Bf16(const Product& p, int64_t begin, int64_t end);

// AMX (kernels/small_linear_amx_cpu.cc): the CPU has AMX-BF16 and the OS granted this process
// the tile registers (asked for on the first call).
bool CpuHasAmxBf16();
// x's rows in blocks of 16, each 32 columns one tile of the unit's B operand: column pairs side
// by side, AmxColumns(rows) to a line. Only the columns of whole 32-column chunks; the rest are
// read from p.x. AmxPackedSize(rows, in) values.
int64_t AmxColumns(int64_t rows);
int64_t AmxPackedSize(int64_t rows, int64_t in);
void PackForAmx(const Bf16* x, int64_t rows, int64_t in, Bf16* packed);
// As ChunkAvx512Bf16, on the tile unit, from p.x packed by PackForAmx. Each output is the sum of
// its 32-column chunks in column order, accumulated in fp32 by the unit, then the columns past
// the last multiple of 32 added in order: the same whatever the tile or the number of rows.
// Only where CpuHasAmxBf16(), and for p.rows > 0.
void ChunkAmxBf16(const Product& p, const Bf16* packed, int64_t begin, int64_t end);

}  // namespace bf16dot
}  // namespace mswa
