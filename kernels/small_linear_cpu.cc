#include "kernels/small_linear.h"

#include <cstdint>
#include <cstring>

#include "kernels/cpu_clones.h"
#include "kernels/vec16.h"

namespace mswa {
namespace {

// Output rows [o_begin, o_end) for every input row, one dot product at a time.
template <typename T>
__attribute__((always_inline)) inline void Rows(const float* x, int64_t rows, int64_t in,
                                                const T* w, int64_t o_begin, int64_t o_end,
                                                float* y, int64_t y_stride, bool accumulate) {
  for (int64_t o = o_begin; o < o_end; ++o) {
    const T* wr = w + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < in; ++i) dot += ToFloat(wr[i]) * xr[i];
      float* yo = y + r * y_stride + o;
      *yo = accumulate ? *yo + dot : dot;
    }
  }
}

typedef int32_t I16 __attribute__((vector_size(64)));

// Horizontal sums of eight vectors at once, by folding pairs of them into one vector per level
// (8 -> 4 -> 2 -> 1): far fewer operations than eight separate reductions. Returns the sums in
// lanes 0, 2, 4, ..., 14 for a0 ... a7 in order.
__attribute__((always_inline)) inline V16 Fold8(const V16& a0, const V16& a1, const V16& a2,
                                               const V16& a3, const V16& a4, const V16& a5,
                                               const V16& a6, const V16& a7) {
  // Level 1: [a 8 lanes folded | b 8 lanes folded].
  const I16 lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const I16 hi8 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const V16 b0 = __builtin_shuffle(a0, a1, lo8) + __builtin_shuffle(a0, a1, hi8);
  const V16 b1 = __builtin_shuffle(a2, a3, lo8) + __builtin_shuffle(a2, a3, hi8);
  const V16 b2 = __builtin_shuffle(a4, a5, lo8) + __builtin_shuffle(a4, a5, hi8);
  const V16 b3 = __builtin_shuffle(a6, a7, lo8) + __builtin_shuffle(a6, a7, hi8);
  // Level 2: 4 lanes per accumulator.
  const I16 lo4 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const I16 hi4 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
  const V16 c0 = __builtin_shuffle(b0, b1, lo4) + __builtin_shuffle(b0, b1, hi4);
  const V16 c1 = __builtin_shuffle(b2, b3, lo4) + __builtin_shuffle(b2, b3, hi4);
  // Level 3: 2 lanes per accumulator, all eight in one vector.
  const I16 lo2 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const I16 hi2 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
  const V16 d = __builtin_shuffle(c0, c1, lo2) + __builtin_shuffle(c0, c1, hi2);
  // Level 4: neighbours.
  const I16 swap = {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14};
  return d + __builtin_shuffle(d, swap);
}

// The same for `in` a multiple of 16, in tiles of 2 output rows x 4 input rows: each weight
// vector loaded serves four rows of x and each x vector two outputs, with eight independent
// accumulators (eight registers with AVX-512) reduced together by Fold8. For the batches of a
// decode step (up to kSmallLinearMaxRows rows), where BLAS spends more on packing and threading
// than on the product: 1.5-1.9x OpenBLAS at 32 rows of the default model's shapes.
template <typename T>
__attribute__((always_inline)) inline void Tiles(const float* x, int64_t rows, int64_t in,
                                                 const T* w, int64_t o_begin, int64_t o_end,
                                                 float* y, int64_t y_stride, bool accumulate) {
  const int64_t o_tiles_end = o_begin + (o_end - o_begin) / 2 * 2;
  const int64_t r_tiles_end = rows / 4 * 4;
  for (int64_t o = o_begin; o < o_tiles_end; o += 2) {
    const T* w0 = w + o * in;
    const T* w1 = w0 + in;
    for (int64_t r = 0; r < r_tiles_end; r += 4) {
      const float* x0 = x + r * in;
      V16 a00 = {}, a01 = {}, a02 = {}, a03 = {}, a10 = {}, a11 = {}, a12 = {}, a13 = {};
      for (int64_t i = 0; i < in; i += 16) {
        const V16 u = Load16(w0 + i), v = Load16(w1 + i);
        const V16 p0 = Load16(x0 + i), p1 = Load16(x0 + in + i), p2 = Load16(x0 + 2 * in + i),
                  p3 = Load16(x0 + 3 * in + i);
        a00 += u * p0;
        a01 += u * p1;
        a02 += u * p2;
        a03 += u * p3;
        a10 += v * p0;
        a11 += v * p1;
        a12 += v * p2;
        a13 += v * p3;
      }
      const V16 sums = Fold8(a00, a01, a02, a03, a10, a11, a12, a13);
      for (int j = 0; j < 2; ++j) {
        for (int k = 0; k < 4; ++k) {
          float* yo = y + (r + k) * y_stride + o + j;
          const float sum = sums[2 * (4 * j + k)];
          *yo = accumulate ? *yo + sum : sum;
        }
      }
    }
    // Rows left over from the tiles of 4.
    if (r_tiles_end < rows) {
      Rows(x + r_tiles_end * in, rows - r_tiles_end, in, w, o, o + 2, y + r_tiles_end * y_stride,
           y_stride, accumulate);
    }
  }
  if (o_tiles_end < o_end) Rows(x, rows, in, w, o_tiles_end, o_end, y, y_stride, accumulate);
}

// One chunk of output rows: the tiled kernel when it applies. Each weight type gets its own
// clones (AVX-512, AVX2 with FMA, baseline).
MSWA_CPU_CLONES
void ChunkF32(const float* x, int64_t rows, int64_t in, const float* w, int64_t begin,
              int64_t end, float* y, int64_t y_stride, bool accumulate) {
  if (rows >= 4 && in % 16 == 0) return Tiles(x, rows, in, w, begin, end, y, y_stride, accumulate);
  Rows(x, rows, in, w, begin, end, y, y_stride, accumulate);
}
MSWA_CPU_CLONES
void ChunkBf16(const float* x, int64_t rows, int64_t in, const Bf16* w, int64_t begin,
               int64_t end, float* y, int64_t y_stride, bool accumulate) {
  if (rows >= 4 && in % 16 == 0) return Tiles(x, rows, in, w, begin, end, y, y_stride, accumulate);
  Rows(x, rows, in, w, begin, end, y, y_stride, accumulate);
}

// Chunks of 64 output rows: enough work per chunk to amortize scheduling, enough chunks to
// balance two to a few dozen threads.
template <typename T, typename Chunk>
void Run(Chunk chunk_fn, const float* x, int64_t rows, int64_t in, const T* w, int64_t out,
         float* y, int64_t y_stride, bool accumulate) {
  const int64_t chunk = 64;
  const int64_t chunks = (out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (out * in * rows > (1 << 15))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * chunk;
    const int64_t end = begin + chunk < out ? begin + chunk : out;
    chunk_fn(x, rows, in, w, begin, end, y, y_stride, accumulate);
  }
}

}  // namespace

void SmallLinear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                 float* y, int64_t y_stride, bool accumulate) {
  Run(ChunkF32, x, rows, in, w, out, y, y_stride, accumulate);
}

void SmallLinear(const float* x, int64_t rows, int64_t in, const Bf16* w, int64_t out, float* y,
                 int64_t y_stride, bool accumulate) {
  Run(ChunkBf16, x, rows, in, w, out, y, y_stride, accumulate);
}

}  // namespace mswa
