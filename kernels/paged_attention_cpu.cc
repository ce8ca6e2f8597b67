#include <cstdint>
#include <vector>

#include "kernels/attend_cpu.h"
#include "kernels/attend_tile_cpu.h"
#include "kernels/cpu_clones.h"
#include "kernels/paged_attention.h"

namespace mswa {
namespace {

// fp32 and bf16 pools, and fp16 where the CPU lacks F16C: one version per ISA level each.
MSWA_CPU_CLONES MSWA_DEFINE_ATTEND(AttendF32, float)
MSWA_CPU_CLONES MSWA_DEFINE_ATTEND(AttendF16Portable, F16)
MSWA_CPU_CLONES MSWA_DEFINE_ATTEND(AttendBF16, Bf16)
MSWA_CPU_CLONES MSWA_DEFINE_ATTEND_TILE(AttendTileF32, float)
MSWA_CPU_CLONES MSWA_DEFINE_ATTEND_TILE(AttendTileF16Portable, F16)
MSWA_CPU_CLONES MSWA_DEFINE_ATTEND_TILE(AttendTileBF16, Bf16)

// The kernels for one pool type: per token (decode) and per tile of tokens (prompts).
struct AttendKernels {
  AttendFn token;
  AttendTileFn tile;
};

// fp16 pools: the F16C/AVX-512 conversions when the CPU has them (built with -march per level).
AttendKernels PickF16Kernels() {
#if defined(MSWA_F16_VARIANTS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    return {AttendF16V4, AttendTileF16V4};
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
      __builtin_cpu_supports("bmi2")) {
    return {AttendF16V3, AttendTileF16V3};
  }
#endif
  return {AttendF16Portable, AttendTileF16Portable};
}

// A run of `count` tokens of one sequence at consecutive positions, starting at token `first`.
struct TokenRun {
  int64_t first;
  int64_t count;
};

template <typename T>
void WriteKvCache(const PagedKvParams& p, const float* k, const float* v, int64_t row_stride) {
  const int64_t D = p.head_dim;
#pragma omp parallel for schedule(static) if (p.num_tokens * p.num_kv_heads > 64)
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const int64_t pos = p.positions[t];
    const int64_t slot = pos % p.block_size;
    for (int64_t h = 0; h < p.num_kv_heads; ++h) {
      const KvHeadDesc& head = p.kv_heads[h];
      const KvPoolView& pool = p.pools[head.group];
      const int32_t block = BlockOf(p, p.seq_index[t], head.group, pos);
      T* dst_k = HeadRows(static_cast<T*>(pool.k), p, pool, block, head.group_head) + slot * D;
      T* dst_v = HeadRows(static_cast<T*>(pool.v), p, pool, block, head.group_head) + slot * D;
      const float* src_k = k + t * row_stride + h * D;
      const float* src_v = v + t * row_stride + h * D;
      for (int64_t d = 0; d < D; ++d) {
        FromFloat(src_k[d], dst_k + d);
        FromFloat(src_v[d], dst_v + d);
      }
    }
  }
}

}  // namespace

void WriteKvCacheCpu(const PagedKvParams& p, const float* k, const float* v, int64_t row_stride) {
  switch (p.kv_dtype) {
    case KvDType::kF32: return WriteKvCache<float>(p, k, v, row_stride);
    case KvDType::kF16: return WriteKvCache<F16>(p, k, v, row_stride);
    case KvDType::kBF16: return WriteKvCache<Bf16>(p, k, v, row_stride);
  }
}

void PagedAttentionCpu(const PagedKvParams& p, const float* q, int64_t q_row_stride, float scale,
                       float* out) {
  const int64_t group = p.num_q_heads / p.num_kv_heads;
  const int64_t splits = (group + kMaxGroup - 1) / kMaxGroup;
  const int64_t D = p.head_dim;
  if (D > 256 || p.block_size > 64) {
    // Rejected at engine construction; keep a hard stop here rather than overflow the stacks.
    std::abort();
  }
  static const AttendKernels f16 = PickF16Kernels();
  const AttendKernels kernels = p.kv_dtype == KvDType::kF16    ? f16
                                : p.kv_dtype == KvDType::kBF16 ? AttendKernels{AttendBF16, AttendTileBF16}
                                                               : AttendKernels{AttendF32, AttendTileF32};
  // Work units: tokens at consecutive positions of one sequence (a prompt's chunk) go in tiles
  // of up to kTileRows query rows to the tile kernel; single tokens (decode) to the per-token
  // one. Head dims outside whole vectors, and positions from 2^24 on (the tile kernel compares
  // positions as floats), take the per-token kernel.
  const int64_t tile_tokens = D % 16 == 0 ? std::max<int64_t>(1, kTileRows / std::min(group, int64_t{kMaxGroup})) : 1;
  std::vector<TokenRun> runs;
  runs.reserve(static_cast<size_t>(p.num_tokens));
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    if (!runs.empty()) {
      TokenRun& run = runs.back();
      const int64_t prev = run.first + run.count - 1;
      if (run.count < tile_tokens && p.seq_index[t] == p.seq_index[prev] &&
          p.positions[t] == p.positions[prev] + 1 &&
          p.positions[t] < (int64_t{1} << 24)) {
        ++run.count;
        continue;
      }
    }
    runs.push_back(TokenRun{t, 1});
  }
  const int64_t items = static_cast<int64_t>(runs.size()) * p.num_kv_heads * splits;
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
  for (int64_t item = 0; item < items; ++item) {
    const TokenRun& run = runs[item / (p.num_kv_heads * splits)];
    const int64_t rest = item % (p.num_kv_heads * splits);
    const int64_t kvh = rest / splits;
    const int64_t part = rest % splits;
    const KvHeadDesc& head = p.kv_heads[kvh];
    const int64_t t = run.first;
    const int64_t pos = p.positions[t];
    const int64_t h0 = kvh * group + part * kMaxGroup;
    const int nq = static_cast<int>(std::min<int64_t>(kMaxGroup, (kvh + 1) * group - h0));
    const float* qt = q + t * q_row_stride + h0 * D;
    float* ot = out + (t * p.num_q_heads + h0) * D;
    if (run.count == 1) {
      kernels.token(p, head, p.seq_index[t], OldestVisible(pos, head.window), pos, qt, D, nq, scale,
                    ot, D);
    } else {
      kernels.tile(p, head, p.seq_index[t], pos, static_cast<int>(run.count), qt, q_row_stride, nq,
                   scale, ot, p.num_q_heads * D);
    }
  }
}

}  // namespace mswa
