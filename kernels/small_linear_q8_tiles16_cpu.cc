// SmallLinear's int8 products over Int8Layout::kTiles16 (kernels/small_linear_q8.h): the
// AVX-512 VNNI kernel and the AMX-INT8 one. Both sum each output's 32-column groups exactly in
// int32 and scale each group once, in the same order with the same fp32 operations, so a row's
// outputs are the same bits whichever runs: the tile unit can take the products of many rows
// (prompts, batches) and VNNI the one-row ones, and a token still does not change with its step.
//
// The layout's lanes are outputs: one 64-byte vector holds 4 columns of 16 outputs, multiplied
// against one broadcast 4-byte unit of x. That is the tile unit's B operand as it is (8 lines
// of 64 bytes per group), and on VNNI it leaves the scaling at 2 fp32 operations per 8 vpdpbusd
// and no horizontal sums (a lane per 4 columns instead needs every vpdpbusd scaled, 3 more
// operations each, and a sum across the lanes at the end).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/amx.h"
#include "kernels/small_linear_q8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define MSWA_TILES16_X86 1
#endif

namespace mswa {
namespace q8 {

void XSums128(const int8_t* xq, int64_t rows, int64_t in, int32_t* out) {
  const int64_t groups = in / kInt8Group;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int8_t* v = xq + r * in + g * kInt8Group;
      int32_t sum = 0;
      for (int64_t i = 0; i < kInt8Group; ++i) sum += v[i];
      out[r * groups + g] = 128 * sum;
    }
  }
}

#if MSWA_TILES16_X86

namespace {

#define MSWA_T16_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma")))
#define MSWA_T16_VNNI MSWA_T16_VNNI_TARGET __attribute__((always_inline)) inline

// A group's bytes, and its 16 weight scales after its weights: 8 vectors, or q4's 4.
template <bool kQ4>
struct Group {
  static constexpr int64_t kBytes = kQ4 ? kQ4Tile16GroupBytes : kInt8Tile16GroupBytes;
  static constexpr int64_t kWeightBytes = kInt8Tile16Rows * kInt8Group / (kQ4 ? 2 : 1);
  static const float* Scales(const int8_t* group) { return reinterpret_cast<const float*>(group + kWeightBytes); }
};

// Vector j (0 .. 3) of a q4 group as kTiles16's units j and j + 4: the low and high nibbles,
// each 0 .. 15 (q + 8).
MSWA_T16_VNNI void Nibbles(__m512i v, __m512i* low, __m512i* high) {
  const __m512i mask = _mm512_set1_epi8(0x0F);
  *low = _mm512_and_si512(v, mask);
  *high = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
}

// Sums of one group (int32, 16 outputs) into the fp32 accumulator: the one scaling step both
// kernels share, written once so that they cannot drift apart.
MSWA_T16_VNNI __m512 Scale(__m512i sums, __m512 w_scales, float x_scale, __m512 acc) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(w_scales, _mm512_set1_ps(x_scale)), acc);
}

// Outputs o .. o + 15 of row r from the accumulator (the padding rows of the last tile left out).
MSWA_T16_VNNI void Store(const Product& p, __m512 acc, int64_t o, int64_t r) {
  const int64_t n = std::min<int64_t>(kInt8Tile16Rows, p.w.out - o);
  if (n <= 0) return;
  const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
  float* yr = p.y + r * p.y_stride + o;
  if (p.accumulate) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, yr), acc);
  _mm512_mask_storeu_ps(yr, mask, acc);
}

