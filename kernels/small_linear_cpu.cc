#include "kernels/small_linear.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <omp.h>

#include "kernels/cpu_clones.h"
#include "kernels/cpu_team.h"
#include "kernels/fold16.h"
#include "kernels/small_linear_bf16.h"
#include "kernels/small_linear_f32_panels.h"
#include "kernels/small_linear_q8.h"
#include "kernels/vec16.h"

namespace mswa {
namespace {

// How the kernels read weight row o at column i: 16 values as fp32 (Load) or one (At).
// Plain fp32 / bfloat16 [out, in] matrices:
template <typename T>
struct DenseRows {
  const T* w;
  int64_t in;
  __attribute__((always_inline)) V16 Load(int64_t o, int64_t i) const { return Load16(w + o * in + i); }
  __attribute__((always_inline)) float At(int64_t o, int64_t i) const { return ToFloat(w[o * in + i]); }
  // Line k of the weights from row o on, into L2.
  __attribute__((always_inline)) void PrefetchLine(int64_t o, int64_t k) const {
    __builtin_prefetch(reinterpret_cast<const char*>(w + o * in) + 64 * k, 0, 2);
  }
  __attribute__((always_inline)) const void* RowAddress(int64_t o) const { return w + o * in; }
  static constexpr int kBytes = sizeof(T);
};
// int8 with one fp32 scale per kInt8Group consecutive values of a row (a 16-value load never
// straddles two groups: kInt8Group is a multiple of 16 and loads start at multiples of 16):
struct Int8Rows {
  const int8_t* q;
  const float* scales;  // [out, groups]
  int64_t in, groups;
  __attribute__((always_inline)) V16 Load(int64_t o, int64_t i) const {
    I8x16 raw;
    std::memcpy(&raw, q + o * in + i, sizeof(raw));
    // Widened one size at a time: g++ 12 turns int8 -> float, and even int8 -> int32, into
    // sixteen scalar conversions, but each doubling into vector sign extensions (vpmovsx*).
    const I32x16 wide = __builtin_convertvector(__builtin_convertvector(raw, I16x16), I32x16);
    return __builtin_convertvector(wide, V16) * scales[o * groups + i / kInt8Group];
  }
  __attribute__((always_inline)) float At(int64_t o, int64_t i) const {
    return static_cast<float>(q[o * in + i]) * scales[o * groups + i / kInt8Group];
  }
  __attribute__((always_inline)) void PrefetchLine(int64_t o, int64_t k) const {
    __builtin_prefetch(reinterpret_cast<const char*>(q + o * in) + 64 * k, 0, 2);
  }
  __attribute__((always_inline)) const void* RowAddress(int64_t o) const { return q + o * in; }
  static constexpr int kBytes = 1;
};

// Output rows [o_begin, o_end) for every input row, one dot product at a time: whole 16-value
// loads through the row loader, a scalar tail for `in` not a multiple of 16. (Reading every value through At()
// instead keeps the compiler from vectorizing int8's per-group scales and made batch-1 decode
// ~6x slower.)
template <typename W>
__attribute__((always_inline)) inline void Rows(const float* x, int64_t rows, int64_t in,
                                                const W& w, int64_t o_begin, int64_t o_end,
                                                float* y, int64_t y_stride, bool accumulate) {
  const int64_t in16 = in / 16 * 16;
  for (int64_t o = o_begin; o < o_end; ++o) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      V16 acc = {};
      for (int64_t i = 0; i < in16; i += 16) acc += w.Load(o, i) * Load16(xr + i);
      float dot = Sum16(acc);  // the tiles' tree: the same sum in any tile
      for (int64_t i = in16; i < in; ++i) dot += w.At(o, i) * xr[i];
      float* yo = y + r * y_stride + o;
      *yo = accumulate ? *yo + dot : dot;
    }
  }
}

