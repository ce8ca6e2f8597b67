// y = x W^T (+ y) for up to a few dozen rows: the matrix products of a decode step.
//
// BLAS gemm packs its operands and wakes its threads first, which at decode batch sizes costs
// more than the product; this reads each weight row once for all rows of x (register tiles of 8
// outputs x 1 row, or of 4 x 4 in blocks whose operands fit L1 from 4 rows on), split across
// threads by output row, so one row runs at memory bandwidth and 32 rows at 1.5-2x OpenBLAS
// (build/bench/engine_bench, docs/benchmarks.md). fp32 matrices packed in panels (F32Panels,
// below) take an outer-product kernel instead, fast enough for prompts too.
// Every product may be called by every thread of a team (kernels/cpu_team.h), whose threads then
// split its output rows; alone, it opens a parallel region of its own.
#pragma once

#include <cstdint>

#include "kernels/bf16.h"

namespace mswa {

// x [rows, in], w [out, in] (row-major, as nn.Linear stores it), y [rows, out] with row stride
// y_stride. accumulate: y += x W^T, else y = x W^T. Best for rows <= kSmallLinearMaxRows.
void SmallLinear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                 float* y, int64_t y_stride, bool accumulate);
// The same with bfloat16 weights (widened exactly, fp32 arithmetic): half the bytes per step,
// which is what a batch-1 decode is bound by.
void SmallLinear(const float* x, int64_t rows, int64_t in, const Bf16* w, int64_t out, float* y,
                 int64_t y_stride, bool accumulate);

// fp32 weights in panels, as the model loads them where the CPU has AVX-512: panel p holds
// outputs [48 p, 48 p + 48) as [in][48], the 48 outputs' weights for each column side by side,
// so the kernel's vector lanes are outputs. The last panel holds the outputs left over, padded
// with zero rows to 16, 32 or 48 (F32PanelWidth), as [in][that width]: 256 outputs compute 256,
// not 288 (and a decode step reads no padding beyond 15 rows). No partial
// sums to fold, and 24 multiply-adds per 3 vector loads at 8 rows of x, where the row layout's
// dot-product tiles load 8 per 16 (small_linear_f32_panels_cpu.cc). Any rows and columns. Each
// output is one lane's sum over the columns in order, so a row's outputs are the same bits alone
// as in any batch (not the row layout's bits: its kernels fold 16 partial sums).
enum class F32Layout { kAuto, kRows, kPanels48 };
inline constexpr int64_t kF32PanelRows = 48;
struct F32Panels {
  const float* w = nullptr;  // F32PanelsFloats(out, in) floats, 64-byte aligned for speed
  int64_t out = 0;
};
void SmallLinear(const float* x, int64_t rows, int64_t in, const F32Panels& w, float* y,
                 int64_t y_stride, bool accumulate);
// Forces the layout fp32 matrices are loaded in from now on (tests, benchmarks); kAuto restores
// the best for the CPU. Returns false, changing nothing, for kPanels48 without AVX-512.
bool SetF32Layout(F32Layout layout);
// The layout to load fp32 matrices in now (never kAuto): kPanels48 where AVX-512 runs.
F32Layout F32LayoutNow();
const char* F32LayoutName(F32Layout layout);  // "auto", "rows", "panels48"
int64_t F32PanelsFloats(int64_t out, int64_t in);
// Outputs in panel p of a matrix of `out` outputs, padding included: 48, or for the last 16, 32
// or 48. Panel p starts at float 48 p * in.
int64_t F32PanelWidth(int64_t out, int64_t p);
// w [out, in] row-major into F32PanelsFloats(out, in) floats.
void PackF32Panels(const float* w, int64_t out, int64_t in, float* packed);
// Rows [row_begin, row_end) of a packed matrix of `out` outputs back to row-major, into
// w [row_end - row_begin, in].
void UnpackF32Panels(const float* packed, int64_t out, int64_t in, int64_t row_begin, int64_t row_end,
                     float* w);

// bfloat16 weights times the activations rounded to bfloat16 (nearest even), the products
// summed in fp32: what llama.cpp and GPU servers compute for bfloat16 models. With AVX-512 BF16
// (Zen 4, Sapphire Rapids and later) one vdpbf16ps does 32 multiply-adds, twice an fp32 FMA's,
// so compute-bound products (prompts, large batches) run up to twice as fast as the overload
// above; without it the rounded activations take that overload's widened kernel. For any number
// of rows (prompts too, instead of BLAS), and each output is summed the same way whatever the
// number of rows: a row's outputs are the same bits alone as in a product with other rows.
void SmallLinearBf16Dot(const float* x, int64_t rows, int64_t in, const Bf16* w, int64_t out,
                        float* y, int64_t y_stride, bool accumulate);
