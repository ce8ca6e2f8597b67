// Internal to kernels/: SmallLinear's fp32 products over F32Layout::kPanels48 (small_linear.h),
// whose AVX-512 kernel is in small_linear_f32_panels_cpu.cc.
#pragma once

#include <cstdint>

#include "kernels/small_linear.h"

namespace mswa {
namespace panels {

bool CpuHasAvx512();
// Outputs [begin, end) of y = x W^T (+ y) over panels (begin a multiple of kF32PanelRows), on
// the calling thread. Requires CpuHasAvx512().
void Chunk(const float* x, int64_t rows, int64_t in, const float* panels, int64_t out, int64_t begin,
           int64_t end, float* y, int64_t y_stride, bool accumulate);

}  // namespace panels
}  // namespace mswa
