#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu_clones.h"
#include "kernels/paged_attention.h"
#include "kernels/window.h"

namespace mswa {
namespace {

// The keys of one block that are visible, as a [lo, hi) slot range, plus the block's storage.
struct BlockSpan {
  const float* k;  // [block_size, head_dim] rows of this head
  const float* v;
  int64_t lo, hi;
};

inline const float* HeadRows(const float* pool, const PagedKvParams& p, const KvPoolView& view,
                             int32_t block, int32_t group_head) {
  return pool + ((static_cast<int64_t>(block) * view.num_heads + group_head) * p.block_size) *
                    p.head_dim;
}

inline int32_t BlockOf(const PagedKvParams& p, int32_t seq, int32_t group, int64_t pos) {
  return p.block_tables[static_cast<int64_t>(seq) * p.table_stride + p.table_offsets[group] +
                        (pos / p.block_size) % p.ring_sizes[group]];
}

// Up to 16 query heads share one KV head (GQA) in one work item; larger groups are split.
constexpr int kMaxGroup = 16;

// Attention of `nq` query heads (rows q[0..nq) of `head_dim`, stride `q_stride`) that share one
// KV head, over keys [first, last] of one sequence. Online softmax in fp32: per block of keys,
// scores -> running max -> rescale the accumulator -> accumulate exp(score) * V.
// Compiled for AVX-512, AVX2 and baseline x86-64 (target_clones); the loader picks the best
// the CPU has, so one binary runs everywhere.
MSWA_CPU_CLONES
void AttendOneKvHead(const PagedKvParams& p, const KvHeadDesc& head, int32_t seq, int64_t first,
                     int64_t last, const float* q, int64_t q_stride, int nq, float scale,
                     float* out, int64_t out_stride) {
  const int64_t D = p.head_dim;
  const int64_t B = p.block_size;
  const KvPoolView& pool = p.pools[head.group];
  float m[kMaxGroup], l[kMaxGroup];
  float acc[kMaxGroup][256];  // D <= 256, checked by the caller
  float s[kMaxGroup][64];     // scores of one block; B <= 64, checked by the caller
  for (int h = 0; h < nq; ++h) {
    m[h] = -std::numeric_limits<float>::infinity();
    l[h] = 0.f;
    for (int64_t d = 0; d < D; ++d) acc[h][d] = 0.f;
  }
  for (int64_t block_start = first - first % B; block_start <= last; block_start += B) {
    const int64_t lo = std::max(first, block_start) - block_start;
    const int64_t hi = std::min(last + 1, block_start + B) - block_start;
    const int32_t block = BlockOf(p, seq, head.group, block_start);
    const float* k = HeadRows(static_cast<const float*>(pool.k), p, pool, block, head.group_head);
    const float* v = HeadRows(static_cast<const float*>(pool.v), p, pool, block, head.group_head);
    for (int h = 0; h < nq; ++h) {
      const float* qh = q + h * q_stride;
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j < hi; ++j) {
        const float* kj = k + j * D;
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < D; ++d) dot += qh[d] * kj[d];
        s[h][j] = dot * scale;
        block_max = std::max(block_max, s[h][j]);
      }
      const float new_m = std::max(m[h], block_max);
      const float correction = std::exp(m[h] - new_m);  // exp(-inf) = 0 on the first block
      m[h] = new_m;
      l[h] *= correction;
      float* a = acc[h];
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) a[d] *= correction;
      for (int64_t j = lo; j < hi; ++j) {
        const float w = std::exp(s[h][j] - new_m);
        l[h] += w;
        const float* vj = v + j * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) a[d] += w * vj[d];
      }
    }
  }
  for (int h = 0; h < nq; ++h) {
    // An empty key range (impossible for a well-formed call: a token always sees itself) gives 0.
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
    float* o = out + h * out_stride;
    for (int64_t d = 0; d < D; ++d) o[d] = acc[h][d] * inv;
  }
}

}  // namespace

void WriteKvCacheCpu(const PagedKvParams& p, const float* k, const float* v, int64_t row_stride) {
  const int64_t D = p.head_dim;
#pragma omp parallel for schedule(static) if (p.num_tokens * p.num_kv_heads > 64)
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const int64_t pos = p.positions[t];
    const int64_t slot = pos % p.block_size;
    for (int64_t h = 0; h < p.num_kv_heads; ++h) {
      const KvHeadDesc& head = p.kv_heads[h];
      const KvPoolView& pool = p.pools[head.group];
      const int32_t block = BlockOf(p, p.seq_index[t], head.group, pos);
      float* pool_k = static_cast<float*>(pool.k);
      float* pool_v = static_cast<float*>(pool.v);
      const int64_t offset = (HeadRows(pool_k, p, pool, block, head.group_head) - pool_k) + slot * D;
      std::copy_n(k + t * row_stride + h * D, D, pool_k + offset);
      std::copy_n(v + t * row_stride + h * D, D, pool_v + offset);
    }
  }
}

void PagedAttentionCpu(const PagedKvParams& p, const float* q, int64_t q_row_stride, float scale,
                       float* out) {
  const int64_t group = p.num_q_heads / p.num_kv_heads;
  const int64_t splits = (group + kMaxGroup - 1) / kMaxGroup;
  const int64_t items = p.num_tokens * p.num_kv_heads * splits;
  const int64_t D = p.head_dim;
  if (D > 256 || p.block_size > 64) {
    // Rejected at engine construction; keep a hard stop here rather than overflow the stacks.
    std::abort();
  }
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t t = item / (p.num_kv_heads * splits);
    const int64_t rest = item % (p.num_kv_heads * splits);
    const int64_t kvh = rest / splits;
    const int64_t part = rest % splits;
    const KvHeadDesc& head = p.kv_heads[kvh];
    const int64_t pos = p.positions[t];
    const int64_t first = OldestVisible(pos, head.window);
    const int64_t h0 = kvh * group + part * kMaxGroup;
    const int nq = static_cast<int>(std::min<int64_t>(kMaxGroup, (kvh + 1) * group - h0));
    AttendOneKvHead(p, head, p.seq_index[t], first, pos, q + t * q_row_stride + h0 * D, D, nq,
                    scale, out + (t * p.num_q_heads + h0) * D, D);
  }
}

}  // namespace mswa
