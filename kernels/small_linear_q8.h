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
// The VNNI kernel reads every layout of small_linear.h's Int8Layout; kTiles8 (what the model
// loads where this kernel runs) is one stream per tile of 8 rows, and its lane order lets a
// row's two scales reach their lanes by one broadcast instead of a broadcast and a permute.
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

// Where byte i (0 .. 63) of a row's 64-column chunk goes in an Int8Layout::kTiles8 chunk: lane
// l = 2 k + g (4 bytes) holds bytes 4 k .. 4 k + 3 of group g.
inline int TilesBytePosition(int i) { return 8 * ((i % 32) / 4) + 4 * (i / 32) + i % 4; }

// x [rows, in] into xq and xs, as QuantizeInt8 does weights (round to nearest even); with
// tiles_order (in % 64 == 0) each 64-byte chunk of xq in TilesBytePosition order, as a kTiles8
// matrix's rows are.
void QuantizeActivations(const float* x, int64_t rows, int64_t in, int8_t* xq, float* xs,
                         bool tiles_order = false);

// Output rows [begin, end) of the product, for every row of x: kRows weights, then kTiles8 ones
// (begin a multiple of kInt8TileRows; x quantized in tiles order).
void ChunkAvx512Vnni(const Product& p, int64_t begin, int64_t end);
void ChunkAvx512VnniTiles(const Product& p, int64_t begin, int64_t end);
// The same for a kTiles8Q4 matrix: each row's 32 bytes widened to kTiles8's 64 unsigned bytes
// (q + 8), the sums started at -8 sum(x) instead of -128 sum(x).
void ChunkAvx512VnniTilesQ4(const Product& p, int64_t begin, int64_t end);
void ChunkAvx2(const Product& p, int64_t begin, int64_t end);

// ---- Int8Layout::kTiles16 (small_linear_q8_tiles16_cpu.cc): x quantized in row order, begin a
// multiple of kInt8Tile16Rows. Each output is, over its groups in order, acc = fma(float(s_g),
// w_scale_g * x_scale_g, acc) with s_g the group's exact int32 sum, on both kernels: the same
// bits on either, for any number of rows.
// 128 times each group's sum of xq [rows, in], into out [rows, groups]: vpdpbusd multiplies the
// weights as unsigned (w + 128), and the VNNI kernel starts each group's sums at minus this.
void XSums128(const int8_t* xq, int64_t rows, int64_t in, int32_t* out);
void ChunkAvx512VnniTiles16(const Product& p, int64_t begin, int64_t end);
// The tile unit: tdpbssd multiplies 16 rows of x by a group's 16 outputs (signed by signed, 32
// columns) into 16 x 16 exact int32 sums in one instruction, scaled then by AVX-512.
bool CpuHasAmxInt8();
void ChunkAmxTiles16(const Product& p, int64_t begin, int64_t end);
// The same for a kRowsQ4 matrix, for any number of rows: each group's 16 bytes widened to the
// 32 values in [-8, 7] that ChunkAvx2 reads for a kRows one (so both give the same bits).
void ChunkAvx2Q4(const Product& p, int64_t begin, int64_t end);

}  // namespace q8
}  // namespace mswa
