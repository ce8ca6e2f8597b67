// MSWA attention over the window-bounded paged KV cache: the op signatures shared by the CPU
// implementation (always built) and the CUDA one (kernels/cuda/). Raw pointers and plain structs
// only, so the same params drive both and neither needs LibTorch.
//
// Storage. Each window group g owns one pool per K and V, laid out
//     pool[block][group_head][slot][d]          [num_blocks_g, heads_g, block_size, head_dim]
// A KV head of a layer is (group, group_head): the KvHeadDesc array maps the layer's KV heads to
// their pool rows, so one call covers every head group of the layer, whatever its window.
//
// Block tables are rings (see model/runtime/kv_cache_manager.h): for sequence s and group g, the block
// holding absolute position p is
//     block_tables[s * table_stride + table_offsets[g] + (p / block_size) % ring_sizes[g]]
// Only blocks with a token inside some window are valid; the kernels never touch others (tests
// fill freed blocks with NaN to prove it).
//
// Window semantics are kernels/window.h's: the token at position t sees keys t - W < p <= t.
#pragma once

#include <cstdint>

namespace mswa {

// Element type of the pools. The CUDA kernels use it for q, out and the new keys/values too;
// the CPU kernels keep q, out and the new keys/values in fp32 and convert at the pool (round to
// nearest even on write, exact on read). fp32 accumulation everywhere.
enum class KvDType : int32_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

struct KvPoolView {
  void* k = nullptr;  // [num_blocks, num_heads, block_size, head_dim] of PagedKvParams::kv_dtype
  void* v = nullptr;
  int64_t num_blocks = 0;
  int64_t num_heads = 0;  // heads_g
};

struct KvHeadDesc {
  int64_t window = 0;      // keys seen including itself; 0 = unbounded
  int32_t group = 0;       // window group (pool) index
  int32_t group_head = 0;  // row inside that group's pool
};

// Shared by the cache write and the attention of one layer over one flat batch of tokens.
struct PagedKvParams {
  int64_t num_tokens = 0;
  int64_t num_q_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  const int64_t* positions = nullptr;  // [num_tokens] absolute position of each token
  const int32_t* seq_index = nullptr;  // [num_tokens] row of block_tables for each token
  const int32_t* block_tables = nullptr;  // [num_seqs, table_stride]
  int64_t table_stride = 0;
  const int64_t* table_offsets = nullptr;  // [num_groups]
  const int64_t* ring_sizes = nullptr;     // [num_groups]
  const KvHeadDesc* kv_heads = nullptr;    // [num_kv_heads] for this layer
  const KvPoolView* pools = nullptr;       // [num_groups]
  int32_t num_groups = 0;
  KvDType kv_dtype = KvDType::kF32;
  // Attention-logit soft-capping (Gemma 2): each scaled score s becomes softcap * tanh(s /
  // softcap) before the softmax. 0 = none. The CPU kernels only; CUDA models refuse it at load.
  float softcap = 0.f;
};

// The CPU kernels below: every pointer is host memory; the pools may be of any KvDType. Both may
// be called by every thread of a team (kernels/cpu_team.h) and then split their work among it.
//
// Writes the new keys/values into their slots: token t's keys are k[t * row_stride + h * D + d]
// for KV head h (so k and v may point into a fused QKV row), likewise v. Every token's block must
// be allocated. Tokens of one sequence may be in any order. On a team, item i = t * num_kv_heads + h
// goes to the thread an `omp for schedule(static)` over num_tokens * num_kv_heads items gives it,
// so a caller that prepares each item's rows in such a loop (`nowait`) needs no barrier first.
void WriteKvCacheCpu(const PagedKvParams& p, const float* k, const float* v, int64_t row_stride);

// out[t, h, :] = sum_p softmax_p(cap(scale * q[t, h, :] . K[p])) V[p] (cap: p.softcap) over the keys p in the window of
// query head h (KV head h / (num_q_heads / num_kv_heads)) at position positions[t], for
// q[t * q_row_stride + h * D + d] (q may point into a fused QKV row) and out
// [num_tokens, num_q_heads, head_dim] contiguous. The keys of every position <= positions[t] that
// the window covers must already be in the cache (write the current chunk first). fp32
// accumulation with an online softmax; reads only in-window blocks. Tokens at consecutive
// positions of one sequence (a prompt's chunk) are attended in tiles of up to 16 query rows that
// share each K/V read (kernels/attend_tile_cpu.h); single tokens (decode) one by one. Threaded
// over (tile or token, KV head) with dynamic scheduling, so heads whose windows differ by 8x still
// balance.
void PagedAttentionCpu(const PagedKvParams& p, const float* q, int64_t q_row_stride, float scale,
                       float* out);

}  // namespace mswa
