#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/attend_cpu.h"
#include "kernels/attend_tile_cpu.h"
#include "kernels/cpu_clones.h"
#include "kernels/cpu_team.h"
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

// The kernels per pool type for this CPU: the per-level units' (built with -march) where it
// runs them, else the target_clones versions above.
struct PoolKernels {
  AttendKernels f32, f16, bf16;
};
PoolKernels PickKernels() {
  PoolKernels k{{AttendF32, AttendTileF32}, {AttendF16Portable, AttendTileF16Portable}, {AttendBF16, AttendTileBF16}};
#if defined(MSWA_ISA_VARIANTS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    k.f16 = {AttendF16V4, AttendTileF16V4};
    k.f32.tile = AttendTileF32V4;
    k.bf16.tile = AttendTileBF16V4;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
             __builtin_cpu_supports("bmi2")) {
    k.f16 = {AttendF16V3, AttendTileF16V3};
  }
#endif
  return k;
}

// A run of `count` tokens of one sequence at consecutive positions, starting at token `first`.
struct TokenRun {
  int64_t first;
  int64_t count;
};

// A decode token's keys are split into parts of whole blocks, about kKeysPerPart keys each
// (at most kMaxKeyParts), computed as separate work items and merged (flash-decoding): one
// token's attention over one KV head then uses every thread, where a model with one or two KV
// heads (Gemma 3 270M, 1) left all but one or two idle at batch 1 on long contexts. The split
// depends only on the token's key range, never on the batch or the threads, so a token's output
// is the same in every step it could be computed in.
constexpr int64_t kKeysPerPart = 256;
constexpr int64_t kMaxKeyParts = 16;

int64_t KeyParts(int64_t first, int64_t last, int64_t block_size) {
  const int64_t blocks = last / block_size - first / block_size + 1;
  const int64_t parts = (last - first + 1 + kKeysPerPart - 1) / kKeysPerPart;
  return std::min({parts, blocks, kMaxKeyParts});
}

// Keys [first, last] of part `i` of `parts`: the blocks divided as evenly as whole blocks allow.
std::pair<int64_t, int64_t> KeyPart(int64_t first, int64_t last, int64_t block_size, int64_t i,
                                    int64_t parts) {
  const int64_t b0 = first / block_size, blocks = last / block_size - b0 + 1;
  const int64_t begin = (b0 + blocks * i / parts) * block_size;
  const int64_t end = (b0 + blocks * (i + 1) / parts) * block_size - 1;
  return {std::max(first, begin), std::min(last, end)};
}

// One work item: query heads [h0, h0 + nq) of one run over one KV head; for a split decode
// token, one part of its keys, written unnormalized to `scratch` (offset into the call's
// scratch buffer, -1 when not split).
struct WorkItem {
  int32_t run;
  int32_t kvh;
  int32_t h0;
  int32_t nq;
  int32_t key_part;
  int32_t key_parts;
  int64_t scratch;
};

// Merges the `parts` partial results of nq heads (each part: nq rows of D unnormalized sums,
// then nq (m, l) pairs) into out (row stride D): the softmax over all of the keys.
void MergeKeyParts(const float* scratch, int64_t parts, int nq, int64_t D, float* out) {
  const int64_t part_floats = nq * (D + 2);
  for (int h = 0; h < nq; ++h) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < parts; ++i) m = std::max(m, scratch[i * part_floats + nq * D + 2 * h]);
    float l = 0.f;
    float* o = out + h * D;
    for (int64_t d = 0; d < D; ++d) o[d] = 0.f;
    for (int64_t i = 0; i < parts; ++i) {
      const float* part = scratch + i * part_floats;
      const float li = part[nq * D + 2 * h + 1];
      if (li == 0.f) continue;
      const float f = std::exp(part[nq * D + 2 * h] - m);
      l += li * f;
      const float* acc = part + h * D;
      for (int64_t d = 0; d < D; ++d) o[d] += acc[d] * f;
    }
    const float inv = l > 0.f ? 1.f / l : 0.f;
    for (int64_t d = 0; d < D; ++d) o[d] *= inv;
  }
}

