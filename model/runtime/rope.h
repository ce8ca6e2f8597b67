// Rotary position embeddings (RoPE), Hugging Face Llama's "rotate half" convention: the first
// and second halves of each head's dimensions form the (x, y) pairs.
//
// Positions grow without bound in a windowed model (a server scores 10^7-token files), so angles
// pos * theta^(-2i/D) are computed in fp64 and reduced before cos/sin: in fp32, position 10^7
// would carry an angle error of ~0.6 rad.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "model/format/arch_spec.h"

namespace mswa {

// cos and sin, each [T, D/2] in `dtype`, for positions start_pos .. start_pos + T - 1.
struct RopeTables {
  at::Tensor cos, sin;
};
RopeTables MakeRopeTables(int64_t start_pos, int64_t num_positions, int64_t head_dim,
                          double theta, at::ScalarType dtype);
// The same for arbitrary positions (a flat batch of many sequences) and any RoPE spec
// (scaling, partial rotary): [n, rotary_dim / 2] each.
RopeTables MakeRopeTablesAt(const int64_t* positions, int64_t n, const RopeSpec& rope,
                            at::ScalarType dtype);
// Plain RoPE with base `theta` over the whole head: [n, D/2] each.
RopeTables MakeRopeTablesAt(const int64_t* positions, int64_t n, int64_t head_dim, double theta,
                            at::ScalarType dtype);

// x: [T, heads, D]; returns x with its first 2 * tables.cos.size(1) dims of each head rotated by
// the angles of its row's position (the rest unchanged).
at::Tensor ApplyRope(const at::Tensor& x, const RopeTables& tables);

}  // namespace mswa
