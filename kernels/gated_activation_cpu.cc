#include "kernels/gated_activation.h"

#include <algorithm>

#include "kernels/cpu_clones.h"
#include "kernels/cpu_team.h"
#include "kernels/vec16.h"

namespace mswa {
namespace {

// x * sigmoid(z) * up, written once for a float and for 16 lanes (F = float or V16).
template <typename F>
__attribute__((always_inline)) inline F GatedOne(F x, F up, GatedKind kind) {
  F z = x;
  if (kind == GatedKind::kGeluTanh) z = 1.5957691216057308f * (x + 0.044715f * x * x * x);
  const F e = ExpNonPositive(-Abs(z));  // exp(-|z|) in (0, 1]
  const F s = IfNonNegative(z, 1.f / (1.f + e), e / (1.f + e));
  return x * s * up;
}

MSWA_CPU_CLONES
void Row(const float* gate, const float* up, int64_t n, GatedKind kind, float* out) {
  const int64_t n16 = n / 16 * 16;
  for (int64_t i = 0; i < n16; i += 16) Store16(out + i, GatedOne(Load16(gate + i), Load16(up + i), kind));
  for (int64_t i = n16; i < n; ++i) out[i] = GatedOne(gate[i], up[i], kind);
}

}  // namespace

void GatedActivationRows(const float* gate, const float* up, int64_t rows, int64_t n,
                         int64_t stride, GatedKind kind, float* out, int64_t out_stride) {
  // Items of up to kColumns values of a row, so that a team shares even one row (decode).
  constexpr int64_t kColumns = 256;
  const int64_t per_row = (n + kColumns - 1) / kColumns;
  const int64_t items = rows * per_row;
  OnTeam(rows * n >= (1 << 16), [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < items; ++i) {
      const int64_t r = i / per_row, c = i % per_row * kColumns;
      Row(gate + r * stride + c, up + r * stride + c, std::min(kColumns, n - c), kind,
          out + r * out_stride + c);
    }
  });
}

}  // namespace mswa