// One head's new key and value rows in the pool's type, per ISA level: with F16C a half is one
// instruction, where baseline x86-64 calls a software conversion per value (fp16 KV writes took
// 2.4x fp32's time on the hidden-256 Llama's decode).
template <typename T>
__attribute__((always_inline)) inline void StoreRows(const float* k, const float* v, int64_t D, T* dk, T* dv) {
  for (int64_t d = 0; d < D; ++d) {
    FromFloat(k[d], dk + d);
    FromFloat(v[d], dv + d);
  }
}
MSWA_CPU_CLONES void StoreRowsF32(const float* k, const float* v, int64_t D, float* dk, float* dv) {
  StoreRows(k, v, D, dk, dv);
}
MSWA_CPU_CLONES void StoreRowsF16(const float* k, const float* v, int64_t D, F16* dk, F16* dv) {
  StoreRows(k, v, D, dk, dv);
}
MSWA_CPU_CLONES void StoreRowsBF16(const float* k, const float* v, int64_t D, Bf16* dk, Bf16* dv) {
  StoreRows(k, v, D, dk, dv);
}
inline void StoreRowsOf(const float* k, const float* v, int64_t D, float* dk, float* dv) { StoreRowsF32(k, v, D, dk, dv); }
inline void StoreRowsOf(const float* k, const float* v, int64_t D, F16* dk, F16* dv) { StoreRowsF16(k, v, D, dk, dv); }
inline void StoreRowsOf(const float* k, const float* v, int64_t D, Bf16* dk, Bf16* dv) { StoreRowsBF16(k, v, D, dk, dv); }

// Items (token, KV head) in a static schedule, as paged_attention.h promises callers on a team.
template <typename T>
void WriteKvCache(const PagedKvParams& p, const float* k, const float* v, int64_t row_stride) {
  const int64_t D = p.head_dim;
  const int64_t items = p.num_tokens * p.num_kv_heads;
  OnTeam(items > 64, [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < items; ++i) {
      const int64_t t = i / p.num_kv_heads, h = i % p.num_kv_heads;
      const int64_t pos = p.positions[t];
      const int64_t slot = pos % p.block_size;
      const KvHeadDesc& head = p.kv_heads[h];
      const KvPoolView& pool = p.pools[head.group];
      const int32_t block = BlockOf(p, p.seq_index[t], head.group, pos);
      T* dst_k = HeadRows(static_cast<T*>(pool.k), p, pool, block, head.group_head) + slot * D;
      T* dst_v = HeadRows(static_cast<T*>(pool.v), p, pool, block, head.group_head) + slot * D;
      StoreRowsOf(k + t * row_stride + h * D, v + t * row_stride + h * D, D, dst_k, dst_v);
    }
  });
}

// A call's work: its token runs, their work items, and for each split token the index of its
// first part's item (the merges).
struct AttentionPlan {
  std::vector<TokenRun> runs;
  std::vector<WorkItem> items;
  std::vector<int64_t> merges;
  int64_t scratch_floats = 0;

  // Tokens at consecutive positions of one sequence (a prompt's chunk) go in runs of up to
  // `tile_tokens` to the tile kernel; single tokens (decode) to the per-token one. Positions
  // from 2^24 on (the tile kernel compares positions as floats) take the per-token kernel.
  void Build(const PagedKvParams& p, int64_t group, int64_t splits, int64_t tile_tokens) {
    runs.clear();
    items.clear();
    merges.clear();
    scratch_floats = 0;
    for (int64_t t = 0; t < p.num_tokens; ++t) {
      if (!runs.empty()) {
        TokenRun& run = runs.back();
        const int64_t prev = run.first + run.count - 1;
        if (run.count < tile_tokens && p.seq_index[t] == p.seq_index[prev] &&
            p.positions[t] == p.positions[prev] + 1 && p.positions[t] < (int64_t{1} << 24)) {
          ++run.count;
          continue;
        }
      }
      runs.push_back(TokenRun{t, 1});
    }
    const int64_t D = p.head_dim;
    for (size_t r = 0; r < runs.size(); ++r) {
      const int64_t pos = p.positions[runs[r].first];
      for (int64_t kvh = 0; kvh < p.num_kv_heads; ++kvh) {
        const int64_t key_parts =
            runs[r].count == 1 ? KeyParts(OldestVisible(pos, p.kv_heads[kvh].window), pos, p.block_size) : 1;
        for (int64_t part = 0; part < splits; ++part) {
          const int64_t h0 = kvh * group + part * kMaxGroup;
          const int nq = static_cast<int>(std::min<int64_t>(kMaxGroup, (kvh + 1) * group - h0));
          if (key_parts > 1) merges.push_back(static_cast<int64_t>(items.size()));
          for (int64_t key_part = 0; key_part < key_parts; ++key_part) {
            items.push_back(WorkItem{static_cast<int32_t>(r), static_cast<int32_t>(kvh), static_cast<int32_t>(h0),
                                     nq, static_cast<int32_t>(key_part), static_cast<int32_t>(key_parts),
                                     key_parts > 1 ? scratch_floats : -1});
            if (key_parts > 1) scratch_floats += nq * (D + 2);
          }
        }
      }
    }
  }
};

