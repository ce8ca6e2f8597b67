// Horizontal sums of several 16-float vectors at once, for the CPU kernels' dot-product tiles.
// Internal to kernels/ (internal linkage, as vec16.h). Every function here sums one vector's
// lanes by the same tree, halving: s8[i] = a[i] + a[i + 8], s4[i] = s8[i] + s8[i + 4],
// s2[i] = s4[i] + s4[i + 2], sum = s2[0] + s2[1]. A dot product reduced by Fold16 in a tile of
// sixteen, by Fold8 in a tile of eight or by Sum16 alone therefore gives the same bits, which
// kernels that promise the same result whatever the number of rows rely on.
#pragma once

#include <cstring>

#include "kernels/vec16.h"

namespace mswa {
namespace {

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

// Horizontal sums of sixteen vectors at once, folding pairs level by level (16 -> 8 -> 4 -> 2
// -> 1 vectors, as Fold8): lane j of the result is the sum of a[j].
__attribute__((always_inline)) inline V16 Fold16(const V16 (&a)[16]) {
  const I16 lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const I16 hi8 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const I16 lo4 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const I16 hi4 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
  const I16 lo2 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const I16 hi2 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
  const I16 lo1 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const I16 hi1 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  V16 b[8], c[4], d[2];
  for (int k = 0; k < 8; ++k) {
    b[k] = __builtin_shuffle(a[2 * k], a[2 * k + 1], lo8) + __builtin_shuffle(a[2 * k], a[2 * k + 1], hi8);
  }
  for (int k = 0; k < 4; ++k) {
    c[k] = __builtin_shuffle(b[2 * k], b[2 * k + 1], lo4) + __builtin_shuffle(b[2 * k], b[2 * k + 1], hi4);
  }
  for (int k = 0; k < 2; ++k) {
    d[k] = __builtin_shuffle(c[2 * k], c[2 * k + 1], lo2) + __builtin_shuffle(c[2 * k], c[2 * k + 1], hi2);
  }
  return __builtin_shuffle(d[0], d[1], lo1) + __builtin_shuffle(d[0], d[1], hi1);
}

// The same tree for one vector (a serial chain of 16 adds would be 16 add latencies).
__attribute__((always_inline)) inline float Sum16(const V16& v) {
  float s[16];
  std::memcpy(s, &v, sizeof(s));
  for (int width = 8; width > 0; width /= 2) {
    for (int i = 0; i < width; ++i) s[i] += s[i + width];
  }
  return s[0];
}

}  // namespace
}  // namespace mswa
