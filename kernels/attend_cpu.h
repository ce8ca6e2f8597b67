// The CPU attention kernel's body, shared by the translation units that compile it for
// different ISA levels (paged_attention_cpu.cc with target_clones; paged_attention_cpu_f16_*.cc
// with -march for the fp16 loads, whose intrinsics target_clones cannot select). Internal to
// kernels/: everything here has internal linkage, so each unit keeps its own compilation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
// GCC 12 reports its own _mm512_undefined_ps() as maybe uninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "kernels/paged_attention.h"
#include "kernels/fold16.h"
#include "kernels/vec16.h"
#include "kernels/window.h"

namespace mswa {
namespace {


// IEEE half as its bits (fp32 and Bf16 are the pools' other element types).
struct F16 {
  uint16_t bits;
};

template <typename T>
inline T* HeadRows(T* pool, const PagedKvParams& p, const KvPoolView& view, int32_t block,
                   int32_t group_head) {
  return pool + ((static_cast<int64_t>(block) * view.num_heads + group_head) * p.block_size) *
                    p.head_dim;
}

inline int32_t BlockOf(const PagedKvParams& p, int32_t seq, int32_t group, int64_t pos) {
  return p.block_tables[static_cast<int64_t>(seq) * p.table_stride + p.table_offsets[group] +
                        (pos / p.block_size) % p.ring_sizes[group]];
}

// Up to 16 query heads share one KV head (GQA) in one work item; larger groups are split.
constexpr int kMaxGroup = 16;

// 16 halves to fp32, exactly (subnormals, infinities and NaN included). With F16C (and
// AVX-512) one instruction per 8 (16); without, integer vector operations that vectorize in
// every clone. (GCC scalarizes a vector _Float16 conversion, hence the intrinsics: this header is
// compiled once per ISA level, see paged_attention_cpu_f16_*.cc.)
__attribute__((always_inline)) inline V16 Load16(const F16* p) {
#if defined(__AVX512F__)
  const __m512 f = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  V16 v;
  std::memcpy(&v, &f, sizeof(v));
  return v;
#elif defined(__F16C__)
  const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
  V16 v;
  std::memcpy(&v, &lo, sizeof(lo));
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof(lo), &hi, sizeof(hi));
  return v;
#else
  U16x16 h;
  std::memcpy(&h, p, sizeof(h));
  const U32x16 x = __builtin_convertvector(h, U32x16);
  const U32x16 exponent = (x & 0x7c00u) << 13;
  U32x16 bits = ((x & 0x7fffu) << 13) + ((127u - 15u) << 23);        // rebias a normal
  bits = exponent == 0x0f800000u ? bits + ((128u - 16u) << 23) : bits;  // infinity, NaN
  // Subnormal or zero: let the FPU normalize (m * 2^-24 = (2^-14 + m * 2^-24) - 2^-14).
  const U32x16 sub_bits = bits + (1u << 23);
  V16 sub;
  std::memcpy(&sub, &sub_bits, sizeof(sub));
  sub -= 6.103515625e-05f;
  U32x16 sub_as_bits;
  std::memcpy(&sub_as_bits, &sub, sizeof(sub));
  bits = exponent == 0u ? sub_as_bits : bits;
  bits |= (x & 0x8000u) << 16;  // sign
  V16 f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}

inline float ToFloat(F16 x) {
  _Float16 h;
  std::memcpy(&h, &x.bits, sizeof(h));
  return static_cast<float>(h);
}
// fp32 to the pool's type, rounding to nearest even (as CUDA's __float2half_rn and
// __float2bfloat16_rn do); NaN stays NaN.
inline void FromFloat(float x, float* out) { *out = x; }
inline void FromFloat(float x, F16* out) {
  const _Float16 h = static_cast<_Float16>(x);
  std::memcpy(&out->bits, &h, sizeof(h));
}
inline void FromFloat(float x, Bf16* out) { *out = RoundToBf16(x); }


// How many blocks ahead of the one being computed the kernel prefetches (1, 2 and 3 measured
// the same on a 2-core EPYC; 1 to 2 blocks of 2 KiB cover the DRAM latency).
constexpr int64_t kPrefetchBlocks = 1;

// One head's K and V rows in one block, as bytes.
struct BlockRows {
  const char* k = nullptr;
  const char* v = nullptr;
  int64_t lines = 0;  // 64-byte lines of each
};

template <typename T>
inline BlockRows RowsOfBlock(const PagedKvParams& p, const KvPoolView& pool, int32_t block,
                             int32_t group_head) {
  return BlockRows{
      reinterpret_cast<const char*>(HeadRows(static_cast<const T*>(pool.k), p, pool, block, group_head)),
      reinterpret_cast<const char*>(HeadRows(static_cast<const T*>(pool.v), p, pool, block, group_head)),
      (p.block_size * p.head_dim * static_cast<int64_t>(sizeof(T)) + 63) / 64};
}

// Lines [begin, end) of 64 bytes from `rows`, into L2 only.
inline void PrefetchLinesToL2(const char* rows, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) __builtin_prefetch(rows + 64 * i, 0, 2);
}

