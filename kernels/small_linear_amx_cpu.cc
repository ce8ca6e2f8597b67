// SmallLinearBf16Dot's AMX kernel (kernels/small_linear_bf16.h): the tile unit of Sapphire
// Rapids and later Xeons multiplies a 16 x 32 bfloat16 tile by a 32 x 16 one into 16 x 16 fp32
// sums in one instruction (tdpbf16ps), 16 times vdpbf16ps's multiply-adds per cycle. The weights
// are the tiles' A operand as they lie ([out, in] rows, 32 columns a tile); the activations are
// packed once per product into B tiles (pairs of columns side by side, as the unit reads them).
// Every number of rows runs here, so a token's outputs are the same bits in any step.
#include "kernels/small_linear_bf16.h"

#include <algorithm>
#include <cstring>

#include "kernels/amx.h"
#include "kernels/vec16.h"

#if MSWA_AMX_X86
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mswa {
namespace bf16dot {

int64_t AmxColumns(int64_t rows) { return std::min<int64_t>(16, rows); }

int64_t AmxPackedSize(int64_t rows, int64_t in) {
  const int64_t n = AmxColumns(rows);
  return (rows + 15) / 16 * (in / 32) * 32 * n;
}

void PackForAmx(const Bf16* x, int64_t rows, int64_t in, Bf16* packed) {
  // packed[block of 16 rows][32 columns][16 column pairs][n][2]: each (block, 32 columns) is one
  // B tile, 16 lines of n pairs. Rows past the last of a partial block are zeros.
  const int64_t n = AmxColumns(rows), chunks = in / 32;
  for (int64_t b = 0; b < (rows + 15) / 16; ++b) {
    for (int64_t c = 0; c < chunks; ++c) {
      Bf16* tile = packed + (b * chunks + c) * 32 * n;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = b * 16 + j;
        for (int64_t i = 0; i < 16; ++i) {
          Bf16* pair = tile + (i * n + j) * 2;
          if (r < rows) {
            pair[0] = x[r * in + c * 32 + 2 * i];
            pair[1] = x[r * in + c * 32 + 2 * i + 1];
          } else {
            pair[0] = pair[1] = Bf16{};
          }
        }
      }
    }
  }
}

#if MSWA_AMX_X86

namespace {

#define MSWA_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f")))

// Tiles: 0-3 the sums (A tile a times B tile b in 2a + b), 4-5 weights (A), 6-7 activations (B).
// Loads the shapes for m outputs by n rows of x.
MSWA_AMX_TARGET void Configure(int64_t m, int64_t n) {
  amx::TileConfig cfg;
  for (int t = 0; t < 4; ++t) {
    cfg.rows[t] = static_cast<uint8_t>(m);
    cfg.colsb[t] = static_cast<uint16_t>(4 * n);
  }
  for (int t = 4; t < 6; ++t) {
    cfg.rows[t] = static_cast<uint8_t>(m);
    cfg.colsb[t] = 64;
  }
  for (int t = 6; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = static_cast<uint16_t>(4 * n);
  }
  amx::LoadConfig(cfg);
}

struct AmxProduct {
  const Product* p;
  const Bf16* packed;
  int64_t n;       // columns of a B tile (rows of x per block, 16 unless fewer in all)
  int64_t chunks;  // whole 32-column chunks of in
  int64_t blocks;  // blocks of 16 rows of x
};

// Sums of tile `t` (m outputs from o, rows of x from r) into y, after the columns past the last
// multiple of 32, added in order as the other kernels do.
MSWA_AMX_TARGET void Finish(const AmxProduct& a, const float* sums, int64_t m, int64_t o, int64_t r) {
  const Product& p = *a.p;
  const int64_t tail = p.in / 32 * 32;
  for (int64_t j = 0; j < a.n && r + j < p.rows; ++j) {
    const Bf16* xr = p.x + (r + j) * p.in;
    float* yr = p.y + (r + j) * p.y_stride;
    for (int64_t i = 0; i < m; ++i) {
      float dot = sums[i * 16 + j];
      const Bf16* wr = p.w + (o + i) * p.in;
      for (int64_t k = tail; k < p.in; ++k) dot += ToFloat(xr[k]) * ToFloat(wr[k]);
      yr[o + i] = p.accumulate ? yr[o + i] + dot : dot;
    }
  }
}

// kA weight tiles (16 outputs each, from o) times kB activation tiles (blocks b, b + 1).
template <int kA, int kB>
MSWA_AMX_TARGET void Block(const AmxProduct& a, int64_t m, int64_t o, int64_t b, bool prefetch) {
  const Product& p = *a.p;
  const int64_t w_stride = p.in * 2, x_stride = 4 * a.n, tile_elems = 32 * a.n;
  const Bf16* w0 = p.w + o * p.in;
  const Bf16* w1 = w0 + 16 * p.in;
  const Bf16* x0 = a.packed + b * a.chunks * tile_elems;
  const Bf16* x1 = x0 + a.chunks * tile_elems;
  const char* ahead = reinterpret_cast<const char*>(p.w + (o + 32 * kA) * p.in);
  _tile_zero(0);
  if (kB > 1) _tile_zero(1);
  if (kA > 1) _tile_zero(2);
  if (kA > 1 && kB > 1) _tile_zero(3);
  for (int64_t c = 0; c < a.chunks; ++c) {
    if (prefetch) {
      // The next weight tiles' lines of this chunk, from DRAM into L2 while these multiply.
      for (int64_t i = 0; i < 16 * kA; ++i) __builtin_prefetch(ahead + i * w_stride + c * 64, 0, 2);
    }
    if (c + 8 < a.chunks) {
      const char* near = reinterpret_cast<const char*>(w0 + (c + 8) * 32);
      for (int64_t i = 0; i < 16 * kA; ++i) __builtin_prefetch(near + i * w_stride, 0, 3);
    }
    _tile_loadd(4, w0 + c * 32, w_stride);
    if (kA > 1) _tile_loadd(5, w1 + c * 32, w_stride);
    _tile_loadd(6, x0 + c * tile_elems, x_stride);
    if (kB > 1) _tile_loadd(7, x1 + c * tile_elems, x_stride);
    _tile_dpbf16ps(0, 4, 6);
    if (kB > 1) _tile_dpbf16ps(1, 4, 7);
    if (kA > 1) _tile_dpbf16ps(2, 5, 6);
    if (kA > 1 && kB > 1) _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float sums[16 * 16];
  _tile_stored(0, sums, 64);
  Finish(a, sums, m, o, 16 * b);
  if (kB > 1) {
    _tile_stored(1, sums, 64);
    Finish(a, sums, m, o, 16 * (b + 1));
  }
  if (kA > 1) {
    _tile_stored(2, sums, 64);
    Finish(a, sums, m, o + 16, 16 * b);
  }
  if (kA > 1 && kB > 1) {
    _tile_stored(3, sums, 64);
    Finish(a, sums, m, o + 16, 16 * (b + 1));
  }
}

// Outputs [o, o + 16 kA) (m per tile) for every block of rows.
template <int kA>
MSWA_AMX_TARGET void Outputs(const AmxProduct& a, int64_t m, int64_t o, bool prefetch) {
  int64_t b = 0;
  for (; b + 2 <= a.blocks; b += 2) Block<kA, 2>(a, m, o, b, prefetch && b == 0);
  if (b < a.blocks) Block<kA, 1>(a, m, o, b, prefetch && b == 0);
}

}  // namespace

bool CpuHasAmxBf16() {
  static const bool has = amx::CpuAndOsHave(amx::Unit::kBf16);
  return has;
}

MSWA_AMX_TARGET
void ChunkAmxBf16(const Product& p, const Bf16* packed, int64_t begin, int64_t end) {
  const AmxProduct a{&p, packed, AmxColumns(p.rows), p.in / 32, (p.rows + 15) / 16};
  Configure(16, a.n);
  int64_t o = begin;
  if (a.blocks == 1) {
    for (; o + 16 <= end; o += 16) Outputs<1>(a, 16, o, o + 48 <= end);
  }
  for (; o + 32 <= end; o += 32) Outputs<2>(a, 16, o, o + 96 <= end);
  if (o + 16 <= end) {
    Outputs<1>(a, 16, o, false);
    o += 16;
  }
  if (o < end) {
    Configure(end - o, a.n);
    Outputs<1>(a, end - o, o, false);
  }
  // No tilerelease here: it would spare the OS saving 8 KiB of tiles at a context switch, but
  // cost batch-1 decode 6-7% (SmolLM2-135M tg128, alternated runs).
}

#else  // !MSWA_AMX_X86

bool CpuHasAmxBf16() { return false; }
void ChunkAmxBf16(const Product&, const Bf16*, int64_t, int64_t) {}

#endif

}  // namespace bf16dot

#if MSWA_AMX_X86
namespace amx {

bool CpuAndOsHave(Unit unit) {
  constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
  constexpr int kXfeatureXtiledata = 18;     // the tile data registers
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool tile = (edx >> 24) & 1, has_unit = (edx >> static_cast<int>(unit)) & 1;
  if (!tile || !has_unit) return false;
  static const bool granted = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return granted;
}

}  // namespace amx
#endif
}  // namespace mswa