// The calling thread's buffer for split tokens' parts, kept for its next call.
float* ScratchOfThread(int64_t floats) {
  thread_local std::vector<float> buffer;
  buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
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
  static const PoolKernels picked = PickKernels();
  const AttendKernels& kernels = p.kv_dtype == KvDType::kF16    ? picked.f16
                                 : p.kv_dtype == KvDType::kBF16 ? picked.bf16
                                                                : picked.f32;
  // The plan, built by each thread of a team alike (a few items at decode: cheaper than a
  // barrier), in vectors kept for the next call. Read below through `plan`: inside the
  // region, the thread_local's name would be each thread's own.
  thread_local AttentionPlan plan_of_thread;
  AttentionPlan& plan = plan_of_thread;
  // Head dims outside whole vectors take the per-token kernel (runs of one token).
  const int64_t tile_tokens =
      D % 16 == 0 ? std::max<int64_t>(1, kTileRows / std::min(group, int64_t{kMaxGroup})) : 1;
  plan.Build(p, group, splits, tile_tokens);
  const int64_t n_items = static_cast<int64_t>(plan.items.size());
  const int64_t n_merges = static_cast<int64_t>(plan.merges.size());
  // The split tokens' parts go to one buffer for all threads (a part and its merge may run on
  // different threads): a team takes the one thread's that allocates it.
  float* scratch = nullptr;
  if (plan.scratch_floats > 0) {
    if (omp_in_parallel()) {
#pragma omp single copyprivate(scratch)
      scratch = ScratchOfThread(plan.scratch_floats);
    } else {
      scratch = ScratchOfThread(plan.scratch_floats);
    }
  }
  OnTeam(n_items > 1, [&] {
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_items; ++i) {
      const WorkItem& item = plan.items[i];
      const TokenRun& run = plan.runs[item.run];
      const KvHeadDesc& head = p.kv_heads[item.kvh];
      const int64_t t = run.first;
      const int64_t pos = p.positions[t];
      const float* qt = q + t * q_row_stride + item.h0 * D;
      float* ot = out + (t * p.num_q_heads + item.h0) * D;
      if (run.count > 1) {
        kernels.tile(p, head, p.seq_index[t], pos, static_cast<int>(run.count), qt, q_row_stride, item.nq,
                     scale, ot, p.num_q_heads * D);
      } else if (item.key_parts == 1) {
        kernels.token(p, head, p.seq_index[t], OldestVisible(pos, head.window), pos, qt, D, item.nq, scale,
                      ot, D, nullptr);
      } else {
        const auto [first, last] =
            KeyPart(OldestVisible(pos, head.window), pos, p.block_size, item.key_part, item.key_parts);
        float* part = scratch + item.scratch;
        kernels.token(p, head, p.seq_index[t], first, last, qt, D, item.nq, scale, part, D, part + item.nq * D);
      }
    }
  });
  // The split tokens' parts, merged: each first part's item names its group's scratch.
  if (n_merges == 0) return;
  OnTeam(n_merges > 8, [&] {
#pragma omp for schedule(static)
    for (int64_t m = 0; m < n_merges; ++m) {
      const WorkItem& item = plan.items[plan.merges[m]];
      const int64_t t = plan.runs[item.run].first;
      MergeKeyParts(scratch + item.scratch, item.key_parts, item.nq, D,
                    out + (t * p.num_q_heads + item.h0) * D);
    }
  });
}

}  // namespace mswa
