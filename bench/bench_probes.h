// Probes of what this machine allows, shared by the engine benchmarks: each figure is set
// beside one of these measured in the same run (these machines are noisy).
#pragma once

#include <chrono>
#include <cstddef>

namespace mswa {

using Clock = std::chrono::steady_clock;
inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Read bandwidth: a threaded sum over `bytes` (best of 5). 512 MiB measures DRAM; a buffer the
// size of the weights shows what repeated reads of them get (they may fit in the last-level
// cache).
double ReadBandwidth(size_t bytes);

// Prefix caching for the benchmark's engines: on unless MSWA_BENCH_PREFIX_CACHING=0 (prompts are
// random, so the cache only costs its bookkeeping: compare the two).
bool PrefixCaching();

}  // namespace mswa