// Four or more rows (batched decode), `in` a multiple of 16: tiles of 4 outputs x 4 rows, so
// each weight vector loaded serves four rows and each x vector four outputs, sixteen
// accumulators (half the AVX-512 registers) reduced together by Fold16. Against the 2 x 4 tiles
// before, half the x loads per multiply-add and one reduction per sixteen dot products instead
// of eight: a 32-row product over SmolLM2's matrices went from 74 to 140 GFLOP/s.
//
// The tiles run in blocks that keep both operands in L1. A tile loads 4 weight vectors and 4 x
// vectors per 16 multiply-adds, more than L2 feeds, and 32 rows of x (72 KiB at SmolLM2's 576
// columns) do not fit L1's 48 KiB; tiles that took every row for one weight tile read x from L2.
// So the outputs go in blocks of 16 or 32, a block's rows in blocks whose x fits kTileXBytes,
// and long rows' columns in equal spans: a weight tile serves its row block from L1, and
// the row block serves every tile of the output block from L1. Where a row has more than one
// span, each tile's sixteen accumulators wait unreduced in a scratch buffer between spans; each
// output is still summed lane by lane in column order and folded once, so its bits do not
// depend on the blocking. The next output block's weights are prefetched into L2 a line at a
// time, spread evenly over the current block's iterations, so DRAM is read at the pace of the
// arithmetic instead of in bursts at the start of each block. 30 layers of SmolLM2's matrices
// (2 threads, weights from DRAM), GFLOP/s before / after: 8 rows 105 / 118, 16 rows 140 / 158,
// 32 rows 167 / 192, 64 rows 189 / 211, 4 rows level (66).
// Columns up to kTileMaxSpan in one span, more in spans of about kTileSpan (SmolLM2's 1536 in 3
// of 512 ran 203 GFLOP/s against 185 in 2 of 768; 688 columns in one span 298 against 280 in 2).
constexpr int64_t kTileMaxSpan = 768, kTileSpan = 512;
constexpr int64_t kTileXBytes = 27 * 1024;  // x of a row block: 8 rows of 576 or 640 columns
constexpr int64_t kTileMaxSpanRowTiles = 2;  // row tiles of a block when there are spans
typedef float V4 __attribute__((vector_size(16)));
template <typename W>
__attribute__((always_inline)) inline void Tiles(const float* x, int64_t rows, int64_t in,
                                                 const W& w, int64_t o_begin, int64_t o_end,
                                                 float* y, int64_t y_stride, bool accumulate) {
  // Larger output blocks measured faster at 64 rows, smaller ones at 8-32.
  constexpr int64_t kMaxOutBlock = 32;
  const int64_t out_block = rows >= 48 ? 32 : 16;
  const int64_t o_tiles_end = o_begin + (o_end - o_begin) / 4 * 4;
  const int64_t r_tiles_end = rows / 4 * 4;
  const int64_t spans = in <= kTileMaxSpan ? 1 : (in + kTileSpan - 1) / kTileSpan;
  const int64_t span = (in / 16 + spans - 1) / spans * 16;
  int64_t row_block = std::max<int64_t>(4, kTileXBytes / (span * 4) / 4 * 4);
  if (spans > 1) row_block = std::min(row_block, 4 * kTileMaxSpanRowTiles);
  alignas(64) V16 scratch[kMaxOutBlock / 4 * kTileMaxSpanRowTiles * 16];  // 16 KiB
  // The first block's weights all at once: nothing runs before them to spread them over.
  const char* first = reinterpret_cast<const char*>(w.RowAddress(o_begin));
  const int64_t first_lines = (std::min(o_begin + out_block, o_tiles_end) - o_begin) * in * W::kBytes / 64;
  for (int64_t l = 0; l < first_lines; ++l) __builtin_prefetch(first + 64 * l, 0, 2);
  for (int64_t ob = o_begin; ob < o_tiles_end; ob += out_block) {
    const int64_t oe = std::min(ob + out_block, o_tiles_end);
    // The next block's weights: pf_lines lines over this block's iterations, by a running
    // remainder (credit), so a few lines every iteration or one every few.
    const char* pf = reinterpret_cast<const char*>(w.RowAddress(oe));
    const int64_t pf_lines = (std::min(oe + out_block, o_tiles_end) - oe) * in * W::kBytes / 64;
    const int64_t iterations = (oe - ob) / 4 * (r_tiles_end / 4) * (in / 16);
    int64_t pf_left = pf_lines, credit = 0;
    for (int64_t rb = 0; rb < r_tiles_end; rb += row_block) {
      const int64_t re = std::min(rb + row_block, r_tiles_end);
      for (int64_t k0 = 0; k0 < in; k0 += span) {
        const int64_t k1 = std::min(in, k0 + span);
        for (int64_t o = ob; o < oe; o += 4) {
          for (int64_t r = rb; r < re; r += 4) {
            const float* x0 = x + r * in;
            V16* saved = scratch + ((o - ob) / 4 * kTileMaxSpanRowTiles + (r - rb) / 4) * 16;
            V16 a[16];
            if (k0 == 0) {
              for (int j = 0; j < 16; ++j) a[j] = V16{};
            } else {
              for (int j = 0; j < 16; ++j) a[j] = saved[j];
            }
            for (int64_t i = k0; i < k1; i += 16) {
              if (pf_left > 0) {
                credit += pf_lines;
                while (credit >= iterations && pf_left > 0) {
                  __builtin_prefetch(pf, 0, 2);
                  pf += 64;
                  --pf_left;
                  credit -= iterations;
                }
              }
              V16 u[4], p[4];
              for (int j = 0; j < 4; ++j) u[j] = w.Load(o + j, i);
              for (int k = 0; k < 4; ++k) p[k] = Load16(x0 + k * in + i);
              for (int k = 0; k < 4; ++k) {
                for (int j = 0; j < 4; ++j) a[4 * k + j] += u[j] * p[k];
              }
            }
            if (k1 < in) {
              for (int j = 0; j < 16; ++j) saved[j] = a[j];
              continue;
            }
            // Row k's four outputs are lanes 4k .. 4k + 3: one 4-float store a row.
            const V16 sums = Fold16(a);
            for (int k = 0; k < 4; ++k) {
              V4 part;
              std::memcpy(&part, reinterpret_cast<const char*>(&sums) + 16 * k, sizeof(part));
              float* yo = y + (r + k) * y_stride + o;
              if (accumulate) {
                V4 old;
                std::memcpy(&old, yo, sizeof(old));
                part += old;
              }
              std::memcpy(yo, &part, sizeof(part));
            }
          }
        }
      }
    }
    // Rows left over from the tiles of 4.
    if (r_tiles_end < rows) {
      Rows(x + r_tiles_end * in, rows - r_tiles_end, in, w, ob, oe, y + r_tiles_end * y_stride,
           y_stride, accumulate);
    }
  }
  if (o_tiles_end < o_end) Rows(x, rows, in, w, o_tiles_end, o_end, y, y_stride, accumulate);
}