enum class Bf16DotKernel { kAuto, kWidened, kAvx512Bf16, kAmx };
// Forces a kernel (tests, benchmarks); kAuto restores the best the CPU has. Returns false,
// changing nothing, when the CPU lacks it. Not to be called while products run.
bool SetBf16DotKernel(Bf16DotKernel kernel);
// The kernel SmallLinearBf16Dot takes now (never kAuto).
Bf16DotKernel Bf16DotKernelNow();
// "auto", "widened", "avx512bf16", "amxbf16"
const char* Bf16DotKernelName(Bf16DotKernel kernel);

// int8 weights: symmetric per group of kInt8Group consecutive values of a row, one fp32 scale
// each (scale = max |w| / 127, q = round(w / scale)); products in fp32 on the widened values, so
// the only error is the weights' rounding. A quarter of fp32's bytes per decode step.
inline constexpr int64_t kInt8Group = 32;
inline int64_t Int8Groups(int64_t in) { return (in + kInt8Group - 1) / kInt8Group; }
// How an int8 matrix's bytes are laid out.
enum class Int8Layout {
  // q [out, in] row-major, scales [out, Int8Groups(in)]: what QuantizeInt8 writes.
  kRows,
  // 4-bit values (QuantizeQ4's) two a byte in rows, for the AVX2 kernel: each row's groups of
  // 32 values in 16 bytes each, value j in the low nibble of byte j and value 16 + j in its high
  // nibble, as value + 8 (llama.cpp's q4_0 order); scales [out, Int8Groups(in)] as kRows. The
  // AVX2 kernel reads it for any number of rows; other kernels take the dequantized weights.
  kRowsQ4,
  // What PackInt8Tiles writes from kRows for the AVX-512 VNNI and AMX-INT8 kernels (`in` a
  // multiple of 64): rows in tiles of 16 (the last one padded with zero rows), each tile a run of
  // kInt8Tile16GroupBytes per group of 32 columns: 8 units of 4 columns, each unit the 16 rows'
  // 4 bytes side by side (a 64-byte vector, row j in lane j), then the 16 rows' fp32 scales of
  // the group. A group is both the tile unit's B operand (8 lines of 64 bytes) and 8 vectors
  // whose lanes are outputs for vpdpbusd against one broadcast unit of x: each output's group
  // is summed exactly in int32 and scaled once, by either kernel, so their bits are the same.
  kTiles16,
  // 4-bit values (QuantizeQ4's) in kTiles16's arrangement at half the bytes: each group's
  // 4 vectors of 64 bytes hold units j (low nibbles) and j + 4 (high nibbles), j = 0 .. 3, as
  // value + 8 (0 .. 15); then the 16 scales (kQ4Tile16GroupBytes). Two instructions widen a
  // vector into two of kTiles16's (as unsigned q + 8 for VNNI, signed q for the tile unit).
  kTiles16Q4,
};
inline constexpr int64_t kInt8Tile16Rows = 16;
inline constexpr int64_t kInt8Tile16GroupBytes = kInt8Tile16Rows * (kInt8Group + sizeof(float));
inline constexpr int64_t kQ4Tile16GroupBytes = kInt8Tile16Rows * (kInt8Group / 2 + sizeof(float));
struct Int8Matrix {
  const int8_t* q = nullptr;       // kRows: [out, in]; kTiles16(Q4): Int8TilesBytes(out, in,
                                   // layout); kRowsQ4: [out, in / 2]
  const float* scales = nullptr;   // kRows(Q4): [out, Int8Groups(in)]; tiles: unused (in q)
  int64_t out = 0;
  Int8Layout layout = Int8Layout::kRows;
};
void SmallLinear(const float* x, int64_t rows, int64_t in, const Int8Matrix& w, float* y,
                 int64_t y_stride, bool accumulate);
