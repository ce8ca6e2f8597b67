// The CPU attention kernel for tiles of queries (prefill and scoring), shared like attend_cpu.h
// by the translation units that compile it per ISA level. Internal to kernels/.
//
// Why a second kernel: attend_cpu.h's AttendOneKvHead takes one token at a time and reduces each
// q.k dot product across the vector's lanes, a horizontal sum per key that costs more than the
// product itself at small head dims. In a prompt, consecutive tokens of a sequence see mostly the
// same keys, so here up to 16 query rows (tokens x the query heads of one KV head) are held
// transposed, one row per vector lane, and every key is applied to all of them at once:
//     s[row] += Q^T[d][row] * K[key][d]        (a broadcast of K, D multiply-adds per key)
//     acc^T[d][row] += w[key][row] * V[key][d]  (likewise)
// No horizontal sums, each K/V row read once per tile, and the online softmax (running max,
// rescaling, exp) runs lane-parallel too. A key outside a row's window (kernels/window.h) gets
// weight exactly 0 for that row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/attend_cpu.h"

namespace mswa {
namespace {

// Query rows per tile: one per lane of V16. (Tiles of two vectors of rows, so that each
// broadcast K or V value serves two multiply-adds, measured 0-10% slower on prompts of 512 and
// 2,048 tokens, build/bench/cpu_attention_bench --prompt.)
constexpr int kTileRows = 16;
// Keys per step of the online softmax.
constexpr int kTileKeys = 16;

// Per-tile state and scratch; D <= 256 (checked by the caller).
struct TileState {
  alignas(64) float qt[256][kTileRows];   // Q^T, pre-multiplied by the scale
  alignas(64) float acct[256][kTileRows];  // acc^T
  alignas(64) float keys[kTileKeys * 256];    // a chunk of K rows as fp32 (converted or padded)
  alignas(64) float values[kTileKeys * 256];  // likewise V
};

// Attention of `n` consecutive tokens of sequence `seq` at positions pos0 .. pos0 + n - 1, for
// the `nq` query heads that share KV head `head` (so n * nq <= kTileRows rows). Token i's query
// head h is q[i * q_stride + h * D]; its output goes to out[i * out_stride + h * D]. D % 16 == 0.
// kD: the head dim when known at compile time (0: p.head_dim). Known, the 16 keys' rows are one
// pointer plus constant offsets; at run time they took 16 registers, spilled in the scores' loop.
template <typename T, int kD>
__attribute__((always_inline)) inline void AttendTileKvHead(
    const PagedKvParams& p, const KvHeadDesc& head, int32_t seq, int64_t pos0, int n,
    const float* q, int64_t q_stride, int nq, float scale, float* out, int64_t out_stride) {
  const int64_t D = kD > 0 ? kD : p.head_dim;
  const int64_t B = p.block_size;
  const KvPoolView& pool = p.pools[head.group];
  const int rows = n * nq;
  TileState st;
  // Rows are token-major: row r is token r / nq, query head r % nq. Unused lanes get a position
  // no key is visible from. Positions are compared as floats, exact below 2^24 (the caller's
  // bound for tiles).
  alignas(64) float row_last[kTileRows], row_first[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    const bool used = r < rows;
    const int64_t pos = pos0 + (used ? r / nq : 0);
    row_last[r] = used ? static_cast<float>(pos) : -1.f;
    row_first[r] = used ? static_cast<float>(OldestVisible(pos, head.window)) : 3e38f;
  }
  // Q^T, 16 dims at a time: the rows' vectors, scaled, transposed in registers (a scalar store
  // per element, at a 64-byte stride, cost a tenth of the kernel's time at 32 dims). The scale
  // includes log2 e: scores are kept in base 2, where the softmax's exp is cheaper (vec16.h's
  // Exp2NonPositive); soft-capping scales its cap alike.
  constexpr float kLog2e = 1.44269504088896341f;
  const float scale2 = scale * kLog2e;
  const float softcap2 = p.softcap * kLog2e;
  for (int64_t d0 = 0; d0 < D; d0 += 16) {
    V16 m[kTileRows];
#pragma GCC unroll 16
    for (int r = 0; r < kTileRows; ++r) {
      m[r] = r < rows ? Load16(q + (r / nq) * q_stride + (r % nq) * D + d0) * scale2 : Splat16(0.f);
    }
    Transpose16(m);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      Store16(st.qt[d0 + i], m[i]);
      Store16(st.acct[d0 + i], Splat16(0.f));
    }
  }
  const V16 last_v = Load16(row_last);
  const V16 first_v = Load16(row_first);
  // Keys from here to key_all_last are visible to every row (no mask needed).
  const int64_t key_all_first = OldestVisible(pos0 + n - 1, head.window);
  const int64_t key_all_last = pos0;
  V16 m = Splat16(-std::numeric_limits<float>::infinity());
  V16 l = Splat16(0.f);

