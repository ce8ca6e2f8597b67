// y = x W^T (+ y) for a handful of rows: the matrix-vector products of a decode step.
//
// BLAS gemm packs its operands first, which at one or two rows costs more than the product; this
// reads each weight row once for all rows of x, split across threads by output row, so it runs
// at memory (or cache) bandwidth.
#pragma once

#include <cstdint>

namespace mswa {

// x [rows, in], w [out, in] (row-major, as nn.Linear stores it), y [rows, out] with row stride
// y_stride. accumulate: y += x W^T, else y = x W^T. Best for rows <= kSmallLinearMaxRows.
void SmallLinear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                 float* y, int64_t y_stride, bool accumulate);

inline constexpr int64_t kSmallLinearMaxRows = 8;

}  // namespace mswa
