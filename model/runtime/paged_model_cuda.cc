#include "model/runtime/paged_model_cuda.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/runtime/rope.h"
#include "model/status_macros.h"
#if defined(MSWA_WITH_CUDA)
#include "kernels/cuda/device.h"
#include "kernels/cuda/paged_attention_cuda.h"
#endif

namespace mswa {

absl::Status CudaSupportsArch(const ModelConfig& c) {
  const ArchSpec& a = c.arch;
  const RopeSpec r0 = c.rope(0);
  std::string missing;
  if (a.norm_plus_one || a.sandwich_norms) missing = "Gemma's (1 + w) and sandwich norms";
  else if (a.qk_norm) missing = "q/k norms";
  else if (a.embed_scale != 1.0) missing = "embedding scale";
  else if (a.activation != Activation::kSilu) missing = "GELU activation";
  else if (a.attn_scale > 0) missing = "query_pre_attn_scalar";
  else if (a.attn_softcap > 0 || a.final_softcap > 0) missing = "logit soft-capping";
  else if (a.qkv_bias || a.o_bias || a.mlp_bias) missing = "projection biases";
  else if (r0.scaling != RopeSpec::Scaling::kNone || r0.rotary_dim != c.head_dim) {
    missing = "RoPE scaling or partial rotary";
  }
  for (int64_t l = 1; missing.empty() && l < c.num_hidden_layers; ++l) {
    if (!(c.rope(l) == r0)) missing = "per-layer RoPE";
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the CUDA model does not implement ", missing, " (model_type \"", c.model_type,
      "\"); serve this model with --device cpu"));
}

#if !defined(MSWA_WITH_CUDA)

absl::StatusOr<std::unique_ptr<PagedModel>> CreatePagedModelCuda(const ModelConfig&, ModelWeights,
                                                                 const PagedModelOptions&) {
  return absl::FailedPreconditionError(
      "this build has no CUDA kernels (configure with the CUDA Toolkit and -DMSWA_CUDA=ON); use --device cpu");
}

#else

namespace {

KvDType KvTypeOf(at::ScalarType t) {
  return t == at::kHalf ? KvDType::kF16 : t == at::kBFloat16 ? KvDType::kBF16 : KvDType::kF32;
}

// A host array as a device byte tensor (descriptor arrays the kernels read).
at::Tensor BytesToDevice(const void* data, int64_t bytes, const at::Device& device) {
  at::Tensor host = at::empty({std::max<int64_t>(bytes, 1)}, at::kByte);
  std::memcpy(host.data_ptr(), data, static_cast<size_t>(bytes));
  return host.to(device);
}

template <typename T>
at::Tensor VectorToDevice(const std::vector<T>& v, const at::Device& device) {
  return BytesToDevice(v.data(), static_cast<int64_t>(v.size() * sizeof(T)), device);
}

// RMSNorm in fp32 whatever the storage type, then scaled by w in the storage type.
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& w, double eps) {
  const at::Tensor xf = x.to(at::kFloat);
  return (xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps)).to(x.scalar_type()) * w;
}

void Check(const std::string& error, const char* what) {
  // A kernel launch fails only on a CUDA fault or a bug, after which the context is unusable.
  if (!error.empty()) throw std::runtime_error(absl::StrCat(what, ": ", error));
}

