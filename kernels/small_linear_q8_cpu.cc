// SmallLinear's int8 x int8 products (kernels/small_linear_q8.h): one AVX-512 VNNI and one AVX2
// version, each compiled for its instruction set by function attributes and chosen at run time
// (kernels/small_linear_cpu.cc), so the binary still runs on any x86-64.
#include "kernels/small_linear_q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// GCC 12's masked AVX-512 intrinsics start from an undefined vector, which its flow analysis
// reports as maybe-uninitialized at every use.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define MSWA_Q8_X86 1
#endif

namespace mswa {
namespace q8 {

#if MSWA_Q8_X86

bool CpuHasAvx512Vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
  return has;
}
bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

namespace {

#define MSWA_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma")))
#define MSWA_VNNI MSWA_VNNI_TARGET __attribute__((always_inline)) inline
#define MSWA_AVX2_TARGET __attribute__((target("avx2,fma")))
#define MSWA_AVX2 MSWA_AVX2_TARGET __attribute__((always_inline)) inline

// Group scales s[0] in lanes 0-7 and s[1] in lanes 8-15: vpdpbusd's lane l sums bytes 4l..4l+3
// of a 64-byte chunk, so lanes 0-7 hold the chunk's first group and 8-15 its second.
MSWA_VNNI __m512 PairScales(const float* s) {
  double pair;
  std::memcpy(&pair, s, sizeof(pair));
  const __m512 alternating = _mm512_castpd_ps(_mm512_set1_pd(pair));
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               alternating);
}

// Chunk c of rows r .. r + kR - 1 of x. vpdpbusd multiplies unsigned by signed bytes: the
// weights take the unsigned side as w + 128 (flipping the sign bit of an int8 adds 128 mod 256),
// so each dot product comes out as sum(w x) + 128 sum(x). The 128 sum(x) of each lane's four
// bytes is computed here, once per row and chunk, and starts every output's sum negated
// (`start`): one vpdpbusd per output and row. xsv: the chunk's two group scales on their lanes.
template <int kR>
MSWA_VNNI void LoadXChunk(const Product& p, int64_t r, int64_t c, __m512i* xv, __m512i* start, __m512* xsv) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int rr = 0; rr < kR; ++rr) {
    xv[rr] = _mm512_loadu_si512(p.xq + (r + rr) * p.in + 64 * c);
    start[rr] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv[rr]));
    xsv[rr] = PairScales(p.xs + (r + rr) * p.groups + 2 * c);
  }
}

// kO outputs x kR rows of x, starting at output o and row r: each weight chunk is loaded once for
// the kR rows, each x chunk once for the kO outputs. prefetch: kO * in bytes to prefetch into L2
// over the tile, a line per weight chunk, or nullptr.
template <int kO, int kR>
MSWA_VNNI void TileVnni(const Product& p, int64_t o, int64_t r, const int8_t* prefetch) {
  __m512 acc[kO][kR];
  for (int oo = 0; oo < kO; ++oo) {
    for (int rr = 0; rr < kR; ++rr) acc[oo][rr] = _mm512_setzero_ps();
  }
  const int64_t in = p.in, chunks = in / 64;
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t c = 0; c < chunks; ++c) {
    __m512i xv[kR], start[kR];
    __m512 xsv[kR];
    LoadXChunk<kR>(p, r, c, xv, start, xsv);
    for (int oo = 0; oo < kO; ++oo) {
      if (prefetch != nullptr) _mm_prefetch(reinterpret_cast<const char*>(prefetch + (c * kO + oo) * 64), _MM_HINT_T1);
      const __m512i wu = _mm512_xor_si512(_mm512_loadu_si512(p.w.q + (o + oo) * in + 64 * c), bias);
      const __m512 wsv = PairScales(p.w.scales + (o + oo) * p.groups + 2 * c);
      for (int rr = 0; rr < kR; ++rr) {
        const __m512i dots = _mm512_dpbusd_epi32(start[rr], wu, xv[rr]);
        acc[oo][rr] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(wsv, xsv[rr]), acc[oo][rr]);
      }
    }
  }
  for (int rr = 0; rr < kR; ++rr) {
    float* yr = p.y + (r + rr) * p.y_stride + o;
    for (int oo = 0; oo < kO; ++oo) {
      const float sum = _mm512_reduce_add_ps(acc[oo][rr]);
      yr[oo] = p.accumulate ? yr[oo] + sum : sum;
    }
  }
}

