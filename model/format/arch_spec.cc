#include "model/format/arch_spec.h"

#include <cmath>

namespace mswa {

bool RopeSpec::operator==(const RopeSpec& o) const {
  return theta == o.theta && scaling == o.scaling && factor == o.factor &&
         low_freq_factor == o.low_freq_factor && high_freq_factor == o.high_freq_factor &&
         original_max_position == o.original_max_position && rotary_dim == o.rotary_dim;
}

std::vector<double> RopeInvFreq(const RopeSpec& r) {
  constexpr double kTwoPi = 6.283185307179586476925;
  const int64_t half = r.rotary_dim / 2;
  std::vector<double> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    inv[i] = std::pow(r.theta, -2.0 * static_cast<double>(i) / static_cast<double>(r.rotary_dim));
  }
  if (r.scaling == RopeSpec::Scaling::kLinear) {
    for (double& f : inv) f /= r.factor;
  } else if (r.scaling == RopeSpec::Scaling::kLlama3) {
    // Wavelengths longer than original / low_freq_factor are stretched by `factor`, shorter than
    // original / high_freq_factor kept; between, a linear blend in original / wavelength.
    const double low_wavelen = r.original_max_position / r.low_freq_factor;
    const double high_wavelen = r.original_max_position / r.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = kTwoPi / f;
      if (wavelen > low_wavelen) {
        f = f / r.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (r.original_max_position / wavelen - r.low_freq_factor) /
                              (r.high_freq_factor - r.low_freq_factor);
        f = (1.0 - smooth) * f / r.factor + smooth * f;
      }
    }
  }
  return inv;
}

double ArchSpec::AttnScale(int64_t head_dim) const {
  return attn_scale > 0 ? attn_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

}  // namespace mswa