// Fewer than four rows (a batch-1 decode): tiles of 8 outputs x 1 row, eight independent
// accumulators per weight pass reduced together by Fold8, so the loads of eight weight rows
// overlap instead of waiting on one reduction chain. `in` a multiple of 16.
template <typename W>
__attribute__((always_inline)) inline void RowTiles(const float* x, int64_t rows, int64_t in,
                                                    const W& w, int64_t o_begin, int64_t o_end,
                                                    float* y, int64_t y_stride, bool accumulate) {
  const int64_t o_tiles_end = o_begin + (o_end - o_begin) / 8 * 8;
  // A tile's 8 rows are one contiguous range of 8 * in weights, read row after row: one
  // sequential stream (a line of each of the 8 rows per step, 8 interleaved streams, read
  // slower). Alongside, a line every 64 bytes read of the range two tiles ahead, into L2, in
  // address order: over the tile, all of it. DRAM latency then hides behind this tile's
  // arithmetic; one tile ahead was too close, and into L1 it evicted lines still to be read.
  // One accumulator per output over the columns in order, as Tiles' (the same bits).
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;
    for (int64_t o = o_begin; o < o_tiles_end; o += 8) {
      const bool prefetch = o + 24 <= o_tiles_end;
      V16 a[8];
      int64_t line = 0;  // of the range two tiles ahead
#pragma GCC unroll 1
      for (int j = 0; j < 8; ++j) {
        V16 acc = {};
        for (int64_t i = 0; i < in; i += 16) {
          if (prefetch && (i * W::kBytes) % 64 == 0) w.PrefetchLine(o + 16, line++);
          acc += w.Load(o + j, i) * Load16(xr + i);
        }
        a[j] = acc;
      }
      const V16 sums = Fold8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
      float* yo = y + r * y_stride + o;
      for (int j = 0; j < 8; ++j) yo[j] = accumulate ? yo[j] + sums[2 * j] : sums[2 * j];
    }
  }
  if (o_tiles_end < o_end) Rows(x, rows, in, w, o_tiles_end, o_end, y, y_stride, accumulate);
}

