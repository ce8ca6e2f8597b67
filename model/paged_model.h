// The transformer forward over the window-bounded paged KV cache: one call runs one engine step,
// a flat batch of tokens from many sequences (decodes and prefill chunks mixed).
//
//   tokens [N] -> embed -> per layer: RMSNorm, one QKV matmul for all N tokens, RoPE at each
//   token's absolute position, cache write, paged MSWA attention (one kernel call for every head
//   group), output projection, RMSNorm, fused gate/up matmul, SwiGLU, down projection
//   -> logits only for the rows asked for (last token of generating sequences; every token of
//   scoring ones).
//
// The KV bookkeeping (which block holds what) lives in KvCacheManager; this class owns the
// pools' memory and reads the block tables the engine passes in. Engine thread only.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/paged_attention.h"
#include "model/config.h"
#include "model/kv_layout.h"
#include "model/weights.h"

namespace mswa {

struct PagedModelOptions {
  int64_t block_size = 16;
  std::vector<int64_t> blocks_per_group;  // pool sizes, one per KvLayout group
  std::vector<int64_t> ring_sizes;        // block-table ring size per group (KvCacheManager)
};

// One step's input. Pointers are borrowed for the duration of Forward.
struct StepInput {
  int64_t num_tokens = 0;
  const int32_t* tokens = nullptr;      // [num_tokens]
  const int64_t* positions = nullptr;   // [num_tokens] absolute positions
  const int32_t* seq_index = nullptr;   // [num_tokens] row of block_tables
  const int32_t* block_tables = nullptr;  // [num_seqs, table_stride()]
  int64_t num_logits = 0;
  const int64_t* logits_rows = nullptr;  // [num_logits] indices into the tokens
};

class PagedModel {
 public:
  // Takes the weights (converted to fp32 if needed) and allocates the pools:
  // per group, K and V of [blocks, heads_g, block_size, head_dim] fp32.
  // InvalidArgument for head_dim > 256 or block_size > 64 (the CPU kernel's limits) or pool
  // sizes that do not match the layout.
  static absl::StatusOr<std::unique_ptr<PagedModel>> Create(const ModelConfig& config,
                                                            ModelWeights weights,
                                                            const PagedModelOptions& options);

  // Logits [num_logits, vocab] fp32. Every token's block must be allocated, and every key in
  // the windows of the batch's queries must be in the cache or in this batch.
  at::Tensor Forward(const StepInput& input);

  // Fills one block of group g with NaN (tests: a kernel that reads a freed block fails).
  void PoisonBlock(int g, int32_t block);

  const ModelConfig& config() const { return config_; }
  const KvLayout& layout() const { return layout_; }
  int64_t table_stride() const { return table_stride_; }
  const std::vector<int64_t>& table_offsets() const { return table_offsets_; }
  int64_t kv_bytes() const;  // memory held by the pools

 private:
  PagedModel() = default;
  enum class Proj { kQkv, kO, kGateUp, kDown, kLmHead };
  // y (+)= x W^T for projection `proj` of `layer`: a matrix-vector kernel for a few rows, BLAS
  // for more.
  void Linear(const at::Tensor& x, int64_t layer, Proj proj, at::Tensor& y, bool accumulate) const;

  ModelConfig config_;
  KvLayout layout_;
  PagedModelOptions options_;
  // Per layer, transposed to [in, out] so every projection is one plain matrix product:
  // [q; k; v]^T [E, (H + 2 KV) D], o^T [H D, E], [gate; up]^T [E, 2F], down^T [F, E].
  // The [out, in] originals serve decode-sized batches (kernels/small_linear.h); the fused
  // q|k|v and gate|up are kept in both layouts.
  std::vector<at::Tensor> w_qkv_t_, w_o_t_, w_gate_up_t_, w_down_t_;
  std::vector<at::Tensor> w_qkv_, w_gate_up_;
  at::Tensor lm_head_t_;  // [E, V]
  std::vector<double> inv_freq_;  // RoPE frequencies theta^(-2i/D), fp64
  ModelWeights weights_;
  std::vector<at::Tensor> pool_k_, pool_v_;  // per group
  std::vector<KvPoolView> pools_;
  std::vector<std::vector<KvHeadDesc>> kv_heads_;  // per layer
  std::vector<int64_t> table_offsets_;
  int64_t table_stride_ = 0;
};

}  // namespace mswa
