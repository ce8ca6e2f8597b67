// The gated MLP's elementwise step, out = act(gate) * up, vectorized: SiLU (Llama, Mistral,
// Qwen, Phi-3) and GELU with the tanh approximation (Gemma). Both are x * sigmoid(z) (z = x for
// SiLU; z = 2 sqrt(2 / pi) (x + 0.044715 x^3) for GELU-tanh, since 0.5 (1 + tanh(u)) =
// sigmoid(2u)), with sigmoid from one exp of -|z| (kernels/vec16.h's polynomial, within 2 ulp),
// so it neither overflows nor cancels. A libm exp per element, or LibTorch's silu and mul as two
// dispatched ops, took 7 us of each decode layer's ~200 (SmolLM2-135M shape, int8).
#pragma once

#include <cstdint>

namespace mswa {

enum class GatedKind { kSilu, kGeluTanh };

// out[r * stride + i] = act(gate[r * stride + i]) * up[r * stride + i] for i < n, rows r <
// rows, (the rows of a fused [gate | up] product: gate and up `stride` floats apart per row;
// out its own stride out_stride). Rows run in parallel when there are enough of them, and on a
// team (kernels/cpu_team.h) in pieces of up to 256 values, so that even one row is shared.
void GatedActivationRows(const float* gate, const float* up, int64_t rows, int64_t n,
                         int64_t stride, GatedKind kind, float* out, int64_t out_stride);

}  // namespace mswa