// Weights and KV pools on the GPU in the weights' dtype (fp32, fp16 or bf16). LibTorch does the
// matrix products and elementwise work on its current stream (the default stream); the
// kernels/cuda launches go to the same stream, so they are ordered with it.
class PagedModelCuda final : public PagedModel {
 public:
  static absl::StatusOr<std::unique_ptr<PagedModel>> Create(const ModelConfig& config, ModelWeights weights,
                                                            const PagedModelOptions& options);
  at::Tensor Forward(const StepInput& input) override;
  bool FailureIsFatal() const override { return true; }
  void PoisonBlock(int g, int32_t block) override {
    pool_k_[g][block].fill_(std::numeric_limits<float>::quiet_NaN());
    pool_v_[g][block].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  int64_t kv_bytes() const override {
    int64_t bytes = 0;
    for (const auto& t : pool_k_) bytes += 2 * t.numel() * static_cast<int64_t>(t.element_size());
    return bytes;
  }

 private:
  struct Layer {
    at::Tensor input_norm, post_norm;
    at::Tensor qkv_t, o_t, gate_up_t, down_t;  // [in, out]
  };
  at::Device device_{at::kCUDA, 0};
  at::ScalarType dtype_ = at::kFloat;
  at::Tensor embed_, final_norm_, lm_head_t_;
  std::vector<Layer> layers_;
  std::vector<at::Tensor> pool_k_, pool_v_;
  at::Tensor d_pools_, d_table_offsets_, d_ring_sizes_;
  std::vector<at::Tensor> d_kv_heads_;  // per layer
  int64_t max_window_ = 0;              // the largest window; 0 when some head is unbounded
  int sm_count_ = 0;
};

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModelCuda::Create(const ModelConfig& config, ModelWeights weights,
                                                                   const PagedModelOptions& options) {
  if (!at::hasCUDA() || cuda::DeviceCount() == 0) {
    return absl::FailedPreconditionError(
        "--device cuda needs a GPU and a CUDA-enabled LibTorch (this LibTorch has no CUDA or sees no GPU); "
        "use --device cpu");
  }
  if (!cuda::SupportedHeadDim(config.head_dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim ", config.head_dim, " has no CUDA kernel (32, 64, 96, 128 or 256)"));
  }
  RETURN_IF_ERROR(CudaSupportsArch(config));
  std::unique_ptr<PagedModelCuda> m(new PagedModelCuda());
  RETURN_IF_ERROR(m->Init(config, options));
  m->dtype_ = weights.dtype();
  const at::Device dev = m->device_;
  auto on_gpu = [&](const at::Tensor& t) { return t.to(dev, m->dtype_).contiguous(); };
  m->embed_ = on_gpu(weights.embed);
  m->final_norm_ = on_gpu(weights.final_norm);
  m->lm_head_t_ = on_gpu(weights.lm_head.t());
  for (const LayerWeights& l : weights.layers) {
    m->layers_.push_back(Layer{on_gpu(l.input_norm), on_gpu(l.post_norm),
                               on_gpu(at::cat({l.q_proj, l.k_proj, l.v_proj}, 0).t()), on_gpu(l.o_proj.t()),
                               on_gpu(at::cat({l.gate_proj, l.up_proj}, 0).t()), on_gpu(l.down_proj.t())});
  }
  std::vector<KvPoolView> views;
  const auto pool_options = at::TensorOptions().dtype(m->dtype_).device(dev);
  for (size_t g = 0; g < m->layout_.groups.size(); ++g) {
    const int64_t heads = m->layout_.groups[g].num_heads, blocks = options.blocks_per_group[g];
    m->pool_k_.push_back(at::empty({blocks, heads, options.block_size, config.head_dim}, pool_options));
    m->pool_v_.push_back(at::empty({blocks, heads, options.block_size, config.head_dim}, pool_options));
    views.push_back(KvPoolView{m->pool_k_[g].data_ptr(), m->pool_v_[g].data_ptr(), blocks, heads});
  }
  m->d_pools_ = VectorToDevice(views, dev);
  m->d_table_offsets_ = VectorToDevice(m->table_offsets_, dev);
  m->d_ring_sizes_ = VectorToDevice(options.ring_sizes, dev);
  for (const auto& heads : m->kv_heads_) m->d_kv_heads_.push_back(VectorToDevice(heads, dev));
  m->max_window_ = config.all_windows_finite() ? config.max_window() : 0;
  m->sm_count_ = cuda::DeviceSmCount();
  return std::unique_ptr<PagedModel>(std::move(m));
}

at::Tensor PagedModelCuda::Forward(const StepInput& in) {
  const ModelConfig& c = config_;
  const int64_t N = in.num_tokens;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t F = c.intermediate_size, half = D / 2;
  const int64_t row = (H + 2 * KV) * D;  // fused QKV row
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  const auto i32 = at::TensorOptions().dtype(at::kInt);
  if (N == 0) return at::empty({0, c.vocab_size}, at::kFloat);

  // The step's host arrays, on the device.
  int32_t num_seqs = 0;
  for (int64_t t = 0; t < N; ++t) num_seqs = std::max(num_seqs, in.seq_index[t] + 1);
  at::Tensor tokens = at::empty({N}, i64);
  for (int64_t t = 0; t < N; ++t) tokens.data_ptr<int64_t>()[t] = in.tokens[t];
  const at::Tensor d_tokens = tokens.to(device_);
  const at::Tensor d_pos = at::from_blob(const_cast<int64_t*>(in.positions), {N}, i64).to(device_);
  const at::Tensor d_seq = at::from_blob(const_cast<int32_t*>(in.seq_index), {N}, i32).to(device_);
  const at::Tensor d_tables =
      at::from_blob(const_cast<int32_t*>(in.block_tables), {num_seqs * table_stride_}, i32).to(device_);
  const at::Tensor d_rows = at::from_blob(const_cast<int64_t*>(in.logits_rows), {in.num_logits}, i64).to(device_);

  // RoPE tables on the host (angles in fp64: positions grow without bound), used in fp32.
  const RopeTables rope = MakeRopeTablesAt(in.positions, N, c.rope(0), at::kFloat);
  const at::Tensor cos = rope.cos.to(device_).view({N, 1, half});
  const at::Tensor sin = rope.sin.to(device_).view({N, 1, half});

  // The engine puts each sequence's tokens together with ascending positions: then the prefill
  // kernel runs over per-sequence ranges; a batch of single tokens (decode) or any other order
  // goes through the decode kernel, which takes queries one by one.
  std::vector<int32_t> starts = {0};
  std::set<int32_t> seen = {in.seq_index[0]};
  bool ranges = true;
  int32_t longest = 0;
  int64_t max_keys = 1;
  for (int64_t t = 0; t < N; ++t) {
    const int64_t seen_keys = in.positions[t] + 1;
    max_keys = std::max(max_keys, max_window_ == 0 ? seen_keys : std::min(max_window_, seen_keys));
    if (t + 1 == N || in.seq_index[t + 1] != in.seq_index[t]) {
      longest = std::max(longest, static_cast<int32_t>(t + 1) - starts.back());
      starts.push_back(static_cast<int32_t>(t + 1));
      if (t + 1 < N && !seen.insert(in.seq_index[t + 1]).second) ranges = false;
    } else if (in.positions[t + 1] <= in.positions[t]) {
      ranges = false;
    }
  }
  const bool prefill = ranges && longest > 1;
  at::Tensor d_starts, workspace;  // the prefill ranges, or the decode plan's scratch
  cuda::DecodePlan plan;
  if (prefill) {
    d_starts = at::from_blob(starts.data(), {static_cast<int64_t>(starts.size())}, i32).to(device_);
  } else {
    plan = cuda::PlanDecode(N, H, KV, D, max_keys, sm_count_);
    workspace = at::empty({std::max<int64_t>(plan.workspace_bytes, 1)},
                          at::TensorOptions().dtype(at::kByte).device(device_));
  }

  PagedKvParams p = StepParams(N);
  p.positions = d_pos.data_ptr<int64_t>();
  p.seq_index = d_seq.data_ptr<int32_t>();
  p.block_tables = d_tables.data_ptr<int32_t>();
  p.table_offsets = static_cast<const int64_t*>(d_table_offsets_.data_ptr());
  p.ring_sizes = static_cast<const int64_t*>(d_ring_sizes_.data_ptr());
  p.pools = static_cast<const KvPoolView*>(d_pools_.data_ptr());
  p.kv_dtype = KvTypeOf(dtype_);
  const int64_t es = static_cast<int64_t>(c10::elementSize(dtype_));

  at::Tensor x = embed_.index_select(0, d_tokens);  // [N, E] residual stream
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& w = layers_[l];
    at::Tensor qkv = at::mm(RmsNorm(x, w.input_norm, c.rms_norm_eps), w.qkv_t);  // [N, row]
    at::Tensor qk = qkv.narrow(1, 0, (H + KV) * D).view({N, H + KV, D}).to(at::kFloat);
    const at::Tensor a = qk.narrow(2, 0, half), b = qk.narrow(2, half, half);
    qkv.narrow(1, 0, (H + KV) * D).copy_(at::cat({a * cos - b * sin, b * cos + a * sin}, 2).view({N, (H + KV) * D}));
    p.kv_heads = static_cast<const KvHeadDesc*>(d_kv_heads_[l].data_ptr());
    char* base = static_cast<char*>(qkv.data_ptr());
    Check(cuda::WriteKvCache(p, base + H * D * es, base + (H + KV) * D * es, row, nullptr), "KV cache write");
    at::Tensor attn = at::empty({N, H * D}, x.options());
    if (prefill) {
      const cuda::PrefillBatch batch{d_starts.data_ptr<int32_t>(), static_cast<int32_t>(starts.size() - 1), longest};
      Check(cuda::PagedPrefill(p, batch, base, row, scale, attn.data_ptr(), nullptr), "prefill attention");
    } else {
      Check(cuda::PagedDecode(p, base, row, scale, attn.data_ptr(), plan, workspace.data_ptr(), nullptr),
            "decode attention");
    }
    x.addmm_(attn, w.o_t);  // x += attn @ o^T
    const at::Tensor gu = at::mm(RmsNorm(x, w.post_norm, c.rms_norm_eps), w.gate_up_t);
    x.addmm_(at::silu(gu.narrow(1, 0, F)) * gu.narrow(1, F, F), w.down_t);  // x += (silu(g) * u) @ down^T
  }
  const at::Tensor last = RmsNorm(x.index_select(0, d_rows), final_norm_, c.rms_norm_eps);
  return at::mm(last, lm_head_t_).to(at::kFloat).cpu();  // [num_logits, V]
}

}  // namespace

absl::StatusOr<std::unique_ptr<PagedModel>> CreatePagedModelCuda(const ModelConfig& config, ModelWeights weights,
                                                                 const PagedModelOptions& options) {
  return PagedModelCuda::Create(config, std::move(weights), options);
}

#endif  // MSWA_WITH_CUDA

}  // namespace mswa
