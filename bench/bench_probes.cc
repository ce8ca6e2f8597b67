#include "bench/bench_probes.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace mswa {

double ReadBandwidth(size_t bytes) {
  const size_t n = bytes / sizeof(float);
  std::vector<float> a(n, 1.0f);
  double best = 0;
  const int inner = static_cast<int>(std::max<size_t>(1, (size_t{512} << 20) / bytes));
  const float* data = a.data();
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    float sum = 0;
    for (int it = 0; it < inner; ++it) {
      // float lanes, vectorized, one partial sum per thread: limited by memory, not by adds.
#pragma omp parallel for simd reduction(+ : sum) schedule(static)
      for (size_t i = 0; i < n; ++i) sum += data[i];
    }
    const double s = Seconds(t0, Clock::now());
    if (!(sum > 0)) std::abort();
    best = std::max(best, static_cast<double>(inner) * n * sizeof(float) / s);
  }
  return best;
}

AlignedBytes AllocateAligned(size_t bytes, uint8_t fill) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) {
    std::fprintf(stderr, "out of memory: %zu bytes\n", bytes);
    std::abort();
  }
  std::memset(p, fill, bytes);
  return AlignedBytes(static_cast<uint8_t*>(p), &std::free);
}

bool PrefixCaching() {
  const char* v = std::getenv("MSWA_BENCH_PREFIX_CACHING");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

}  // namespace mswa