// Every row of x for outputs [o, o + kO): tiles of 4 rows, then the rows left over.
template <int kO>
MSWA_VNNI void ColumnVnni(const Product& p, int64_t o, const int8_t* prefetch) {
  const int64_t r4 = p.rows / 4 * 4;
  for (int64_t r = 0; r < r4; r += 4) TileVnni<kO, 4>(p, o, r, r == 0 ? prefetch : nullptr);
  switch (p.rows - r4) {
    case 1: TileVnni<kO, 1>(p, o, r4, r4 == 0 ? prefetch : nullptr); break;
    case 2: TileVnni<kO, 2>(p, o, r4, r4 == 0 ? prefetch : nullptr); break;
    case 3: TileVnni<kO, 3>(p, o, r4, r4 == 0 ? prefetch : nullptr); break;
    default: break;
  }
}

// The weights two tiles ahead are prefetched into L2, in address order, a line per weight
// chunk the tile reads. The hardware prefetcher alone kept a one-row decode at about half the
// bandwidth a plain read of the same matrices gets (kO rows read a line at a time, 64 * in
// bytes apart, do not look like a stream to it); one tile ahead was too close, and into L1
// evicted lines still to be read.
inline constexpr int64_t kPrefetchTiles = 2;

template <int kO>
MSWA_VNNI void OutputsVnni(const Product& p, int64_t begin, int64_t end) {
  const int64_t tiles_end = begin + (end - begin) / kO * kO;
  const int8_t* stop = p.w.q + end * p.in;
  // The tile after the first is asked for now (the loop prefetches from the third on): a
  // product starts cold, its matrix last read a token ago.
  for (const int8_t* line = p.w.q + (begin + kO) * p.in;
       line < std::min(stop, p.w.q + (begin + 2 * kO) * p.in); line += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T1);
  }
  for (int64_t o = begin; o < tiles_end; o += kO) {
    const int8_t* ahead = p.w.q + (o + kPrefetchTiles * kO) * p.in;
    ColumnVnni<kO>(p, o, ahead < stop ? ahead : nullptr);
  }
  for (int64_t o = tiles_end; o < end; ++o) ColumnVnni<1>(p, o, nullptr);
}

MSWA_AVX2 float Sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The 32 weights of group g of a row that starts at w: kRows bytes as they are; kRowsQ4's 16
// bytes widened (the low nibbles are values 0 .. 15 of the group, the high ones 16 .. 31) and
// moved from 0 .. 15 to -8 .. 7, the bytes a kRows matrix of the same values holds.
template <bool kQ4>
MSWA_AVX2 __m256i GroupAvx2(const int8_t* w, int64_t g) {
  if constexpr (!kQ4) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * g));
  } else {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16 * g));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(b, nibble), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nibble);
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
  }
}