// Either tiling by the number of rows.
template <typename W>
__attribute__((always_inline)) inline void Chunk(const float* x, int64_t rows, int64_t in,
                                                 const W& w, int64_t begin, int64_t end, float* y,
                                                 int64_t y_stride, bool accumulate) {
  if (in % 16 != 0) return Rows(x, rows, in, w, begin, end, y, y_stride, accumulate);
  if (rows >= 4) return Tiles(x, rows, in, w, begin, end, y, y_stride, accumulate);
  RowTiles(x, rows, in, w, begin, end, y, y_stride, accumulate);
}

// One chunk of output rows: the tiled kernel when it applies. Each weight type gets its own
// clones (AVX-512, AVX2 with FMA, baseline).
MSWA_CPU_CLONES
void ChunkF32(const float* x, int64_t rows, int64_t in, const DenseRows<float>& w, int64_t begin,
              int64_t end, float* y, int64_t y_stride, bool accumulate) {
  Chunk(x, rows, in, w, begin, end, y, y_stride, accumulate);
}
MSWA_CPU_CLONES
void ChunkBf16(const float* x, int64_t rows, int64_t in, const DenseRows<Bf16>& w, int64_t begin,
               int64_t end, float* y, int64_t y_stride, bool accumulate) {
  Chunk(x, rows, in, w, begin, end, y, y_stride, accumulate);
}
MSWA_CPU_CLONES
void ChunkInt8(const float* x, int64_t rows, int64_t in, const Int8Rows& w, int64_t begin,
               int64_t end, float* y, int64_t y_stride, bool accumulate) {
  Chunk(x, rows, in, w, begin, end, y, y_stride, accumulate);
}

// Output rows split between the threads in multiples of `unit` (8: the one-row tiles; 16 for
// kTiles16's tiles). The first 7/8 go in even shares, one contiguous range of the weights per
// thread, fn(begin, end, 0, rows); the rest in chunks of at least `unit` rows that the threads
// claim as they finish, so they end together.
// Chunks of a fixed size for the whole product left a thread idle for up to a chunk at the end
// of every product, which at decode sizes (a few hundred output rows split among two threads:
// 192 rows made 2 chunks against 1) cost a third of the time; even shares alone left the two
// threads' ends 4.5 us apart on average (9% of SmolLM2's int8 products at batch 1: threads do
// not get equal shares of the memory bandwidth). A row's outputs do not depend on the range
// it is computed in. `work` (multiply-adds) below 2^15 stays on the calling thread, unless it
// is called by a team (kernels/cpu_team.h), whose threads split every product.
// With `rows` of at least kRowSplitMinRows (prompts), each claimed chunk is also split by rows
// of x, one part per thread, in multiples of `row_unit`: fn(begin, end, row_begin, row_end).
// A prompt's chunks are whole 48-output panels, and a 256-output product (5 1/3 panels) left
// one thread a panel more than the other.
constexpr int64_t kRowSplitMinRows = 64;
template <typename Fn>
void ForOutputAndRowShares(int64_t out, int64_t rows, int64_t work, const Fn& fn, int64_t unit,
                           int64_t row_unit) {
  OnTeam(work > (1 << 15), [&] {
    const int64_t threads = omp_get_num_threads();
    if (threads == 1) return fn(0, out, 0, rows);
    const int64_t units = (out + unit - 1) / unit;  // row groups of `unit`
    const int64_t tail_units = std::max<int64_t>(units / 8, threads);  // claimed in chunks
    const int64_t share_units = std::max<int64_t>(0, units - tail_units) / threads;
    const int64_t shared_end = share_units * threads;
    const int64_t chunk_units = std::max<int64_t>(1, (units - shared_end) / (2 * threads));
    const int64_t chunks = (units - shared_end + chunk_units - 1) / chunk_units;
    const int64_t row_parts = rows >= kRowSplitMinRows ? threads : 1;
    const int64_t part_rows = (rows + row_parts * row_unit - 1) / (row_parts * row_unit) * row_unit;
    const int64_t t = omp_get_thread_num();
    if (share_units > 0) fn(t * share_units * unit, std::min(out, (t + 1) * share_units * unit), 0, rows);
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < chunks * row_parts; ++k) {
      const int64_t c = shared_end + k / row_parts * chunk_units;
      const int64_t r0 = k % row_parts * part_rows, r1 = std::min(rows, r0 + part_rows);
      if (r0 < r1) fn(c * unit, std::min(out, (c + chunk_units) * unit), r0, r1);
    }
  });
}
template <typename Fn>
void ForOutputShares(int64_t out, int64_t work, const Fn& fn, int64_t unit = 8) {
  ForOutputAndRowShares(
      out, 1, work, [&](int64_t begin, int64_t end, int64_t, int64_t) { fn(begin, end); }, unit, 1);
}

