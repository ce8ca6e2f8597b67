// SmallLinear's fp32 products over F32Layout::kPanels48 (kernels/small_linear.h), on AVX-512.
//
// The row layout's kernels take dot products: each output is 16 lanes of partial sums folded at
// the end, and a 4 x 4 register tile loads 8 vectors per 16 multiply-adds. Here the lanes are
// outputs instead: a panel holds 48 outputs' weights for one column of x side by side (3
// vectors), so one column step is 3 weight loads and, per row of x, one broadcast value
// multiplied into 3 accumulators. 8 rows make 24 multiply-adds per 3 loads with no folding, and
// the panel is one sequential stream that the hardware prefetcher follows. Measured standalone
// on SmolLM2-135M's layer matrices at 32 rows (2 threads, weights from memory): 230-250 GFLOP/s
// against the row layout's 200-210, and 315 against 226 with the weights in the last-level cache.
//
// Each output is one lane's sum over the columns in order, whatever the number of rows beside
// it, so a row's outputs are the same bits alone as in any batch.
#include "kernels/small_linear_f32_panels.h"

#include <algorithm>
#include <cstring>

#include <omp.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MSWA_PANELS_X86 1
#define MSWA_PANELS_TARGET __attribute__((target("avx512f,fma")))
#endif

namespace mswa {
namespace panels {

bool CpuHasAvx512() {
#if MSWA_PANELS_X86
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

#if MSWA_PANELS_X86
namespace {

constexpr int64_t kP = kF32PanelRows;
// Rows of x per pass over a panel: 8 x 3 accumulators, 3 weight vectors and a broadcast fill
// 28 of the 32 vector registers.
constexpr int kMaxRowBlock = 8;

// `MR` rows of x times `NP` consecutive panels of `WV` vectors (48 outputs; the last panel of a
// matrix may be 16 or 32 wide, alone), into y's 16 WV NP columns (lanes `valid` of each 16).
// Meanwhile prefetches `pf_lines` lines from `pf` (and as many from `pf` + one panel's
// bytes, with two panels) into L2, spread evenly over the columns, so that the stream from
// memory keeps pace with the arithmetic. Two panels give a row 6 independent sums instead of 3:
// with one or a few rows, 3 chains of multiply-adds (4 cycles each) leave the FMA units idle
// half of the time; each output is still one lane's sum in column order.
template <int MR, int NP, int WV>
MSWA_PANELS_TARGET __attribute__((always_inline)) inline void Pass(const float* x, int64_t x_stride,
                                                                 const float* wp, int64_t in, float* y,
                                                                 int64_t y_stride, bool accumulate,
                                                                 const __mmask16* valid, const char* pf,
                                                                 int64_t pf_lines) {
  constexpr int V = WV * NP;  // vectors of outputs
  const int64_t panel_floats = in * kP;
  // Every loop over registers unrolled whatever the optimization level (at -O2, g++ kept the
  // accumulators in memory and ran at half the speed).
  __m512 a[MR][V];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 6
    for (int j = 0; j < V; ++j) a[r][j] = _mm512_setzero_ps();
  }
  int64_t credit = 0;
  for (int64_t k = 0; k < in; ++k) {
    credit += pf_lines;
    while (credit >= in) {
      credit -= in;
      _mm_prefetch(pf, _MM_HINT_T1);
      if (NP == 2) _mm_prefetch(pf + panel_floats * sizeof(float), _MM_HINT_T1);
      pf += 64;
    }
    __m512 w[V];
#pragma GCC unroll 6
    for (int j = 0; j < V; ++j) {
      w[j] = _mm512_loadu_ps(wp + (j / WV) * panel_floats + k * 16 * WV + 16 * (j % WV));
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 b = _mm512_set1_ps(x[r * x_stride + k]);
#pragma GCC unroll 6
      for (int j = 0; j < V; ++j) a[r][j] = _mm512_fmadd_ps(b, w[j], a[r][j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 6
    for (int j = 0; j < V; ++j) {
      float* yj = y + r * y_stride + 16 * j;
      __m512 v = a[r][j];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(valid[j], yj));
      _mm512_mask_storeu_ps(yj, valid[j], v);
    }
  }
}

// np panels of 48 outputs (1 or 2), or one of 16 wv (wv 1 or 2).
MSWA_PANELS_TARGET void PassRows(int mr, int np, int wv, const float* x, int64_t x_stride, const float* wp,
                                 int64_t in, float* y, int64_t y_stride, bool accumulate, const __mmask16* valid,
                                 const char* pf, int64_t pf_lines) {
  switch ((np * 4 + wv) * 16 + mr) {
#define MSWA_PASS(np, wv, n)                                                                      \
  case (np * 4 + wv) * 16 + n:                                                                    \
    return Pass<n, np, wv>(x, x_stride, wp, in, y, y_stride, accumulate, valid, pf, pf_lines);
#define MSWA_PASS_ROWS(np, wv) \
  MSWA_PASS(np, wv, 1) MSWA_PASS(np, wv, 2) MSWA_PASS(np, wv, 3) MSWA_PASS(np, wv, 4)
#define MSWA_PASS_ROWS8(np, wv) \
  MSWA_PASS_ROWS(np, wv) MSWA_PASS(np, wv, 5) MSWA_PASS(np, wv, 6) MSWA_PASS(np, wv, 7) MSWA_PASS(np, wv, 8)
    MSWA_PASS_ROWS8(1, 3) MSWA_PASS_ROWS(2, 3) MSWA_PASS_ROWS8(1, 1) MSWA_PASS_ROWS8(1, 2)
#undef MSWA_PASS_ROWS8
#undef MSWA_PASS_ROWS
#undef MSWA_PASS
  }
}

}  // namespace

MSWA_PANELS_TARGET void Chunk(const float* x, int64_t rows, int64_t in, const float* panels, int64_t out,
                              int64_t begin, int64_t end, float* y, int64_t y_stride, bool accumulate) {
  const int64_t p_begin = begin / kP, p_end = (end + kP - 1) / kP;
  const int64_t panel_floats = in * kP;
  const int64_t passes = (rows + kMaxRowBlock - 1) / kMaxRowBlock;
  // What each pass prefetches (measured on SmolLM2-135M's layer matrices from memory, 2
  // threads): with one pass (up to 8 rows, where the product is bound by memory) the panel's
  // own stream kStreamAhead bytes ahead, on past its end (111 GFLOP/s at 8 rows, against 91
  // with the next panel spread over the pass and 69 with the hardware's prefetch alone); with
  // several, the next panel spread over the passes, so that it is in L2 when the passes over
  // this one are done (230-238 at 32 rows, against 210 with the stream ahead). The first
  // panel of a chunk, which nothing prefetched, streams ahead in its first pass and spreads
  // the next one over the others; the last prefetches nothing (the next chunk may be another
  // thread's, and streams its first panel itself).
  constexpr int64_t kStreamAhead = 16 << 10;
  for (int64_t p = p_begin; p < p_end;) {
    const float* wp = panels + p * panel_floats;
    const int wv = static_cast<int>(F32PanelWidth(out, p) / 16);
    // Up to 4 rows, two whole panels at a time (Pass).
    const int np = rows <= 4 && p + 1 < p_end && F32PanelWidth(out, p + 1) == kP ? 2 : 1;
    __mmask16 valid[6];
    for (int j = 0; j < wv * np; ++j) {
      const int64_t n = std::clamp<int64_t>(out - p * kP - 16 * j, 0, 16);
      valid[j] = static_cast<__mmask16>((1u << n) - 1);
    }
    const bool stream_first = passes == 1 || p == p_begin;
    const int64_t spread_passes = passes == 1 ? 1 : p == p_begin ? passes - 1 : passes;
    const char* next = p + 1 < p_end ? reinterpret_cast<const char*>(wp + panel_floats) : nullptr;
    // Lines of this panel and of the next (a last panel may be narrower).
    const int64_t lines = in * wv;  // 16 wv floats per column
    const int64_t next_lines = next != nullptr ? in * F32PanelWidth(out, p + 1) / 16 : 0;
    int64_t r = 0;
    for (int64_t pass = 0; pass < passes; ++pass) {
      const int mr = static_cast<int>(std::min<int64_t>(kMaxRowBlock, rows - r));
      const char* pf = nullptr;
      int64_t pf_lines = 0;
      if (stream_first && pass == 0) {
        pf = reinterpret_cast<const char*>(wp) + kStreamAhead;
        pf_lines = lines;
      } else if (next != nullptr) {
        const int64_t i = pass - (passes - spread_passes);  // this pass's share of the next panel
        const int64_t first = next_lines * i / spread_passes, last = next_lines * (i + 1) / spread_passes;
        pf = next + 64 * first;
        pf_lines = last - first;
      }
      PassRows(mr, np, wv, x + r * in, in, wp, in, y + r * y_stride + p * kP, y_stride, accumulate, valid, pf,
               pf_lines);
      r += mr;
    }
    p += np;
  }
}

#else

void Chunk(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t, bool) {}

#endif  // MSWA_PANELS_X86

}  // namespace panels

int64_t F32PanelWidth(int64_t out, int64_t p) {
  const int64_t left = out - p * kF32PanelRows;
  return left >= kF32PanelRows ? kF32PanelRows : (left + 15) / 16 * 16;
}

int64_t F32PanelsFloats(int64_t out, int64_t in) {
  const int64_t full = out / kF32PanelRows;
  return (full * kF32PanelRows + F32PanelWidth(out, full)) * in;
}

void PackF32Panels(const float* w, int64_t out, int64_t in, float* packed) {
  const int64_t panels = (out + kF32PanelRows - 1) / kF32PanelRows;
  // On the process's threads: Gemma 3 270M's 671 MB LM head packs in 0.10 s on two, 0.20 s on one.
#pragma omp parallel for schedule(static) if (panels > 1 && !omp_in_parallel())
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t width = F32PanelWidth(out, p);
    float* dst = packed + p * in * kF32PanelRows;
    for (int64_t j = 0; j < width; ++j) {
      const int64_t o = p * kF32PanelRows + j;
      if (o >= out) {
        for (int64_t k = 0; k < in; ++k) dst[k * width + j] = 0.f;
        continue;
      }
      const float* row = w + o * in;
      for (int64_t k = 0; k < in; ++k) dst[k * width + j] = row[k];
    }
  }
}

void UnpackF32Panels(const float* packed, int64_t out, int64_t in, int64_t row_begin, int64_t row_end,
                     float* w) {
  // A panel at a time, its columns read in order (the writes go to up to 48 rows at once).
  for (int64_t o = row_begin; o < row_end;) {
    const int64_t p = o / kF32PanelRows, j0 = o % kF32PanelRows;
    const int64_t width = F32PanelWidth(out, p);
    const int64_t j1 = std::min(width, j0 + (row_end - o));
    const float* src = packed + p * in * kF32PanelRows;
    float* rows = w + (o - row_begin) * in - j0 * in;  // row j of the panel at rows + j * in
    for (int64_t k = 0; k < in; ++k) {
      for (int64_t j = j0; j < j1; ++j) rows[j * in + k] = src[k * width + j];
    }
    o += j1 - j0;
  }
}

}  // namespace mswa