// Keys per chunk of the softmax (whole blocks, at least one): the scores of a chunk's keys are
// all computed first, then one max, one exp per score and one sum per head, then the weighted V
// rows. Per block of 16 keys, as an online softmax did it, the max, the rescaling and the exp
// were a serial chain of scalar steps beside 16 keys' dot products: chunks run decode attention
// 1.2-1.4x faster (docs/benchmarks.md, `bench/cpu_attention_bench`).
constexpr int64_t kChunkKeys = 256;

// The largest of s[lo, hi).
__attribute__((always_inline)) inline float MaxOf(const float* s, int64_t lo, int64_t hi) {
  float m = -std::numeric_limits<float>::infinity();
  int64_t j = lo;
  if (j + 16 <= hi) {
    V16 mv = Load16(s + j);
    for (j += 16; j + 16 <= hi; j += 16) mv = Max16(mv, Load16(s + j));
    m = MaxLane(mv);
  }
  for (; j < hi; ++j) m = std::max(m, s[j]);
  return m;
}

// a[0, 16 NC) += sum over keys j in [lo, hi) of w[j] * v[j * stride + (0, 16 NC)]: the dims in
// registers, each weight broadcast once for all of them, two keys at a time into separate sums
// (2 NC independent chains hide the add latency).
template <typename T, int NC>
__attribute__((always_inline)) inline void AddWeightedRows(const float* w, int64_t lo, int64_t hi,
                                                          const T* v, int64_t stride, float* a) {
  V16 t0[NC], t1[NC];
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) {
    t0[c] = Load16(a + 16 * c);
    t1[c] = V16{};
  }
  int64_t j = lo;
  for (; j + 2 <= hi; j += 2) {
    const V16 w0 = Splat16(w[j]), w1 = Splat16(w[j + 1]);
    const T* v0 = v + j * stride;
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      t0[c] += w0 * Load16(v0 + 16 * c);
      t1[c] += w1 * Load16(v0 + stride + 16 * c);
    }
  }
  if (j < hi) {
    const V16 w0 = Splat16(w[j]);
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) t0[c] += w0 * Load16(v + j * stride + 16 * c);
  }
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) Store16(a + 16 * c, t0[c] + t1[c]);
}

// Per-head running state across chunks, and one chunk's scores (then weights).
struct ChunkSoftmax {
  float m[kMaxGroup], l[kMaxGroup];
  alignas(64) float acc[kMaxGroup][256];       // D <= 256, checked by the caller
  alignas(64) float s[kMaxGroup][kChunkKeys];  // block size <= 64 <= kChunkKeys
};

