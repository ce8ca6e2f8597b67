// Internal to kernels/: SmallLinear's int8 products with integer dot products (llama.cpp's
// q8_0 idea). Each row of x is quantized like the weights, per kInt8Group values with a scale
// max |x| / 127, and each group's 32 products are summed in int32 by one or two instructions:
//   AVX-512 VNNI  vpdpbusd: 64 u8 x s8 products into 16 int32 lanes; the weights are made
//                 unsigned by adding 128 (xor of the sign bit), and 128 * sum(x), computed once
//                 per row of x and chunk with the same instruction, starts each sum negated
//   AVX2          vpmaddubsw + vpmaddwd on |x| and w with x's sign (vpsignb); no overflow, as
//                 |x|, |w| <= 127 keep each pair's int16 sum <= 32258
// then scaled by the two groups' scales in fp32. Integer sums are exact, so both paths give the
// same products up to fp32 summation order. Against the widened fp32 path this reads the same
// bytes with about a third of the instructions, which is what batch-1 decode with int8 weights
// was bound by. Requires `in` a multiple of 64 (whole 64-byte chunks, an even number of groups).
// The VNNI kernel reads kRows here, and the tiles of 16 outputs (kTiles16, kTiles16Q4: what the
// model loads where VNNI runs) in small_linear_q8_tiles16_cpu.cc, as the AMX-INT8 kernel does.
#pragma once

#include <cstdint>

#include "kernels/small_linear.h"

namespace mswa {
namespace q8 {

// One product's operands: x quantized (xq [rows, in], xs [rows, groups]) and the weights.
struct Product {
  const int8_t* xq = nullptr;
  const float* xs = nullptr;
  int64_t rows = 0;
  int64_t in = 0;
  int64_t groups = 0;  // in / kInt8Group
  Int8Matrix w;
  float* y = nullptr;
  int64_t y_stride = 0;
  bool accumulate = false;
  // kTiles16 on VNNI: 128 times the sum of each group of xq [rows, groups] (XSums128).
  const int32_t* xsum128 = nullptr;
};

bool CpuHasAvx512Vnni();
bool CpuHasAvx2();

// x [rows, in] into xq and xs, as QuantizeInt8 does weights (round to nearest even).
void QuantizeActivations(const float* x, int64_t rows, int64_t in, int8_t* xq, float* xs);

// Output rows [begin, end) of the product of kRows weights, for every row of x.
void ChunkAvx512Vnni(const Product& p, int64_t begin, int64_t end);
void ChunkAvx2(const Product& p, int64_t begin, int64_t end);

// ---- Int8Layout::kTiles16 and kTiles16Q4 (small_linear_q8_tiles16_cpu.cc): begin a multiple
// of kInt8Tile16Rows. Each output is, over its groups in order, acc = fma(float(s_g), w_scale_g
// * x_scale_g, acc) with s_g the group's exact int32 sum, on both kernels and both layouts: the
// same bits on either, for any number of rows, and for q4 values as for the same values in int8.
// 128 times each group's sum of xq [rows, in], into out [rows, groups]: vpdpbusd multiplies the
// weights as unsigned (w + 128, or q + 8), and the VNNI kernel starts each group's sums at
// minus this (or a sixteenth of it).
void XSums128(const int8_t* xq, int64_t rows, int64_t in, int32_t* out);
void ChunkAvx512VnniTiles16(const Product& p, int64_t begin, int64_t end);
void ChunkAvx512VnniTiles16Q4(const Product& p, int64_t begin, int64_t end);
// The tile unit: tdpbssd multiplies 16 rows of x by a group's 16 outputs (signed by signed, 32
// columns) into 16 x 16 exact int32 sums in one instruction, scaled then by AVX-512. q4 tiles
// are widened to kTiles16's bytes one tile at a time (in L1) and read as those.
bool CpuHasAmxInt8();
void ChunkAmxTiles16(const Product& p, int64_t begin, int64_t end);
void ChunkAmxTiles16Q4(const Product& p, int64_t begin, int64_t end);
// The same for a kRowsQ4 matrix, for any number of rows: each group's 16 bytes widened to the
// 32 values in [-8, 7] that ChunkAvx2 reads for a kRows one (so both give the same bits).
void ChunkAvx2Q4(const Product& p, int64_t begin, int64_t end);

}  // namespace q8
}  // namespace mswa