// kT tiles (from `tile`, tile_bytes apart; outputs from o) x kR rows of x from r. vpdpbusd
// multiplies unsigned by signed bytes: the weights take the unsigned side as w + 128 (the sign
// bit flipped; q4's nibbles are q + 8 as they lie), so each group's sums start at -128 sum(x)
// (XSums128; a sixteenth of it for q4) and come out exact. prefetch: the weights that far past
// each group read are asked into L2 (0: none) up to stop.
template <int kT, int kR, bool kQ4>
MSWA_T16_VNNI void TilesVnni(const Product& p, const int8_t* tile, int64_t tile_bytes, int64_t o, int64_t r,
                             int64_t prefetch, const int8_t* stop) {
  using G = Group<kQ4>;
  __m512 acc[kT][kR];
  for (int t = 0; t < kT; ++t) {
    for (int rr = 0; rr < kR; ++rr) acc[t][rr] = _mm512_setzero_ps();
  }
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t g = 0; g < p.groups; ++g) {
    const int8_t* group = tile + g * G::kBytes;
    if (prefetch > 0) {
      for (int t = 0; t < kT; ++t) {
        const int8_t* ahead = group + t * tile_bytes + prefetch;
        for (int64_t line = 0; line < G::kBytes && ahead + line < stop; line += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(ahead + line), _MM_HINT_T1);
        }
      }
    }
    __m512i sums[kT][kR];
    for (int rr = 0; rr < kR; ++rr) {
      const int32_t xsum128 = p.xsum128[(r + rr) * p.groups + g];
      const __m512i start = _mm512_set1_epi32(-(kQ4 ? xsum128 / 16 : xsum128));
      for (int t = 0; t < kT; ++t) sums[t][rr] = start;
    }
    const int8_t* xg = p.xq + r * p.in + g * kInt8Group;
    // Units k and, for q4, k + 4 (the same vector's high nibbles).
    for (int k = 0; k < (kQ4 ? 4 : 8); ++k) {
      __m512i wu[kT], wu_high[kT];
      for (int t = 0; t < kT; ++t) {
        const __m512i v = _mm512_loadu_si512(group + t * tile_bytes + 64 * k);
        if constexpr (kQ4) {
          Nibbles(v, &wu[t], &wu_high[t]);
        } else {
          wu[t] = _mm512_xor_si512(v, flip);
        }
      }
      for (int rr = 0; rr < kR; ++rr) {
        int32_t unit;
        std::memcpy(&unit, xg + rr * p.in + 4 * k, sizeof(unit));
        const __m512i xb = _mm512_set1_epi32(unit);
        for (int t = 0; t < kT; ++t) sums[t][rr] = _mm512_dpbusd_epi32(sums[t][rr], wu[t], xb);
        if constexpr (kQ4) {
          std::memcpy(&unit, xg + rr * p.in + 4 * (k + 4), sizeof(unit));
          const __m512i xb_high = _mm512_set1_epi32(unit);
          for (int t = 0; t < kT; ++t) sums[t][rr] = _mm512_dpbusd_epi32(sums[t][rr], wu_high[t], xb_high);
        }
      }
    }
    for (int t = 0; t < kT; ++t) {
      const __m512 ws = _mm512_loadu_ps(G::Scales(group + t * tile_bytes));
      for (int rr = 0; rr < kR; ++rr) acc[t][rr] = Scale(sums[t][rr], ws, p.xs[(r + rr) * p.groups + g], acc[t][rr]);
    }
  }
  for (int t = 0; t < kT; ++t) {
    for (int rr = 0; rr < kR; ++rr) Store(p, acc[t][rr], o + t * kInt8Tile16Rows, r + rr);
  }
}

// kT tiles for every row of x: 4 rows at a time, then the rows left over.
template <int kT, bool kQ4>
MSWA_T16_VNNI void TilesAllRows(const Product& p, const int8_t* tile, int64_t tile_bytes, int64_t o,
                                int64_t prefetch, const int8_t* stop) {
  const int64_t r4 = p.rows / 4 * 4;
  for (int64_t r = 0; r < r4; r += 4) TilesVnni<kT, 4, kQ4>(p, tile, tile_bytes, o, r, r == 0 ? prefetch : 0, stop);
  const int64_t rest_prefetch = r4 == 0 ? prefetch : 0;
  switch (p.rows - r4) {
    case 1: TilesVnni<kT, 1, kQ4>(p, tile, tile_bytes, o, r4, rest_prefetch, stop); break;
    case 2: TilesVnni<kT, 2, kQ4>(p, tile, tile_bytes, o, r4, rest_prefetch, stop); break;
    case 3: TilesVnni<kT, 3, kQ4>(p, tile, tile_bytes, o, r4, rest_prefetch, stop); break;
    default: break;
  }
}