template <typename W, typename Chunk>
void Run(Chunk chunk_fn, const float* x, int64_t rows, int64_t in, const W& w, int64_t out,
         float* y, int64_t y_stride, bool accumulate) {
  ForOutputShares(out, out * in * rows, [&](int64_t begin, int64_t end) {
    chunk_fn(x, rows, in, w, begin, end, y, y_stride, accumulate);
  });
}

std::atomic<Int8Kernel> g_int8_kernel{Int8Kernel::kAuto};
std::atomic<F32Layout> g_f32_layout{F32Layout::kAuto};
std::atomic<Bf16DotKernel> g_bf16_dot_kernel{Bf16DotKernel::kAuto};

bool CpuHas(Int8Kernel kernel) {
  switch (kernel) {
    case Int8Kernel::kAvx512Vnni: return q8::CpuHasAvx512Vnni();
    case Int8Kernel::kAvx2: return q8::CpuHasAvx2();
    case Int8Kernel::kAmx: return q8::CpuHasAmxInt8();
    default: return true;
  }
}

}  // namespace

void SmallLinear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                 float* y, int64_t y_stride, bool accumulate) {
  Run(ChunkF32, x, rows, in, DenseRows<float>{w, in}, out, y, y_stride, accumulate);
}

void SmallLinear(const float* x, int64_t rows, int64_t in, const Bf16* w, int64_t out, float* y,
                 int64_t y_stride, bool accumulate) {
  Run(ChunkBf16, x, rows, in, DenseRows<Bf16>{w, in}, out, y, y_stride, accumulate);
}

void SmallLinear(const float* x, int64_t rows, int64_t in, const F32Panels& w, float* y,
                 int64_t y_stride, bool accumulate) {
  if (!panels::CpuHasAvx512()) {
    // Not loaded so here (F32LayoutNow), but a caller may hold such a matrix: the row kernel on
    // its unpacked rows.
    thread_local std::vector<float> dense;
    dense.resize(w.out * in);
    UnpackF32Panels(w.w, w.out, in, 0, w.out, dense.data());
    return SmallLinear(x, rows, in, dense.data(), w.out, y, y_stride, accumulate);
  }
  ForOutputAndRowShares(
      w.out, rows, w.out * in * rows,
      [&](int64_t begin, int64_t end, int64_t r0, int64_t r1) {
        panels::Chunk(x + r0 * in, r1 - r0, in, w.w, w.out, begin, end, y + r0 * y_stride, y_stride, accumulate);
      },
      kF32PanelRows, 8 /* the panel kernel's row block */);
}

bool SetF32Layout(F32Layout layout) {
  if (layout == F32Layout::kPanels48 && !panels::CpuHasAvx512()) return false;
  g_f32_layout.store(layout, std::memory_order_relaxed);
  return true;
}

F32Layout F32LayoutNow() {
  const F32Layout layout = g_f32_layout.load(std::memory_order_relaxed);
  if (layout != F32Layout::kAuto) return layout;
  return panels::CpuHasAvx512() ? F32Layout::kPanels48 : F32Layout::kRows;
}

const char* F32LayoutName(F32Layout layout) {
  switch (layout) {
    case F32Layout::kAuto: return "auto";
    case F32Layout::kRows: return "rows";
    case F32Layout::kPanels48: return "panels48";
  }
  return "?";
}

