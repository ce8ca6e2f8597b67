#include "model/runtime/ops.h"

#include <cmath>

#include "kernels/gated_activation.h"

namespace mswa {

at::Tensor NormScale(const at::Tensor& w, const ArchSpec& arch, at::ScalarType dtype) {
  if (!arch.norm_plus_one) return w.to(dtype);
  return (w.to(at::kFloat) + 1.0).to(dtype);
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
