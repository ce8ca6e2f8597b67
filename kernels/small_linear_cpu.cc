#include "kernels/small_linear.h"

#include "kernels/cpu_clones.h"

namespace mswa {
namespace {

// Output rows [o_begin, o_end) for every input row.
MSWA_CPU_CLONES
void Rows(const float* x, int64_t rows, int64_t in, const float* w, int64_t o_begin,
          int64_t o_end, float* y, int64_t y_stride, bool accumulate) {
  for (int64_t o = o_begin; o < o_end; ++o) {
    const float* wr = w + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < in; ++i) dot += wr[i] * xr[i];
      float* yo = y + r * y_stride + o;
      *yo = accumulate ? *yo + dot : dot;
    }
  }
}

}  // namespace

void SmallLinear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                 float* y, int64_t y_stride, bool accumulate) {
  // Chunks of 64 output rows: enough work per chunk to amortize scheduling, enough chunks to
  // balance two to a few dozen threads.
  const int64_t chunk = 64;
  const int64_t chunks = (out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (out * in > (1 << 15))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * chunk;
    const int64_t end = begin + chunk < out ? begin + chunk : out;
    Rows(x, rows, in, w, begin, end, y, y_stride, accumulate);
  }
}

}  // namespace mswa