// The tiles of outputs [begin, end), kT at a time (one row of x: 4, so 64 outputs' weights
// stream in at once; several: 2, sixteen accumulators and sixteen sums in registers), each pass
// prefetching the next pass's weights into L2 as it reads its own.
template <int kT, bool kQ4>
MSWA_T16_VNNI void OutputsVnni(const Product& p, int64_t begin, int64_t end) {
  const int64_t tile_bytes = p.groups * Group<kQ4>::kBytes;
  const int64_t tiles = (end - begin + kInt8Tile16Rows - 1) / kInt8Tile16Rows;
  const int8_t* first = p.w.q + begin / kInt8Tile16Rows * tile_bytes;
  const int8_t* stop = first + tiles * tile_bytes;
  int64_t t = 0;
  for (; t + kT <= tiles; t += kT) {
    TilesAllRows<kT, kQ4>(p, first + t * tile_bytes, tile_bytes, begin + t * kInt8Tile16Rows, kT * tile_bytes, stop);
  }
  for (; t < tiles; ++t) {
    TilesAllRows<1, kQ4>(p, first + t * tile_bytes, tile_bytes, begin + t * kInt8Tile16Rows, 0, stop);
  }
}

}  // namespace

MSWA_T16_VNNI_TARGET void ChunkAvx512VnniTiles16(const Product& p, int64_t begin, int64_t end) {
  if (p.rows == 1) return OutputsVnni<4, false>(p, begin, end);
  OutputsVnni<2, false>(p, begin, end);
}

MSWA_T16_VNNI_TARGET void ChunkAvx512VnniTiles16Q4(const Product& p, int64_t begin, int64_t end) {
  if (p.rows == 1) return OutputsVnni<4, true>(p, begin, end);
  OutputsVnni<2, true>(p, begin, end);
}

#if MSWA_AMX_X86

