// The elementwise pieces of the decoder layer that differ by family (model/format/arch_spec.h),
// written once: every forward (the CPU paged model, the dense reference, the CUDA model, the
// trainer) builds its layer from these. Two forms of each: raw fp32 rows for the CPU engine's
// hot loops, and LibTorch tensors for the others.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "kernels/norm_rope.h"
#include "model/format/arch_spec.h"

namespace mswa {

// The multiplier RMSNorm applies for checkpoint weight `w`: w, or 1 + w (computed in fp32, as
// Gemma does) for norm_plus_one families. Returned in `dtype`.
at::Tensor NormScale(const at::Tensor& w, const ArchSpec& arch, at::ScalarType dtype);

// ---- raw fp32 rows ----

// RmsNormRows and RotateHeads: kernels/norm_rope.h.

// out[r, i] = act(gate[r, i]) * up[r, i] for `rows` rows of a fused [gate | up] product (2n
// floats per row; out n per row), vectorized (kernels/gated_activation.h).
void GatedActivation(const float* gate_up, int64_t rows, int64_t n, Activation act, float* out);
// x[i] = cap * tanh(x[i] / cap); nothing when cap is 0.
void SoftCap(float* x, int64_t n, double cap);
// cos/sin [n, rotary_dim / 2] as fp32 for positions of any size (angles in fp64, reduced mod
// 2 pi before cos/sin: positions grow without bound in a windowed model).
void RopeAngles(const std::vector<double>& inv_freq, const int64_t* positions, int64_t n,
                float* cos, float* sin);

// ---- tensors ----

// x * rsqrt(mean(x^2, -1) + eps) * scale.
at::Tensor RmsNormT(const at::Tensor& x, const at::Tensor& scale, double eps);
// act(gate) * up.
at::Tensor GatedActivationT(const at::Tensor& gate, const at::Tensor& up, Activation act);
// cap * tanh(x / cap), or x when cap is 0.
at::Tensor SoftCapT(const at::Tensor& x, double cap);

}  // namespace mswa
