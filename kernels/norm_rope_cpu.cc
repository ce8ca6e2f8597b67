#include "kernels/norm_rope.h"

#include <cmath>

#include "kernels/cpu_clones.h"

namespace mswa {

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

}  // namespace mswa