namespace {

#define MSWA_T16_AMX_TARGET __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma")))
#define MSWA_T16_AMX MSWA_T16_AMX_TARGET __attribute__((always_inline)) inline

// Tiles: 0-1 the sums of two groups in turn, 2-3 their rows of x (A), 4-5 their weights (B).
MSWA_T16_AMX_TARGET void Configure(int64_t m) {
  amx::TileConfig cfg;
  for (int t = 0; t < 2; ++t) {
    cfg.rows[t] = static_cast<uint8_t>(m);
    cfg.colsb[t] = 64;
    cfg.rows[2 + t] = static_cast<uint8_t>(m);
    cfg.colsb[2 + t] = kInt8Group;
    cfg.rows[4 + t] = kInt8Group / 4;
    cfg.colsb[4 + t] = 64;
  }
  amx::LoadConfig(cfg);
}

// Group g's sums for m rows of x from xg (their first group) and 16 outputs, into sums tile kC
// (Multiply), then stored as m lines of 16 int32 (StoreSums). (GCC's tile intrinsics take their
// tile numbers as literals.)
template <int kC>
MSWA_T16_AMX void Multiply(const Product& p, const int8_t* tile, const int8_t* xg, int64_t g) {
  const int8_t* x = xg + g * kInt8Group;
  const int8_t* w = tile + g * kInt8Tile16GroupBytes;
  if constexpr (kC == 0) {
    _tile_zero(0);
    _tile_loadd(2, x, p.in);
    _tile_loadd(4, w, 64);
    _tile_dpbssd(0, 2, 4);
  } else {
    _tile_zero(1);
    _tile_loadd(3, x, p.in);
    _tile_loadd(5, w, 64);
    _tile_dpbssd(1, 3, 5);
  }
}
template <int kC>
MSWA_T16_AMX void StoreSums(int32_t* sums) {
  if constexpr (kC == 0) {
    _tile_stored(0, sums, 64);
  } else {
    _tile_stored(1, sums, 64);
  }
}

// Group g's sums of m rows (lines of `sums`) scaled into acc. All kM lines are scaled, those
// past m (zeros: the unit stores m) by the last row's scale, and never stored: branches on m
// kept the accumulators on the stack. The loops unrolled early for the same reason.
template <int kM>
MSWA_T16_AMX void ScaleSums(const Product& p, const int8_t* tile, const int32_t* sums, int64_t g, int64_t r,
                            int64_t m, __m512 (&acc)[kM]) {
  const __m512 ws = _mm512_loadu_ps(Group<false>::Scales(tile + g * kInt8Tile16GroupBytes));
  const float* xs = p.xs + r * p.groups + g;
#pragma GCC unroll 16
  for (int i = 0; i < kM; ++i) {
    const int64_t row = std::min<int64_t>(i, m - 1);
    acc[i] = Scale(_mm512_load_si512(sums + 16 * i), ws, xs[row * p.groups], acc[i]);
  }
}

// One tile of 16 outputs (from o) x m <= kM rows of x from r. The unit multiplies group g + 1
// while AVX-512 scales group g's sums (two sums tiles in turn), so neither waits on the other.
template <int kM>
MSWA_T16_AMX void TileAmx(const Product& p, const int8_t* tile, int64_t o, int64_t r, int64_t m,
                          int64_t prefetch, const int8_t* stop) {
  __m512 acc[kM];
#pragma GCC unroll 16
  for (int i = 0; i < kM; ++i) acc[i] = _mm512_setzero_ps();
  alignas(64) int32_t sums[2][kInt8Tile16Rows * 16] = {};
  const int8_t* xg = p.xq + r * p.in;
  const int64_t groups = p.groups;
  Multiply<0>(p, tile, xg, 0);
  for (int64_t g = 0; g < groups; g += 2) {
    if (prefetch > 0) {
      const int8_t* ahead = tile + g * kInt8Tile16GroupBytes + prefetch;
      for (int64_t line = 0; line < 2 * kInt8Tile16GroupBytes && ahead + line < stop; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead + line), _MM_HINT_T1);
      }
    }
    if (g + 1 < groups) Multiply<1>(p, tile, xg, g + 1);
    StoreSums<0>(sums[0]);
    ScaleSums<kM>(p, tile, sums[0], g, r, m, acc);
    if (g + 1 < groups) {
      if (g + 2 < groups) Multiply<0>(p, tile, xg, g + 2);
      StoreSums<1>(sums[1]);
      ScaleSums<kM>(p, tile, sums[1], g + 1, r, m, acc);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kM; ++i) {
    if (i < m) Store(p, acc[i], o, r + i);
  }
}

// Every tile of outputs [begin, end) for rows [r, r + m) of x (m <= kM); the first block of rows
// prefetches the next tile as it reads its own.
template <int kM>
MSWA_T16_AMX void BlockAmx(const Product& p, int64_t begin, int64_t end, int64_t r, int64_t m) {
  const int64_t tile_bytes = p.groups * kInt8Tile16GroupBytes;
  const int64_t tiles = (end - begin + kInt8Tile16Rows - 1) / kInt8Tile16Rows;
  const int8_t* first = p.w.q + begin / kInt8Tile16Rows * tile_bytes;
  const int8_t* stop = first + tiles * tile_bytes;
  for (int64_t t = 0; t < tiles; ++t) {
    TileAmx<kM>(p, first + t * tile_bytes, begin + t * kInt8Tile16Rows, r, m, r == 0 ? tile_bytes : 0, stop);
  }
}

// Rows [0, p.rows) of x for one tile from o, in blocks of 16 rows (the shapes loaded anew only
// where a block's rows differ from the last one's, `*configured`).
MSWA_T16_AMX void AllRowsAmx(const Product& p, const int8_t* tile, int64_t o, int64_t* configured) {
  for (int64_t r = 0; r < p.rows; r += kInt8Tile16Rows) {
    const int64_t m = std::min<int64_t>(kInt8Tile16Rows, p.rows - r);
    if (m != *configured) {
      Configure(m);
      *configured = m;
    }
    if (m == 1) {
      TileAmx<1>(p, tile, o, r, m, 0, nullptr);
    } else if (m <= 2) {
      TileAmx<2>(p, tile, o, r, m, 0, nullptr);
    } else if (m <= 4) {
      TileAmx<4>(p, tile, o, r, m, 0, nullptr);
    } else if (m <= 8) {
      TileAmx<8>(p, tile, o, r, m, 0, nullptr);
    } else {
      TileAmx<16>(p, tile, o, r, m, 0, nullptr);
    }
  }
}

