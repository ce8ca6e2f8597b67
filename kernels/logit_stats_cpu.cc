#include "kernels/logit_stats.h"

#include <cstring>
#include <limits>

#include "kernels/cpu_clones.h"
#include "kernels/vec16.h"

// clang-14 (the fuzz build, scripts/sanitizers.sh) rejects 64-byte vectors in a function built
// without AVX-512, as the baseline clone is: there the vector loops are left out and every entry
// takes the scalar tails, which compute the same terms.
#if defined(__clang__)
#define MSWA_SCAN_VECTORS 0
#undef MSWA_CPU_CLONES
#define MSWA_CPU_CLONES
#else
#define MSWA_SCAN_VECTORS 1
#endif

namespace mswa {
namespace {

#if MSWA_SCAN_VECTORS
typedef float V8 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));

// Any lane of a comparison's mask set.
__attribute__((always_inline)) inline bool AnyLane(const I32x16& mask) {
  int32_t lanes[16];
  std::memcpy(lanes, &mask, sizeof(lanes));
  int32_t any = 0;
  for (int k = 0; k < 16; ++k) any |= lanes[k];
  return any != 0;
}
#endif

MSWA_CPU_CLONES
LogitStats Scan(const float* x, int32_t n) {
  LogitStats s;
  if (n <= 0) return s;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  // The maximum, and whether every entry is below +inf (which NaN is not). sum_exp is SumExp's.
  float m = -kInf;
#if MSWA_SCAN_VECTORS
  const int32_t n16 = n / 16 * 16;
  V16 vmax = Splat16(-kInf);
  I32x16 below_inf = Splat16(0.f) == Splat16(0.f);  // all lanes set
  for (int32_t i = 0; i < n16; i += 16) {
    const V16 v = Load16(x + i);
    below_inf &= v < Splat16(kInf);
    vmax = Max16(vmax, v);
  }
  if (AnyLane(~below_inf)) return s;
  for (int k = 0; k < 16 && n16 > 0; ++k) m = vmax[k] > m ? vmax[k] : m;
#else
  const int32_t n16 = 0;
#endif
  for (int32_t i = n16; i < n; ++i) {
    if (!(x[i] < kInf)) return s;
    m = x[i] > m ? x[i] : m;
  }
  if (m == -kInf) return s;
  s.finite = true;
  s.max = m;
  // The first index holding m: a vector compare until some lane matches.
  int32_t i = 0;
#if MSWA_SCAN_VECTORS
  while (i < n16 && !AnyLane(Load16(x + i) == Splat16(m))) i += 16;
#endif
  while (x[i] != m) ++i;
  s.argmax = i;
  return s;
}

// sum of exp((x - shift) * scale), for x <= shift and scale > 0: per lane in fp64.
MSWA_CPU_CLONES
double SumExp(const float* x, int32_t n, float shift, float scale) {
  double sum = 0.0;
#if MSWA_SCAN_VECTORS
  const int32_t n16 = n / 16 * 16;
  D8 lo = {}, hi = {};
  for (int32_t i = 0; i < n16; i += 16) {
    const V16 e = ExpNonPositive((Load16(x + i) - Splat16(shift)) * Splat16(scale));
    V8 e_lo, e_hi;
    std::memcpy(&e_lo, &e, sizeof(e_lo));
    std::memcpy(&e_hi, reinterpret_cast<const char*>(&e) + sizeof(e_lo), sizeof(e_hi));
    lo += __builtin_convertvector(e_lo, D8);
    hi += __builtin_convertvector(e_hi, D8);
  }
  for (int k = 0; k < 8; ++k) sum += lo[k] + hi[k];
#else
  const int32_t n16 = 0;
#endif
  for (int32_t i = n16; i < n; ++i) sum += ExpNonPositive((x[i] - shift) * scale);
  return sum;
}

}  // namespace

LogitStats ScanLogits(const float* logits, int32_t n) {
  LogitStats s = Scan(logits, n);
  if (s.finite) s.sum_exp = SumExp(logits, n, s.max, 1.f);
  return s;
}

double SumExpShifted(const float* x, int32_t n, float shift, float scale) {
  return n > 0 ? SumExp(x, n, shift, scale) : 0.0;
}

}  // namespace mswa