// Attention of `nq` query heads (rows q[0..nq) of `head_dim`, stride `q_stride`) that share one
// KV head, over keys [first, last] of one sequence, from pools of element type T. Softmax in
// fp32 over chunks of kChunkKeys keys: per chunk, scores (q . K) for every head -> the chunk's
// max -> rescale the running sum and accumulator -> exp(score - max) -> accumulate weight * V.
// Each K and V row is read from memory once (the V rows of a chunk stay in L2 between its two
// passes). Inlined into one function per T below, each compiled for AVX-512, AVX2 and baseline
// x86-64 (target_clones): the loader picks the best the CPU has.
//
// ml == nullptr: out holds the attention output. Otherwise the part of a longer key range that
// [first, last] is: out holds each head's unnormalized sum of exp(score - m) V, and ml[2h],
// ml[2h + 1] its m (the largest score) and l (the sum of exp(score - m)), for MergeKeyParts.
template <typename T>
__attribute__((always_inline)) inline void AttendOneKvHead(
    const PagedKvParams& p, const KvHeadDesc& head, int32_t seq, int64_t first, int64_t last,
    const float* q, int64_t q_stride, int nq, float scale, float* out, int64_t out_stride,
    float* ml) {
  const int64_t D = p.head_dim;
  const int64_t B = p.block_size;
  // Head dims in whole 16-float vectors take the register path; others (rare) the scalar one.
  const bool vec = D % 16 == 0;
  const KvPoolView& pool = p.pools[head.group];
  const int64_t chunk_keys = std::max<int64_t>(1, kChunkKeys / B) * B;
  ChunkSoftmax st;
  for (int h = 0; h < nq; ++h) {
    st.m[h] = -std::numeric_limits<float>::infinity();
    st.l[h] = 0.f;
    for (int64_t d = 0; d < D; ++d) st.acc[h][d] = 0.f;
  }
  const int64_t first_block = first - first % B;
  for (int64_t i = 0; i < kPrefetchBlocks; ++i) {
    const int64_t start = first_block + i * B;
    if (start > last) break;
    const BlockRows r = RowsOfBlock<T>(p, pool, BlockOf(p, seq, head.group, start), head.group_head);
    for (int64_t l = 0; l < r.lines; ++l) __builtin_prefetch(r.k + 64 * l);
  }
  for (int64_t chunk = first_block; chunk <= last; chunk += chunk_keys) {
    const int64_t chunk_end = std::min(last + 1, chunk + chunk_keys);  // exclusive
    const int64_t c_lo = std::max(first, chunk) - chunk;               // first valid score
    const int64_t c_hi = chunk_end - chunk;
    // Pass 1: the scores of every head, block by block. The blocks of a window lie anywhere in
    // the pool, where the hardware prefetcher cannot guess them: ask for the next block's K rows
    // and this block's V rows (read in pass 2) now, into L2, a share before each head's work.
    // All at once, into L1, stalled the core on its fill buffers.
    for (int64_t block_start = chunk; block_start < chunk_end; block_start += B) {
      const int64_t lo = std::max(first, block_start) - block_start;
      const int64_t hi = std::min(chunk_end, block_start + B) - block_start;
      const BlockRows rows = RowsOfBlock<T>(p, pool, BlockOf(p, seq, head.group, block_start), head.group_head);
      const char* next_k = nullptr;
      if (block_start + kPrefetchBlocks * B <= last) {
        next_k = RowsOfBlock<T>(p, pool, BlockOf(p, seq, head.group, block_start + kPrefetchBlocks * B),
                                head.group_head).k;
      }
      const T* k = reinterpret_cast<const T*>(rows.k);
      for (int h = 0; h < nq; ++h) {
        if (next_k != nullptr) PrefetchLinesToL2(next_k, rows.lines * h / nq, rows.lines * (h + 1) / nq);
        PrefetchLinesToL2(rows.v, rows.lines * h / nq, rows.lines * (h + 1) / nq);
        const float* qh = q + h * q_stride;
        float* s = st.s[h] + (block_start - chunk);
        if (vec) {
          // Sixteen keys at a time: sixteen independent dot products, reduced together by
          // Fold16 (the same tree as Sum16, so the same bits).
          int64_t j = lo;
          for (; j + 16 <= hi; j += 16) {
            const T* kj = k + j * D;
            V16 dots[16];
            const V16 q0 = Load16(qh);
#pragma GCC unroll 16
            for (int i = 0; i < 16; ++i) dots[i] = q0 * Load16(kj + i * D);
            for (int64_t d = 16; d < D; d += 16) {
              const V16 qd = Load16(qh + d);
#pragma GCC unroll 16
              for (int i = 0; i < 16; ++i) dots[i] += qd * Load16(kj + i * D + d);
            }
            Store16(s + j, Fold16(dots) * scale);
          }
          for (; j < hi; ++j) {
            const T* kj = k + j * D;
            V16 dot = Load16(qh) * Load16(kj);
            for (int64_t d = 16; d < D; d += 16) dot += Load16(qh + d) * Load16(kj + d);
            s[j] = Sum16(dot) * scale;
          }
        } else {
          for (int64_t j = lo; j < hi; ++j) {
            const T* kj = k + j * D;
            float dot = 0.f;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < D; ++d) dot += qh[d] * ToFloat(kj[d]);
            s[j] = dot * scale;
          }
        }
      }
    }
    // The chunk's softmax step, per head, over its valid scores [c_lo, c_hi).
    for (int h = 0; h < nq; ++h) {
      float* s = st.s[h];
      if (p.softcap > 0.f) {
        const float cap = p.softcap, inv = 1.f / cap;
        for (int64_t j = c_lo; j < c_hi; ++j) s[j] = cap * std::tanh(s[j] * inv);
      }
      const float chunk_max = MaxOf(s, c_lo, c_hi);
      const float new_m = std::max(st.m[h], chunk_max);
      const float correction = std::exp(st.m[h] - new_m);  // exp(-inf) = 0 on the first chunk
      st.m[h] = new_m;
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = c_lo; j < c_hi; ++j) {
        s[j] = ExpNonPositive(s[j] - new_m);
        sum += s[j];
      }
      st.l[h] = st.l[h] * correction + sum;
      if (chunk != first_block) {
        float* a = st.acc[h];
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) a[d] *= correction;
      }
    }
    // Pass 2: the weighted V rows, block by block (from L2: prefetched in pass 1).
    for (int64_t block_start = chunk; block_start < chunk_end; block_start += B) {
      const int64_t lo = std::max(first, block_start) - block_start;
      const int64_t hi = std::min(chunk_end, block_start + B) - block_start;
      const T* v = HeadRows(static_cast<const T*>(pool.v), p, pool, BlockOf(p, seq, head.group, block_start),
                            head.group_head);
      for (int h = 0; h < nq; ++h) {
        const float* w = st.s[h] + (block_start - chunk);
        float* a = st.acc[h];
        if (vec) {
          int64_t d = 0;
          for (; d + 64 <= D; d += 64) AddWeightedRows<T, 4>(w, lo, hi, v + d, D, a + d);
          switch ((D - d) / 16) {
            case 3: AddWeightedRows<T, 3>(w, lo, hi, v + d, D, a + d); break;
            case 2: AddWeightedRows<T, 2>(w, lo, hi, v + d, D, a + d); break;
            case 1: AddWeightedRows<T, 1>(w, lo, hi, v + d, D, a + d); break;
            default: break;
          }
        } else {
          for (int64_t j = lo; j < hi; ++j) {
            const T* vj = v + j * D;
            const float wj = w[j];
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) a[d] += wj * ToFloat(vj[d]);
          }
        }
      }
    }
  }
  for (int h = 0; h < nq; ++h) {
    // An empty key range (impossible for a well-formed call: a token always sees itself) gives 0.
    const float inv = ml != nullptr ? 1.f : st.l[h] > 0.f ? 1.f / st.l[h] : 0.f;
    float* o = out + h * out_stride;
    for (int64_t d = 0; d < D; ++d) o[d] = st.acc[h][d] * inv;
    if (ml != nullptr) {
      ml[2 * h] = st.m[h];
      ml[2 * h + 1] = st.l[h];
    }
  }
}

// The entry points' type: (p, head, seq, first, last, q, q_stride, nq, scale, out, out_stride,
// ml).
using AttendKernel = void(const PagedKvParams&, const KvHeadDesc&, int32_t, int64_t, int64_t,
                          const float*, int64_t, int, float, float*, int64_t, float*);
using AttendFn = AttendKernel*;

}  // namespace

// One kernel entry point of pool type T: AttendOneKvHead<T> compiled for this unit's ISA.
#define MSWA_DEFINE_ATTEND(name, T)                                                              \
  void name(const PagedKvParams& p, const KvHeadDesc& head, int32_t seq, int64_t first,          \
            int64_t last, const float* q, int64_t q_stride, int nq, float scale, float* out,      \
            int64_t out_stride, float* ml) {                                                      \
    AttendOneKvHead<T>(p, head, seq, first, last, q, q_stride, nq, scale, out, out_stride, ml);   \
  }

// The fp16 kernel per ISA level (x86-64 only): paged_attention_cpu_v4.cc, _v3.cc.
AttendKernel AttendF16V4, AttendF16V3;

}  // namespace mswa
