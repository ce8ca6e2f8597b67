// The per-token elementwise steps of every decoder layer on raw fp32 rows: RMSNorm and rotary
// position embedding. Compiled per ISA level like the other kernels (kernels/cpu_clones.h): at
// the baseline's 4 lanes a prompt's norms took 3% of its time on a small model. The model's
// family-level ops (model/runtime/ops.h) build on these.
#pragma once

#include <cstdint>

namespace mswa {

// y[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * scale for `rows` rows of `n` floats, rows `stride`
// floats apart in both x and y (x == y allowed).
void RmsNormRows(const float* x, const float* scale, int64_t rows, int64_t n, double eps,
                 float* y, int64_t stride);
// Rotates the first `rotary_dim` dims of `heads` heads of `head_dim` floats at x, in place
// ("rotate half" within the rotated dims); cos/sin hold rotary_dim / 2 values.
void RotateHeads(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                 const float* sin);

}  // namespace mswa