// One row of x, kO outputs from o on, one 32-value group per step; w: output o's weights, each
// next output's row_bytes further; prefetch: the same for the tile to be read next, or null.
// (Sixteen ymm registers leave no room for row tiles: several rows of x take the tile one after
// another, its weights then in L1.)
template <int kO, bool kQ4>
MSWA_AVX2 void TileAvx2(const Product& p, const int8_t* w, int64_t row_bytes, int64_t o, int64_t r,
                        const int8_t* prefetch) {
  __m256 acc[kO];
  for (int oo = 0; oo < kO; ++oo) acc[oo] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t in = p.in;
  for (int64_t g = 0; g < p.groups; ++g) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.xq + r * in + 32 * g));
    const __m256i xa = _mm256_sign_epi8(xv, xv);  // |x|, as unsigned bytes <= 127
    const float xs = p.xs[r * p.groups + g];
    for (int oo = 0; oo < kO; ++oo) {
      if (prefetch != nullptr) {
        _mm_prefetch(reinterpret_cast<const char*>(prefetch + oo * row_bytes + (kQ4 ? 16 : 32) * g), _MM_HINT_T0);
      }
      const __m256i wg = GroupAvx2<kQ4>(w + oo * row_bytes, g);
      // |x| * (w with x's sign) = x * w; pairs summed in int16 (<= 2 * 127 * 127), then in int32.
      const __m256i pairs = _mm256_maddubs_epi16(xa, _mm256_sign_epi8(wg, xv));
      const __m256i dots = _mm256_madd_epi16(pairs, ones);
      const __m256 scale = _mm256_set1_ps(p.w.scales[(o + oo) * p.groups + g] * xs);
      acc[oo] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), scale, acc[oo]);
    }
  }
  float* yr = p.y + r * p.y_stride + o;
  for (int oo = 0; oo < kO; ++oo) {
    const float sum = Sum8(acc[oo]);
    yr[oo] = p.accumulate ? yr[oo] + sum : sum;
  }
}

}  // namespace

namespace {

// One group of 32 values of x with AVX-512: the same operations as the scalar loop below lane
// by lane (|x| max, scale = max / 127, x * (1 / scale) rounded to nearest even by vcvtps2dq as
// lrint does, in [-127, 127] by construction), so both give the same bytes. Returns the scale;
// q[h] holds bytes 16 h .. 16 h + 15.
MSWA_VNNI float QuantizeGroup(const float* xg, __m128i q[2]) {
  const __m512 sign = _mm512_set1_ps(-0.f);
  const __m512 lo = _mm512_loadu_ps(xg), hi = _mm512_loadu_ps(xg + 16);
  const float max_abs = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, lo), _mm512_andnot_ps(sign, hi)));
  const float scale = max_abs / 127.f;
  const __m512 inv = _mm512_set1_ps(scale > 0.f ? 1.f / scale : 0.f);
  q[0] = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)));
  q[1] = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(hi, inv)));
  return scale;
}

// QuantizeActivations for whole groups of 32, in row order.
MSWA_VNNI_TARGET void QuantizeGroupsAvx512(const float* x, int64_t rows, int64_t in, int8_t* xq, float* xs) {
  const int64_t groups = in / kInt8Group;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      __m128i q[2];
      xs[r * groups + g] = QuantizeGroup(x + r * in + g * kInt8Group, q);
      __m128i* out = reinterpret_cast<__m128i*>(xq + r * in + g * kInt8Group);
      _mm_storeu_si128(out, q[0]);
      _mm_storeu_si128(out + 1, q[1]);
    }
  }
}

}  // namespace

void QuantizeActivations(const float* x, int64_t rows, int64_t in, int8_t* xq, float* xs) {
  const int64_t groups = Int8Groups(in);
  if (in % kInt8Group == 0 && CpuHasAvx512Vnni()) return QuantizeGroupsAvx512(x, rows, in, xq, xs);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t begin = g * kInt8Group, end = std::min(in, begin + kInt8Group);
      const float* xr = x + r * in;
      float max_abs = 0.f;
      for (int64_t i = begin; i < end; ++i) max_abs = std::max(max_abs, std::fabs(xr[i]));
      const float scale = max_abs / 127.f;
      xs[r * groups + g] = scale;
      const float inv = scale > 0.f ? 1.f / scale : 0.f;
      for (int64_t i = begin; i < end; ++i) {
        const long q = std::lrint(xr[i] * inv);
        xq[r * in + i] = static_cast<int8_t>(std::clamp(q, -127L, 127L));
      }
    }
  }
}

