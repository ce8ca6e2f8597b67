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
//
// Two implementations behind one interface: the CPU one (fp32 weights; fp32, fp16 or bf16 KV;
// the CPU kernels)
// and the CUDA one (model/runtime/paged_model_cuda.cc: weights and KV pools on the GPU in the weights'
// dtype, LibTorch for the matrix products, kernels/cuda for cache writes and attention), which
// needs a CUDA-enabled LibTorch at run time and the CUDA kernels at build time.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/paged_attention.h"
#include "model/format/config.h"
#include "model/runtime/device_options.h"
#include "model/runtime/kv_layout.h"
#include "model/format/weights.h"

namespace mswa {

struct PagedModelOptions {
  ModelDevice device = ModelDevice::kCpu;
  at::ScalarType dtype = at::kFloat;  // compute type (ResolveComputeDType)
  at::ScalarType activation_dtype = at::kFloat;  // ResolveActivationDType
  KvDType kv_dtype = KvDType::kF32;  // the pools' element type (ResolveKvDType)
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
  // Takes the weights and allocates the pools, per group K and V of
  // [blocks, heads_g, block_size, head_dim]: fp32 on the CPU, the weights' dtype on CUDA.
  // InvalidArgument for head_dim > 256 or block_size > 64 (CPU kernel limits), a head_dim the
  // CUDA kernels lack, or pool sizes that do not match the layout; FailedPrecondition for
  // ModelDevice::kCuda when the build has no CUDA kernels or LibTorch has no CUDA device.
  static absl::StatusOr<std::unique_ptr<PagedModel>> Create(const ModelConfig& config,
                                                            ModelWeights weights,
                                                            const PagedModelOptions& options);
  virtual ~PagedModel() = default;

  // Logits [num_logits, vocab] fp32 on the CPU. Every token's block must be allocated, and
  // every key in the windows of the batch's queries must be in the cache or in this batch.
  // Throws (c10::Error, std::bad_alloc, ...) when it cannot run: out of memory, a device fault.
  virtual at::Tensor Forward(const StepInput& input) = 0;

  // True when a Forward that threw leaves the model unusable, so every later step would fail
  // too: a CUDA fault poisons the whole context. On the CPU a failed step (out of memory) leaves
  // the weights and the cache as they were.
  virtual bool FailureIsFatal() const { return false; }

  // Fills one block of group g with NaN (tests: a kernel that reads a freed block fails).
  virtual void PoisonBlock(int g, int32_t block) = 0;

  virtual int64_t kv_bytes() const = 0;  // memory held by the pools

  const ModelConfig& config() const { return config_; }
  KvDType kv_dtype() const { return options_.kv_dtype; }
  at::ScalarType dtype() const { return options_.dtype; }
  at::ScalarType activation_dtype() const { return options_.activation_dtype; }
  const KvLayout& layout() const { return layout_; }
  int64_t table_stride() const { return table_stride_; }
  const std::vector<int64_t>& table_offsets() const { return table_offsets_; }

 protected:
  PagedModel() = default;
  // Validates the options against the config and fills the members below.
  absl::Status Init(const ModelConfig& config, const PagedModelOptions& options);
  // The kernel parameters that do not depend on where the arrays live: shapes and table stride.
  // Each implementation adds its pointers (host or device).
  PagedKvParams StepParams(int64_t num_tokens) const;

  ModelConfig config_;
  KvLayout layout_;
  PagedModelOptions options_;
  std::vector<std::vector<KvHeadDesc>> kv_heads_;  // per layer (pool pointers not included)
  std::vector<int64_t> table_offsets_;
  int64_t table_stride_ = 0;
};


}  // namespace mswa