void SmallLinearBf16Dot(const float* x, int64_t rows, int64_t in, const Bf16* w, int64_t out,
                        float* y, int64_t y_stride, bool accumulate) {
  // No rows (a step whose prompt chunks end no prompt: no logits): nothing to compute, and no
  // tile shapes to load (the unit rejects a configuration with empty rows).
  if (rows == 0) return;
  // x rounded once, on the calling thread, into a buffer kept for the next product (for AMX
  // also packed into the tile unit's B operand).
  const Bf16DotKernel kernel = Bf16DotKernelNow();
  if (kernel != Bf16DotKernel::kWidened) {
    thread_local std::vector<Bf16> xb, packed;
    xb.resize(rows * in);
    bf16dot::RoundToBf16(x, rows * in, xb.data());
    const bf16dot::Product p{xb.data(), rows, in, w, y, y_stride, accumulate};
    if (kernel == Bf16DotKernel::kAmx) {
      packed.resize(bf16dot::AmxPackedSize(rows, in));
      bf16dot::PackForAmx(xb.data(), rows, in, packed.data());
      const Bf16* const pk = packed.data();
      ForOutputShares(out, out * in * rows,
                      [&](int64_t begin, int64_t end) { bf16dot::ChunkAmxBf16(p, pk, begin, end); });
    } else {
      ForOutputShares(out, out * in * rows,
                      [&](int64_t begin, int64_t end) { bf16dot::ChunkAvx512Bf16(p, begin, end); });
    }
    return;
  }
  // The widened kernel sums each output the same way in every tile too (fold16.h), and a
  // product of two bfloat16 values is exact in fp32.
  thread_local std::vector<float> rounded;
  rounded.resize(rows * in);
  for (int64_t i = 0; i < rows * in; ++i) rounded[i] = ToFloat(RoundToBf16(x[i]));
  SmallLinear(rounded.data(), rows, in, w, out, y, y_stride, accumulate);
}

bool SetBf16DotKernel(Bf16DotKernel kernel) {
  if (kernel == Bf16DotKernel::kAvx512Bf16 && !bf16dot::CpuHasAvx512Bf16()) return false;
  if (kernel == Bf16DotKernel::kAmx && !bf16dot::CpuHasAmxBf16()) return false;
  g_bf16_dot_kernel.store(kernel, std::memory_order_relaxed);
  return true;
}

Bf16DotKernel Bf16DotKernelNow() {
  const Bf16DotKernel kernel = g_bf16_dot_kernel.load(std::memory_order_relaxed);
  if (kernel != Bf16DotKernel::kAuto) return kernel;
  return bf16dot::CpuHasAmxBf16()      ? Bf16DotKernel::kAmx
         : bf16dot::CpuHasAvx512Bf16() ? Bf16DotKernel::kAvx512Bf16
                                       : Bf16DotKernel::kWidened;
}

const char* Bf16DotKernelName(Bf16DotKernel kernel) {
  switch (kernel) {
    case Bf16DotKernel::kAuto: return "auto";
    case Bf16DotKernel::kWidened: return "widened";
    case Bf16DotKernel::kAvx512Bf16: return "avx512bf16";
    case Bf16DotKernel::kAmx: return "amxbf16";
  }
  return "?";
}

bool SetInt8Kernel(Int8Kernel kernel) {
  if (!CpuHas(kernel)) return false;
  g_int8_kernel.store(kernel, std::memory_order_relaxed);
  return true;
}

Int8Kernel Int8KernelFor(int64_t rows, int64_t in) {
  Int8Kernel kernel = g_int8_kernel.load(std::memory_order_relaxed);
  if (kernel == Int8Kernel::kAuto) {
    kernel = q8::CpuHasAmxInt8() && rows >= kInt8AmxMinRows ? Int8Kernel::kAmx
             : q8::CpuHasAvx512Vnni()                        ? Int8Kernel::kAvx512Vnni
             : q8::CpuHasAvx2()                              ? Int8Kernel::kAvx2
                                                             : Int8Kernel::kWidened;
  }
  if (in % 64 != 0) return Int8Kernel::kWidened;
  return kernel;
}

