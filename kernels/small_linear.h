// y = x W^T (+ y) for up to a few dozen rows: the matrix products of a decode step.
//
// BLAS gemm packs its operands and wakes its threads first, which at decode batch sizes costs
// more than the product; this reads each weight row once for all rows of x (in register tiles
// of 2 outputs x 4 rows), split across threads by output row, so one row runs at memory
// bandwidth and 32 rows at 1.5-1.9x OpenBLAS (build/bench/engine_bench, docs/benchmarks.md).
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

// Measured on a 2-core EPYC against OpenBLAS: faster up to 64 rows; BLAS wins beyond.
inline constexpr int64_t kSmallLinearMaxRows = 64;

}  // namespace mswa