MSWA_VNNI_TARGET void ChunkAvx512Vnni(const Product& p, int64_t begin, int64_t end) {
  // One row: eight weight rows in flight (as the fp32 kernel's one-row tiles); several rows:
  // tiles of 4 x 4, sixteen accumulators in registers.
  if (p.rows == 1) return OutputsVnni<8>(p, begin, end);
  OutputsVnni<4>(p, begin, end);
}

namespace {

// Several rows of x and a kRowsQ4 matrix: each tile's 4-bit rows widened once into int8 rows
// (in L1), then read for every row of x as a kRows matrix is, with the same bytes and so the
// same outputs.
MSWA_AVX2 void WidenedTilesAvx2(const Product& p, int64_t begin, int64_t end) {
  const int64_t in = p.in, row_bytes = in / 2;
  thread_local std::vector<int8_t> wide;
  wide.resize(4 * in);
  for (int64_t o = begin; o < end; o += 4) {
    const int n = static_cast<int>(std::min<int64_t>(4, end - o));
    for (int oo = 0; oo < n; ++oo) {
      for (int64_t g = 0; g < p.groups; ++g) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(wide.data() + oo * in + 32 * g),
                            GroupAvx2<true>(p.w.q + (o + oo) * row_bytes, g));
      }
    }
    for (int64_t r = 0; r < p.rows; ++r) {
      if (n == 4) {
        TileAvx2<4, false>(p, wide.data(), in, o, r, nullptr);
      } else {
        for (int oo = 0; oo < n; ++oo) TileAvx2<1, false>(p, wide.data() + oo * in, in, o + oo, r, nullptr);
      }
    }
  }
}

template <bool kQ4>
MSWA_AVX2 void OutputsAvx2(const Product& p, int64_t begin, int64_t end) {
  const int64_t in = p.in, row_bytes = kQ4 ? in / 2 : in;
  const int64_t tiles_end = begin + (end - begin) / 4 * 4;
  if constexpr (kQ4) {
    if (p.rows > 1) return WidenedTilesAvx2(p, begin, end);
  }
  // Each tile of 4 outputs for every row of x in turn, so its weights are read from memory once.
  for (int64_t o = begin; o < tiles_end; o += 4) {
    const int8_t* ahead = o + 8 <= tiles_end ? p.w.q + (o + 4) * row_bytes : nullptr;
    for (int64_t r = 0; r < p.rows; ++r) {
      TileAvx2<4, kQ4>(p, p.w.q + o * row_bytes, row_bytes, o, r, r == 0 ? ahead : nullptr);
    }
  }
  for (int64_t o = tiles_end; o < end; ++o) {
    for (int64_t r = 0; r < p.rows; ++r) TileAvx2<1, kQ4>(p, p.w.q + o * row_bytes, row_bytes, o, r, nullptr);
  }
}

}  // namespace

MSWA_AVX2_TARGET void ChunkAvx2(const Product& p, int64_t begin, int64_t end) { OutputsAvx2<false>(p, begin, end); }

MSWA_AVX2_TARGET void ChunkAvx2Q4(const Product& p, int64_t begin, int64_t end) { OutputsAvx2<true>(p, begin, end); }

#else  // not x86-64: only the widened fp32 kernel exists.

bool CpuHasAvx512Vnni() { return false; }
bool CpuHasAvx2() { return false; }
void QuantizeActivations(const float*, int64_t, int64_t, int8_t*, float*) {}
void ChunkAvx512Vnni(const Product&, int64_t, int64_t) {}
void ChunkAvx2(const Product&, int64_t, int64_t) {}
void ChunkAvx2Q4(const Product&, int64_t, int64_t) {}

#endif

}  // namespace q8
}  // namespace mswa