  const int64_t key_first = OldestVisible(pos0, head.window);
  const int64_t key_last = pos0 + n - 1;
  for (int64_t c = key_first; c <= key_last;) {
    const int64_t block_start = c - c % B;
    const int64_t end = std::min({c + kTileKeys, block_start + B, key_last + 1});
    const int nk = static_cast<int>(end - c);
    const int32_t block = BlockOf(p, seq, head.group, c);
    const T* k = HeadRows(static_cast<const T*>(pool.k), p, pool, block, head.group_head) +
                 (c - block_start) * D;
    const T* v = HeadRows(static_cast<const T*>(pool.v), p, pool, block, head.group_head) +
                 (c - block_start) * D;
    // fp32 rows of K and V: in place for a full fp32 chunk, else converted, a short chunk padded
    // with zeros (so that every loop below runs over all 16 keys, unrolled; padded keys are
    // masked out of the scores and their weights are 0).
    const float* kf;
    const float* vf;
    if (std::is_same<T, float>::value && nk == kTileKeys) {
      kf = reinterpret_cast<const float*>(k);
      vf = reinterpret_cast<const float*>(v);
    } else {
      for (int j = 0; j < kTileKeys; ++j) {
        for (int64_t d = 0; d < D; d += 16) {
          Store16(st.keys + j * D + d, j < nk ? Load16(k + j * D + d) : Splat16(0.f));
          Store16(st.values + j * D + d, j < nk ? Load16(v + j * D + d) : Splat16(0.f));
        }
      }
      kf = st.keys;
      vf = st.values;
    }
    // Scores of the 16 keys for every row. (Vector times scalar: the broadcast folds into the
    // multiply-add; Splat16 would keep an add of zero before every broadcast.)
    V16 s[kTileKeys];
    for (int j = 0; j < kTileKeys; ++j) s[j] = Splat16(0.f);
#pragma GCC unroll 2
    for (int64_t d = 0; d < D; ++d) {
      const V16 qd = Load16(st.qt[d]);
#pragma GCC unroll 16
      for (int j = 0; j < kTileKeys; ++j) s[j] += qd * kf[j * D + d];
    }
    // Soft-capping, the window mask, and the chunk's maximum per row (a tree of maxima, and
    // below four partial sums of the weights: chains of 16 dependent operations otherwise).
    if (p.softcap > 0.f) {
      for (int j = 0; j < nk; ++j) {
        float lanes[16];
        std::memcpy(lanes, &s[j], sizeof(lanes));
        for (float& x : lanes) x = softcap2 * std::tanh(x / softcap2);
        std::memcpy(&s[j], lanes, sizeof(lanes));
      }
    }
    const bool all_visible = nk == kTileKeys && c >= key_all_first && end - 1 <= key_all_last;
    I32x16 visible[kTileKeys];
    if (!all_visible) {
#pragma GCC unroll 16
      for (int j = 0; j < kTileKeys; ++j) {
        const V16 key = Splat16(static_cast<float>(c + j));
        visible[j] = (first_v <= key) & (last_v >= key) & (j < nk ? -1 : 0);
        s[j] = Select(visible[j], s[j], Splat16(-std::numeric_limits<float>::infinity()));
      }
    }
    V16 t[kTileKeys / 2];
#pragma GCC unroll 8
    for (int j = 0; j < kTileKeys / 2; ++j) t[j] = Max16(s[j], s[j + kTileKeys / 2]);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) t[j] = Max16(t[j], t[j + 4]);
    const V16 chunk_max = Max16(Max16(t[0], t[2]), Max16(t[1], t[3]));
    // Rows that see none of these keys keep their state: their max stays, their weights are 0.
    if (!all_visible && MaxLane(chunk_max) == -std::numeric_limits<float>::infinity()) {
      c = end;
      continue;
    }
    const V16 new_m = Max16(m, chunk_max);
    const I32x16 seen = new_m > Splat16(-std::numeric_limits<float>::infinity());
    // 2^(m - new_m): 0 for a row's first keys (m = -inf), 1 for rows that have seen nothing.
    const V16 correction = Select(seen, Exp2NonPositive(Select(seen, m - new_m, Splat16(0.f))), Splat16(1.f));
    alignas(64) float w[kTileKeys][kTileRows];
    V16 w_sums[4] = {};
#pragma GCC unroll 16
    for (int j = 0; j < kTileKeys; ++j) {
      const V16 wj = all_visible ? Exp2NonPositive(s[j] - new_m)
                                 : Select(visible[j], Exp2NonPositive(Select(visible[j], s[j] - new_m, Splat16(0.f))),
                                          Splat16(0.f));
      w_sums[j % 4] += wj;
      Store16(w[j], wj);
    }
    m = Select(seen, new_m, m);
    l = l * correction + ((w_sums[0] + w_sums[1]) + (w_sums[2] + w_sums[3]));
    // acc^T = acc^T * correction + sum_j w_j V_j, 8 dims at a time (8 accumulators + w).
    for (int64_t d0 = 0; d0 < D; d0 += 8) {
      V16 a[8];
      for (int i = 0; i < 8; ++i) a[i] = Load16(st.acct[d0 + i]) * correction;
#pragma GCC unroll 16
      for (int j = 0; j < kTileKeys; ++j) {
        const V16 wj = Load16(w[j]);
        const float* vj = vf + j * D + d0;
        for (int i = 0; i < 8; ++i) a[i] += wj * vj[i];
      }
      for (int i = 0; i < 8; ++i) Store16(st.acct[d0 + i], a[i]);
    }
    c = end;
  }
  alignas(64) float inv[kTileRows];
  {
    float ls[kTileRows];
    std::memcpy(ls, &l, sizeof(ls));
    // An empty key range (impossible for a well-formed call: a token always sees itself) gives 0.
    for (int r = 0; r < kTileRows; ++r) inv[r] = ls[r] > 0.f ? 1.f / ls[r] : 0.f;
  }
  const V16 inv_v = Load16(inv);
  for (int64_t d0 = 0; d0 < D; d0 += 16) {
    V16 mt[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) mt[i] = Load16(st.acct[d0 + i]) * inv_v;
    Transpose16(mt);
    for (int r = 0; r < rows; ++r) Store16(out + (r / nq) * out_stride + (r % nq) * D + d0, mt[r]);
  }
}

