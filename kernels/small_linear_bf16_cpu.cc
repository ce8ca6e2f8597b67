// SmallLinearBf16Dot's AVX-512 BF16 kernel (kernels/small_linear_bf16.h), compiled for its
// instruction set by function attributes and chosen at run time (kernels/small_linear_cpu.cc).
#include "kernels/small_linear_bf16.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu_clones.h"
#include "kernels/fold16.h"
#include "kernels/vec16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MSWA_BF16_X86 1
#endif

namespace mswa {
namespace bf16dot {

MSWA_CPU_CLONES
void RoundToBf16(const float* x, int64_t n, Bf16* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = mswa::RoundToBf16(x[i]);
}

#if MSWA_BF16_X86

bool CpuHasAvx512Bf16() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
}

namespace {

#define MSWA_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#define MSWA_BF16 MSWA_BF16_TARGET __attribute__((always_inline)) inline

MSWA_BF16 __m512bh LoadBh(const Bf16* p) { return (__m512bh)_mm512_loadu_si512(p); }
MSWA_BF16 V16 AsV16(__m512 v) { return (V16)v; }

// The columns past the last multiple of 32, in order, after the reduction. Each product of two
// bfloat16 values is exact in fp32, so whether this contracts to an FMA changes nothing.
MSWA_BF16 float Tail(const Product& p, int64_t o, int64_t r, float dot) {
  const Bf16* wr = p.w + o * p.in;
  const Bf16* xr = p.x + r * p.in;
  for (int64_t i = p.in / 32 * 32; i < p.in; ++i) dot += ToFloat(xr[i]) * ToFloat(wr[i]);
  return dot;
}

MSWA_BF16 void Store(const Product& p, int64_t o, int64_t r, float dot) {
  float* yo = p.y + r * p.y_stride + o;
  *yo = p.accumulate ? *yo + dot : dot;
}

// Output o for row r alone.
MSWA_BF16 void Single(const Product& p, int64_t o, int64_t r) {
  const int64_t in32 = p.in / 32 * 32;
  const Bf16* wr = p.w + o * p.in;
  const Bf16* xr = p.x + r * p.in;
  __m512 a = _mm512_setzero_ps();
  for (int64_t i = 0; i < in32; i += 32) a = _mm512_dpbf16_ps(a, LoadBh(wr + i), LoadBh(xr + i));
  Store(p, o, r, Tail(p, o, r, Sum16(AsV16(a))));
}

// Outputs o .. o + 3 for rows r .. r + 3: each weight load serves four rows and each x load four
// outputs, sixteen accumulators. prefetch: the 4 weight rows two tiles on (from L2/L3 into L2),
// on the first row tile of each output tile.
MSWA_BF16 void Tile4x4(const Product& p, int64_t o, int64_t r, bool prefetch) {
  const int64_t in = p.in, in32 = in / 32 * 32;
  const Bf16* w0 = p.w + o * in;
  const Bf16* x0 = p.x + r * in;
  const char* ahead = reinterpret_cast<const char*>(p.w + (o + 8) * in);
  __m512 a[16];
  for (int k = 0; k < 16; ++k) a[k] = _mm512_setzero_ps();
  for (int64_t i = 0; i < in32; i += 32) {
    if (prefetch) {
      // 4 rows x 64 bytes per step: 4 lines, walking the next tiles' contiguous rows.
      for (int k = 0; k < 4; ++k) __builtin_prefetch(ahead + 2 * 4 * i + 64 * k, 0, 2);
    }
    __m512bh u[4], v[4];
    for (int j = 0; j < 4; ++j) u[j] = LoadBh(w0 + j * in + i);
    for (int k = 0; k < 4; ++k) v[k] = LoadBh(x0 + k * in + i);
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 4; ++k) a[4 * j + k] = _mm512_dpbf16_ps(a[4 * j + k], u[j], v[k]);
    }
  }
  V16 av[16];
  for (int k = 0; k < 16; ++k) av[k] = AsV16(a[k]);
  const V16 sums = Fold16(av);
  for (int j = 0; j < 4; ++j) {
    for (int k = 0; k < 4; ++k) Store(p, o + j, r + k, Tail(p, o + j, r + k, sums[4 * j + k]));
  }
}

// Outputs o .. o + 7 for row r (a batch-1 decode): the eight weight rows one after another, so
// that the weights are read as one sequential stream, and the range two tiles ahead prefetched
// into L2 alongside. One accumulator per row, over the columns in order as Tile4x4's: a token's
// products are the same bits in a prompt and in a decode step. (Reading the eight rows side by
// side, a line of each per step, streamed slower: see docs/benchmarks.md.)
MSWA_BF16 void Tile8x1(const Product& p, int64_t o, int64_t r, bool prefetch) {
  const int64_t in = p.in, in32 = in / 32 * 32;
  const Bf16* w0 = p.w + o * in;
  const Bf16* xr = p.x + r * in;
  const char* pf = reinterpret_cast<const char*>(p.w + (o + 16) * in);  // two tiles ahead
  __m512 a[8];
  for (int j = 0; j < 8; ++j) {
    a[j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < in32; i += 32) {
      if (prefetch && i % 64 == 0) {
        __builtin_prefetch(pf, 0, 2);
        __builtin_prefetch(pf + 64, 0, 2);
        pf += 128;
      }
      a[j] = _mm512_dpbf16_ps(a[j], LoadBh(w0 + j * in + i), LoadBh(xr + i));
    }
  }
  const V16 sums = Fold8(AsV16(a[0]), AsV16(a[1]), AsV16(a[2]), AsV16(a[3]), AsV16(a[4]),
                         AsV16(a[5]), AsV16(a[6]), AsV16(a[7]));
  for (int j = 0; j < 8; ++j) Store(p, o + j, r, Tail(p, o + j, r, sums[2 * j]));
}

}  // namespace

MSWA_BF16_TARGET
void ChunkAvx512Bf16(const Product& p, int64_t begin, int64_t end) {
  const int64_t rows4 = p.rows / 4 * 4;
  if (rows4 > 0) {
    // Rows in blocks whose bfloat16 x stays in L2 (~384 KiB) while every output tile of the
    // chunk passes over it: the weights are then read once per block, x from L2 per tile.
    const int64_t block = std::max<int64_t>(4, (int64_t{384} << 10) / (2 * p.in) / 4 * 4);
    const int64_t o4_end = begin + (end - begin) / 4 * 4;
    for (int64_t rb = 0; rb < rows4; rb += block) {
      const int64_t rb_end = std::min(rows4, rb + block);
      for (int64_t o = begin; o < o4_end; o += 4) {
        const bool prefetch = o + 12 <= o4_end;
        for (int64_t r = rb; r < rb_end; r += 4) Tile4x4(p, o, r, prefetch && r == rb);
      }
      for (int64_t o = o4_end; o < end; ++o) {
        for (int64_t r = rb; r < rb_end; ++r) Single(p, o, r);
      }
    }
  }
  const int64_t o8_end = begin + (end - begin) / 8 * 8;
  for (int64_t r = rows4; r < p.rows; ++r) {
    for (int64_t o = begin; o < o8_end; o += 8) Tile8x1(p, o, r, o + 24 <= o8_end);
    for (int64_t o = o8_end; o < end; ++o) Single(p, o, r);
  }
}

#else  // !MSWA_BF16_X86

bool CpuHasAvx512Bf16() { return false; }
void ChunkAvx512Bf16(const Product&, int64_t, int64_t) {}

#endif

}  // namespace bf16dot
}  // namespace mswa