// A kTiles16Q4 tile widened into kTiles16's bytes (q, signed, for tdpbssd) and scales.
MSWA_T16_AMX void WidenQ4Tile(const int8_t* q4, int64_t groups, int8_t* wide) {
  const __m512i eight = _mm512_set1_epi8(8);
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* from = q4 + g * kQ4Tile16GroupBytes;
    int8_t* to = wide + g * kInt8Tile16GroupBytes;
    for (int j = 0; j < 4; ++j) {
      __m512i low, high;
      Nibbles(_mm512_loadu_si512(from + 64 * j), &low, &high);
      _mm512_storeu_si512(to + 64 * j, _mm512_sub_epi8(low, eight));
      _mm512_storeu_si512(to + 64 * (j + 4), _mm512_sub_epi8(high, eight));
    }
    _mm512_storeu_si512(to + Group<false>::kWeightBytes, _mm512_loadu_si512(Group<true>::Scales(from)));
  }
}

}  // namespace

bool CpuHasAmxInt8() {
  static const bool has = CpuHasAvx512Vnni() && amx::CpuAndOsHave(amx::Unit::kInt8);
  return has;
}

MSWA_T16_AMX_TARGET void ChunkAmxTiles16(const Product& p, int64_t begin, int64_t end) {
  // Blocks of 16 rows of x (the last one shorter), each over the whole range of outputs: the
  // range's weights come from memory for the first block, from L2 for the others.
  for (int64_t r = 0; r < p.rows; r += kInt8Tile16Rows) {
    const int64_t m = std::min<int64_t>(kInt8Tile16Rows, p.rows - r);
    Configure(m);
    if (m == 1) {
      BlockAmx<1>(p, begin, end, r, m);
    } else if (m <= 2) {
      BlockAmx<2>(p, begin, end, r, m);
    } else if (m <= 4) {
      BlockAmx<4>(p, begin, end, r, m);
    } else if (m <= 8) {
      BlockAmx<8>(p, begin, end, r, m);
    } else {
      BlockAmx<16>(p, begin, end, r, m);
    }
  }
}

MSWA_T16_AMX_TARGET void ChunkAmxTiles16Q4(const Product& p, int64_t begin, int64_t end) {
  // Each tile widened once into L1, then multiplied for every block of rows of x; the next
  // tile is prefetched into L2 meanwhile.
  const int64_t tile_bytes = p.groups * kQ4Tile16GroupBytes;
  thread_local std::vector<int8_t> wide;
  wide.resize(p.groups * kInt8Tile16GroupBytes);
  const int8_t* first = p.w.q + begin / kInt8Tile16Rows * tile_bytes;
  const int64_t tiles = (end - begin + kInt8Tile16Rows - 1) / kInt8Tile16Rows;
  int64_t configured = 0;
  for (int64_t t = 0; t < tiles; ++t) {
    const int8_t* tile = first + t * tile_bytes;
    if (t + 1 < tiles) {
      for (int64_t line = 0; line < tile_bytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(tile + tile_bytes + line), _MM_HINT_T1);
      }
    }
    WidenQ4Tile(tile, p.groups, wide.data());
    AllRowsAmx(p, wide.data(), begin + t * kInt8Tile16Rows, &configured);
  }
}

#else  // !MSWA_AMX_X86

bool CpuHasAmxInt8() { return false; }
void ChunkAmxTiles16(const Product&, int64_t, int64_t) {}
void ChunkAmxTiles16Q4(const Product&, int64_t, int64_t) {}

#endif

#else  // not x86-64

void ChunkAvx512VnniTiles16(const Product&, int64_t, int64_t) {}
void ChunkAvx512VnniTiles16Q4(const Product&, int64_t, int64_t) {}
bool CpuHasAmxInt8() { return false; }
void ChunkAmxTiles16(const Product&, int64_t, int64_t) {}
void ChunkAmxTiles16Q4(const Product&, int64_t, int64_t) {}

#endif

}  // namespace q8
}  // namespace mswa