const char* Int8KernelName(Int8Kernel kernel) {
  switch (kernel) {
    case Int8Kernel::kAuto: return "auto";
    case Int8Kernel::kWidened: return "widened";
    case Int8Kernel::kAvx2: return "avx2";
    case Int8Kernel::kAvx512Vnni: return "avx512vnni";
    case Int8Kernel::kAmx: return "amxint8";
  }
  return "?";
}

void SmallLinear(const float* x, int64_t rows, int64_t in, const Int8Matrix& w, float* y,
                 int64_t y_stride, bool accumulate) {
  const bool q4_tiles = w.layout == Int8Layout::kTiles16Q4;
  const bool tiles = w.layout == Int8Layout::kTiles16 || q4_tiles;
  // kRowsQ4 takes the AVX2 kernel for any number of rows (the widened one reads whole bytes).
  const bool q4_rows = w.layout == Int8Layout::kRowsQ4;
  const Int8Kernel kernel = q4_rows ? Int8KernelFor(1, in) : Int8KernelFor(rows, in);
  // The tile unit reads the tiled layouts only: forced for kRows, VNNI runs.
  const bool vnni = kernel == Int8Kernel::kAvx512Vnni || kernel == Int8Kernel::kAmx;
  if ((tiles && !vnni) || (q4_rows && kernel != Int8Kernel::kAvx2)) {
    // Another kernel forced (tests, benchmarks): exact fp32 products of the dequantized
    // weights, as the widened kernel computes.
    thread_local std::vector<float> dense;
    dense.resize(w.out * in);
    DequantizeInt8(w, in, 0, w.out, dense.data());
    return SmallLinear(x, rows, in, dense.data(), w.out, y, y_stride, accumulate);
  }
  if (kernel == Int8Kernel::kWidened) {
    return Run(ChunkInt8, x, rows, in, Int8Rows{w.q, w.scales, in, Int8Groups(in)}, w.out, y,
               y_stride, accumulate);
  }
  // x quantized once, on the calling thread, into buffers kept for the next product.
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> xs;
  const int64_t groups = Int8Groups(in);
  xq.resize(rows * in);
  xs.resize(rows * groups);
  q8::QuantizeActivations(x, rows, in, xq.data(), xs.data());
  q8::Product p{xq.data(), xs.data(), rows, in, groups, w, y, y_stride, accumulate};
  if (tiles) {
    thread_local std::vector<int32_t> xsum128;
    if (kernel != Int8Kernel::kAmx) {
      xsum128.resize(rows * groups);
      q8::XSums128(xq.data(), rows, in, xsum128.data());
      p.xsum128 = xsum128.data();
    }
    const auto chunk = kernel == Int8Kernel::kAmx ? (q4_tiles ? q8::ChunkAmxTiles16Q4 : q8::ChunkAmxTiles16)
                       : q4_tiles                   ? q8::ChunkAvx512VnniTiles16Q4
                                                    : q8::ChunkAvx512VnniTiles16;
    ForOutputShares(
        w.out, w.out * in * rows, [&](int64_t begin, int64_t end) { chunk(p, begin, end); }, kInt8Tile16Rows);
    return;
  }
  const auto chunk = q4_rows ? q8::ChunkAvx2Q4 : vnni ? q8::ChunkAvx512Vnni : q8::ChunkAvx2;
  ForOutputShares(w.out, w.out * in * rows, [&](int64_t begin, int64_t end) { chunk(p, begin, end); });
}

bool Int8SmallLinearPreferred(int64_t rows, int64_t in, Int8Layout layout) {
  return rows <= kSmallLinearMaxRows || layout == Int8Layout::kRowsQ4 ||
         Int8KernelFor(rows, in) != Int8Kernel::kWidened;
}

bool Int8TilesPreferred(int64_t in) {
  const Int8Kernel kernel = Int8KernelFor(1, in);
  return in % 64 == 0 && (kernel == Int8Kernel::kAvx512Vnni || kernel == Int8Kernel::kAmx);
}

bool Q4RowsPreferred(int64_t in) { return in % 64 == 0 && Int8KernelFor(1, in) == Int8Kernel::kAvx2; }

}  // namespace mswa
