#include "model/runtime/ops.h"

#include <cmath>

#include "kernels/cpu_clones.h"
#include "kernels/gated_activation.h"

namespace mswa {

at::Tensor NormScale(const at::Tensor& w, const ArchSpec& arch, at::ScalarType dtype) {
  if (!arch.norm_plus_one) return w.to(dtype);
  return (w.to(at::kFloat) + 1.0).to(dtype);
}

// The norms and RoPE run for every token of every layer: compiled per ISA level like the
// kernels (the baseline's 4 lanes made a prompt's norms 3% of its time on a small model).
MSWA_CPU_CLONES
void RmsNormRows(const float* x, const float* scale, int64_t rows, int64_t n, double eps,
                 float* y, int64_t stride) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = x + t * stride;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + static_cast<float>(eps));
    float* yr = y + t * stride;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * r * scale[i];
  }
}

MSWA_CPU_CLONES
void RotateHeads(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                 const float* sin) {
  const int64_t half = rotary_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* a = x + h * head_dim;
    float* b = a + half;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = a[i], x2 = b[i];
      a[i] = x1 * cos[i] - x2 * sin[i];
      b[i] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

void GatedActivation(const float* gate_up, int64_t rows, int64_t n, Activation act, float* out) {
  GatedActivationRows(gate_up, gate_up + n, rows, n, 2 * n,
                      act == Activation::kSilu ? GatedKind::kSilu : GatedKind::kGeluTanh, out, n);
}

void SoftCap(float* x, int64_t n, double cap) {
  if (cap <= 0) return;
  const float c = static_cast<float>(cap), inv = static_cast<float>(1.0 / cap);
  for (int64_t i = 0; i < n; ++i) x[i] = c * std::tanh(x[i] * inv);
}

void RopeAngles(const std::vector<double>& inv_freq, const int64_t* positions, int64_t n,
                float* cos, float* sin) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = std::fmod(static_cast<double>(positions[t]) * inv_freq[i],
                                     6.283185307179586476925);
      cos[t * half + i] = static_cast<float>(std::cos(angle));
      sin[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

at::Tensor RmsNormT(const at::Tensor& x, const at::Tensor& scale, double eps) {
  return x * at::rsqrt(x.pow(2).mean({-1}, /*keepdim=*/true) + eps) * scale;
}

at::Tensor GatedActivationT(const at::Tensor& gate, const at::Tensor& up, Activation act) {
  if (act == Activation::kSilu) return at::silu(gate) * up;
  return at::gelu(gate, "tanh") * up;
}

at::Tensor SoftCapT(const at::Tensor& x, double cap) {
  if (cap <= 0) return x;
  return at::tanh(x / cap) * cap;
}

}  // namespace mswa