// How the int8 products run. The integer kernels (llama.cpp's q8_0 idea) quantize each row of
// x per kInt8Group values as the weights are (scale max |x| / 127, round to nearest even) and
// sum the products in int32, then scale: beyond the weights' rounding, an output's error is at
// most sum_i |w_i| * s_x(i) / 2, s_x(i) the scale of x_i's group. About a third of the widened
// kernel's instructions for the same bytes. They need `in` a multiple of 64; other shapes take
// the widened fp32 kernel: exact products of the dequantized weights. Every number of rows takes
// the same integer kernel, so a row's outputs do not depend on the rows beside it (on AVX2,
// with too few registers for row tiles, each 4-output tile is read from L1 for every row of
// x). A kTiles16(Q4) matrix takes the VNNI or (where the CPU has AMX-INT8, from
// kInt8AmxMinRows rows) the AMX kernel, which give the same bits; forced onto another, it runs
// as exact fp32 products of its dequantized weights (for tests and benchmarks). kAmx forced:
// AMX for tiled matrices at any number of rows, VNNI for kRows ones.
enum class Int8Kernel { kAuto, kWidened, kAvx2, kAvx512Vnni, kAmx };
// From this many rows kAuto takes the tile unit for tiled products (at fewer, a row of x fills
// a sixteenth of a tile and the VNNI kernel is faster: measured crossover, docs/benchmarks.md).
inline constexpr int64_t kInt8AmxMinRows = 6;
// Forces a kernel (tests, benchmarks); kAuto restores the best the CPU has. Returns false,
// changing nothing, when the CPU lacks it. Not to be called while products run.
bool SetInt8Kernel(Int8Kernel kernel);
// The kernel a product of `rows` rows and `in` columns takes now.
Int8Kernel Int8KernelFor(int64_t rows, int64_t in);
const char* Int8KernelName(Int8Kernel kernel);

// Quantizes w [out, in] into q [out, in] and scales [out, Int8Groups(in)] (layout kRows).
void QuantizeInt8(const float* w, int64_t out, int64_t in, int8_t* q, float* scales);
// 4-bit weights, llama.cpp's q4_0 scheme: per kInt8Group values of a row, with m the value of
// largest magnitude, scale d = m / -8 and q = clamp(round(w / d), -8, 7) (so m itself is exact);
// a weight is d q. Written as kRows int8 values in [-8, 7], which every int8 kernel reads as
// they are; PackInt8Tiles(..., kTiles16Q4) halves them for the VNNI and AMX kernels. An eighth
// of fp32's bytes plus the scales: what a batch-1 decode reads per token.
void QuantizeQ4(const float* w, int64_t out, int64_t in, int8_t* q, float* scales);
// Whether SmallLinear reads tiles (kTiles16, kTiles16Q4) faster than kRows for `in` columns
// with the kernel it takes now (the AVX-512 VNNI or AMX one, unless another is forced): decide
// at load.
bool Int8TilesPreferred(int64_t in);
// The bytes of a kTiles16 or kTiles16Q4 matrix, and the packing of a kRows one into them (`in`
// % 64 == 0; for kTiles16Q4, q's values in [-8, 7]).
int64_t Int8TilesBytes(int64_t out, int64_t in, Int8Layout layout = Int8Layout::kTiles16);
void PackInt8Tiles(const int8_t* q, const float* scales, int64_t out, int64_t in, int8_t* tiles,
                   Int8Layout layout = Int8Layout::kTiles16);
// Whether the model should pack q4 weights as kRowsQ4 for `in` columns: where the AVX2 kernel
// runs (no AVX-512 VNNI, or AVX2 forced) and `in` % 64 == 0. Decide at load.
bool Q4RowsPreferred(int64_t in);
// Packs QuantizeQ4's kRows values (in [-8, 7], `in` % 32 == 0) into kRowsQ4's out * in / 2 bytes.
void PackQ4Rows(const int8_t* q, int64_t out, int64_t in, int8_t* packed);
// Rows [row_begin, row_end) of w (any layout) back to fp32, into out [row_end - row_begin, in].
void DequantizeInt8(const Int8Matrix& w, int64_t in, int64_t row_begin, int64_t row_end, float* out);

// Measured on a 2-core EPYC against OpenBLAS: faster up to 64 rows; BLAS wins beyond.
inline constexpr int64_t kSmallLinearMaxRows = 64;
// Whether an int8 product of `rows` rows and `in` columns should take SmallLinear rather than
// BLAS on the dequantized weights: up to kSmallLinearMaxRows rows (faster), and at any number
// where an integer kernel runs, so that prompts compute what decode steps do (a prefix-cache
// hit leaves a prompt's last token to a one-row step, and must give the cold figures). With
// VNNI that is also faster (one vpdpbusd does 64 multiply-adds); with AVX2 alone, int8 prompts
// run at about 0.75x BLAS's speed. `layout`: a kRowsQ4 matrix always (its kernel is AVX2's).
bool Int8SmallLinearPreferred(int64_t rows, int64_t in, Int8Layout layout = Int8Layout::kRows);

}  // namespace mswa
