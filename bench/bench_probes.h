// Probes of what this machine allows, shared by the engine benchmarks: each figure is set
// beside one of these measured in the same run (these machines are noisy).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace mswa {

using Clock = std::chrono::steady_clock;
inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Read bandwidth: a threaded sum over `bytes` (best of 5). 512 MiB measures DRAM; a buffer the
// size of the weights shows what repeated reads of them get (they may fit in the last-level
// cache).
double ReadBandwidth(size_t bytes);

// `bytes` bytes set to `fill`, aligned to 64 bytes as LibTorch aligns the engine's tensors: a KV
// pool in a std::vector (16-byte aligned) has every vector load of a row straddle two cache
// lines, and read a quarter slower. Aborts when the memory is not there.
using AlignedBytes = std::unique_ptr<uint8_t, void (*)(void*)>;
AlignedBytes AllocateAligned(size_t bytes, uint8_t fill);

// Prefix caching for the benchmark's engines: on unless MSWA_BENCH_PREFIX_CACHING=0 (prompts are
// random, so the cache only costs its bookkeeping: compare the two).
bool PrefixCaching();

}  // namespace mswa
