// CUDA MSWA attention over the window-bounded paged KV cache. Same PagedKvParams, storage layout
// and window semantics as the CPU kernels (kernels/paged_attention.h), with one difference: every
// pointer the params hold (positions, seq_index, block tables, table offsets, ring sizes, the
// KvHeadDesc and KvPoolView arrays, the pools' storage) is device memory; the struct itself is
// passed by value. q, out and the new keys/values are of p.kv_dtype (fp32, fp16 or bf16);
// softmax and accumulation are fp32 whatever the storage.
//
// One launch per kernel covers every head group of a layer (each KV head carries its window):
//   WriteKvCache   the new keys/values into their ring slots.
//   PagedDecode    any set of independent queries (decode: one per sequence). A thread block
//                  owns (token, KV head, up to 8 of its query heads, key split) and reads each
//                  in-window K/V row once for all of them; long windows are split over several
//                  thread blocks (split-K) whose fp32 partials (max, sum, accumulator) a second
//                  kernel merges with log-sum-exp. Only keys in [OldestVisible(pos, W), pos] are
//                  read.
//   PagedPrefill   chunked prefill: tiles of 64 consecutive queries of one sequence; key tiles of
//                  32 cover only the union of the tile's windows, masked per query by InWindow.
// A query's row is never all-masked (it sees itself); a split or tile with no visible key
// contributes nothing and an empty result is 0, never NaN. Keys outside the window are never
// loaded, so freed blocks may hold anything (the tests fill them with NaN). Index arithmetic is
// int64.
//
// Row strides (q_row_stride, row_stride) are multiples of head_dim, so rows can be read with vector
// loads. Plain C++ interface (no CUDA headers needed): each call returns "" on success, else a message
// (CUDA's error text or the unsupported argument). Calls are asynchronous on `stream`
// (a cudaStream_t; nullptr = the default stream).
#pragma once

#include <cstdint>
#include <string>

#include "kernels/paged_attention.h"

namespace mswa::cuda {

// Head dims with compiled kernels: 32, 64, 96, 128, 256.
bool SupportedHeadDim(int64_t head_dim);

// Writes token t's keys k[t * row_stride + h * head_dim + d] for KV head h (likewise v) into
// their slots; every token's block must be allocated.
std::string WriteKvCache(const PagedKvParams& p, const void* k, const void* v, int64_t row_stride,
                         void* stream);

// How PagedDecode splits keys, and the device scratch it then needs. Host-only arithmetic.
struct DecodePlan {
  int32_t num_splits = 1;
  int64_t workspace_bytes = 0;  // 0 when num_splits == 1
};
// max_keys: the most keys any query of the batch sees (min(window, position + 1), or
// position + 1 for an unbounded head). sm_count: the device's multiprocessors (DeviceSmCount).
// Splits only when the batch alone cannot fill the device, and never below 256 keys a split.
DecodePlan PlanDecode(int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                      int64_t max_keys, int sm_count);
// A plan with exactly `num_splits` (>= 1) splits.
DecodePlan DecodePlanWithSplits(int64_t num_tokens, int64_t num_q_heads, int64_t head_dim, int32_t num_splits);

// out[t, h, :] = softmax(scale * q_h . K) V over the keys in query head h's window (its KV head
// is h / (num_q_heads / num_kv_heads)), q[t * q_row_stride + h * head_dim + d], out contiguous
// [num_tokens, num_q_heads, head_dim]. The keys must be in the cache (WriteKvCache first).
// `workspace` holds plan.workspace_bytes of device memory (may be null when that is 0).
std::string PagedDecode(const PagedKvParams& p, const void* q, int64_t q_row_stride, float scale,
                        void* out, const DecodePlan& plan, void* workspace, void* stream);

// The flat batch of a prefill call: sequence i's queries are tokens [query_starts[i],
// query_starts[i + 1]) with ascending positions (a chunk), all of one seq_index.
struct PrefillBatch {
  const int32_t* query_starts = nullptr;  // device, [num_seqs + 1]
  int32_t num_seqs = 0;
  int32_t max_query_len = 0;  // the longest chunk (host value; sizes the grid)
};

// The same result as PagedDecode for every token of `batch`, tiled so that a key tile is read
// once per 64 queries.
std::string PagedPrefill(const PagedKvParams& p, const PrefillBatch& batch, const void* q,
                         int64_t q_row_stride, float scale, void* out, void* stream);

}  // namespace mswa::cuda