// The entry points' type: (p, head, seq, pos0, n, q, q_stride, nq, scale, out, out_stride).
using AttendTileKernel = void(const PagedKvParams&, const KvHeadDesc&, int32_t, int64_t, int,
                              const float*, int64_t, int, float, float*, int64_t);
using AttendTileFn = AttendTileKernel*;

}  // namespace

// One tile kernel entry point of pool type T, compiled for this unit's ISA.
// The common head dims get their own copies (AttendTileKvHead's kD).
#define MSWA_DEFINE_ATTEND_TILE(name, T)                                                          \
  void name(const PagedKvParams& p, const KvHeadDesc& head, int32_t seq, int64_t pos0, int n,    \
            const float* q, int64_t q_stride, int nq, float scale, float* out,                    \
            int64_t out_stride) {                                                                 \
    switch (p.head_dim) {                                                                         \
      case 32: return AttendTileKvHead<T, 32>(p, head, seq, pos0, n, q, q_stride, nq, scale, out, out_stride);   \
      case 64: return AttendTileKvHead<T, 64>(p, head, seq, pos0, n, q, q_stride, nq, scale, out, out_stride);   \
      case 128: return AttendTileKvHead<T, 128>(p, head, seq, pos0, n, q, q_stride, nq, scale, out, out_stride); \
      case 256: return AttendTileKvHead<T, 256>(p, head, seq, pos0, n, q, q_stride, nq, scale, out, out_stride); \
      default: return AttendTileKvHead<T, 0>(p, head, seq, pos0, n, q, q_stride, nq, scale, out, out_stride);    \
    }                                                                                             \
  }

// The tile kernels per ISA level (x86-64 only): paged_attention_cpu_v4.cc (every pool type),
// paged_attention_cpu_v3.cc (fp16).
AttendTileKernel AttendTileF16V4, AttendTileF16V3, AttendTileF32V4, AttendTileBF16V4;

}  // namespace mswa
