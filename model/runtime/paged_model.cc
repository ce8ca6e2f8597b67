#include "model/runtime/paged_model.h"

#include "kernels/small_linear.h"

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/runtime/paged_model_cuda.h"
#include "model/status_macros.h"

namespace mswa {

absl::StatusOr<ModelDevice> ParseModelDevice(const std::string& name) {
  if (name == "cpu") return ModelDevice::kCpu;
  if (name == "cuda") return ModelDevice::kCuda;
  return absl::InvalidArgumentError(absl::StrCat("unknown device \"", name, "\" (cpu or cuda)"));
}

namespace {

absl::StatusOr<KvDType> KvDTypeOf(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return KvDType::kF32;
    case at::kHalf: return KvDType::kF16;
    case at::kBFloat16: return KvDType::kBF16;
    default: return absl::InvalidArgumentError(absl::StrCat("no KV cache type for weights of ", c10::toString(t)));
  }
}

at::ScalarType ScalarTypeOf(KvDType t) {
  return t == KvDType::kF16 ? at::kHalf : t == KvDType::kBF16 ? at::kBFloat16 : at::kFloat;
}

}  // namespace

absl::StatusOr<KvDType> ResolveKvDType(ModelDevice device, at::ScalarType weights_dtype,
                                       std::optional<KvDType> requested) {
  if (device == ModelDevice::kCpu) return requested.value_or(KvDType::kF32);
  ASSIGN_OR_RETURN(KvDType weights_kv, KvDTypeOf(weights_dtype));
  if (requested.has_value() && *requested != weights_kv) {
    return absl::InvalidArgumentError(absl::StrCat(
        "on cuda the KV cache has the weights' type (", KvDTypeName(weights_kv), "), not ",
        KvDTypeName(*requested), "; use --kv_cache_dtype=auto or convert the weights"));
  }
  return weights_kv;
}

absl::StatusOr<at::ScalarType> ResolveComputeDType(ModelDevice device, at::ScalarType weights_dtype,
                                                   std::optional<at::ScalarType> requested) {
  if (device == ModelDevice::kCpu) {
    const at::ScalarType t = requested.value_or(weights_dtype == at::kBFloat16 ? at::kBFloat16 : at::kFloat);
    if (t == at::kHalf) {
      return absl::InvalidArgumentError(
          "float16 compute is not supported on the CPU; use --dtype=bfloat16 (same size) or float32");
    }
    return t;
  }
  if (requested.has_value() && *requested != weights_dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        "on cuda the model computes in its checkpoint's type (", c10::toString(weights_dtype),
        "); use --dtype=auto or convert the checkpoint"));
  }
  return weights_dtype;
}

absl::StatusOr<std::optional<at::ScalarType>> ParseComputeDType(const std::string& name) {
  using T = std::optional<at::ScalarType>;
  if (name == "auto") return T();
  if (name == "float32") return T(at::kFloat);
  if (name == "float16") return T(at::kHalf);
  if (name == "bfloat16") return T(at::kBFloat16);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown type \"", name, "\" (auto, float32, float16 or bfloat16)"));
}

absl::StatusOr<std::optional<KvDType>> ParseKvCacheDType(const std::string& name) {
  if (name == "auto") return std::optional<KvDType>();
  if (name == "float32") return std::optional<KvDType>(KvDType::kF32);
  if (name == "float16") return std::optional<KvDType>(KvDType::kF16);
  if (name == "bfloat16") return std::optional<KvDType>(KvDType::kBF16);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown KV cache type \"", name, "\" (auto, float32, float16 or bfloat16)"));
}

const char* KvDTypeName(KvDType t) {
  return t == KvDType::kF16 ? "float16" : t == KvDType::kBF16 ? "bfloat16" : "float32";
}

int64_t KvDTypeBytes(KvDType t) { return t == KvDType::kF32 ? 4 : 2; }

absl::Status PagedModel::Init(const ModelConfig& config, const PagedModelOptions& options) {
  if (options.block_size < 1 || options.block_size > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV block size must be in [1, 64], got ", options.block_size));
  }
  config_ = config;
  layout_ = BuildKvLayout(config);
  options_ = options;
  const size_t groups = layout_.groups.size();
  if (options.blocks_per_group.size() != groups || options.ring_sizes.size() != groups) {
    return absl::InvalidArgumentError(absl::StrCat("the model has ", groups,
                                                   " window groups but the KV options give ",
                                                   options.blocks_per_group.size(), " pools"));
  }
  for (size_t g = 0; g < groups; ++g) {
    table_offsets_.push_back(table_stride_);
    table_stride_ += options.ring_sizes[g];
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    std::vector<KvHeadDesc> heads;
    for (int64_t h = 0; h < config.num_key_value_heads; ++h) {
      heads.push_back(KvHeadDesc{config.kv_window(l, h),
                                 static_cast<int32_t>(layout_.group_of[l][h]),
                                 static_cast<int32_t>(layout_.head_offset[l][h])});
    }
    kv_heads_.push_back(std::move(heads));
  }
  return absl::OkStatus();
}

PagedKvParams PagedModel::StepParams(int64_t num_tokens) const {
  PagedKvParams p;
  p.num_tokens = num_tokens;
  p.num_q_heads = config_.num_attention_heads;
  p.num_kv_heads = config_.num_key_value_heads;
  p.head_dim = config_.head_dim;
  p.block_size = options_.block_size;
  p.table_stride = table_stride_;
  p.num_groups = static_cast<int32_t>(layout_.groups.size());
  return p;
}

namespace {

// fp32 weights (bfloat16 for decode-sized products with options.dtype bfloat16), KV pools of
// options.kv_dtype, on the CPU; the kernels of kernels/paged_attention.h and small_linear.h.
class PagedModelCpu final : public PagedModel {
 public:
  static absl::StatusOr<std::unique_ptr<PagedModel>> Create(const ModelConfig& config, ModelWeights weights,
                                                            const PagedModelOptions& options);
  at::Tensor Forward(const StepInput& input) override;
  void PoisonBlock(int g, int32_t block) override;
  int64_t kv_bytes() const override;

 private:
  enum class Proj { kQkv, kO, kGateUp, kDown, kLmHead };
  // y (+)= x W^T for projection `proj` of `layer`: a matrix-vector kernel for a few rows, BLAS
  // for more.
  void Linear(const at::Tensor& x, int64_t layer, Proj proj, at::Tensor& y, bool accumulate) const;

  // Per layer, transposed to [in, out] so every projection is one plain matrix product:
  // [q; k; v]^T [E, (H + 2 KV) D], o^T [H D, E], [gate; up]^T [E, 2F], down^T [F, E].
  // The [out, in] layouts serve decode-sized batches (kernels/small_linear.h), in the compute
  // type (fp32 or bfloat16); the transposed ones are fp32 for BLAS.
  std::vector<at::Tensor> w_qkv_t_, w_o_t_, w_gate_up_t_, w_down_t_;
  std::vector<at::Tensor> w_qkv_, w_gate_up_, w_o_, w_down_;  // [out, in], compute type
  at::Tensor lm_head_t_;  // [E, V]
  at::Tensor lm_head_;    // [V, E], compute type
  std::vector<double> inv_freq_;  // RoPE frequencies theta^(-2i/D), fp64
  ModelWeights weights_;
  std::vector<at::Tensor> pool_k_, pool_v_;  // per group
  std::vector<KvPoolView> pools_;
};

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModelCpu::Create(const ModelConfig& config,
                                                                  ModelWeights weights,
                                                                  const PagedModelOptions& options) {
  if (config.head_dim > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim ", config.head_dim, " is larger than the CPU kernel's 256"));
  }
  std::unique_ptr<PagedModelCpu> m(new PagedModelCpu());
  RETURN_IF_ERROR(m->Init(config, options));
  const size_t groups = m->layout_.groups.size();
  const bool bf16 = options.dtype == at::kBFloat16;
  if (weights.dtype() != at::kFloat || bf16) {
    // fp32 for the elementwise work and BLAS; with bfloat16 compute, every weight first takes
    // its bfloat16 value, so the bf16 matrix-vector path and the fp32 BLAS path agree.
    auto to_float = [bf16](at::Tensor& t) { t = (bf16 ? t.to(at::kBFloat16) : t).to(at::kFloat); };
    to_float(weights.embed);
    to_float(weights.final_norm);
    to_float(weights.lm_head);
    for (auto& l : weights.layers) {
      for (at::Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                            &l.post_norm, &l.gate_proj, &l.up_proj, &l.down_proj}) {
        to_float(*t);
      }
    }
    if (config.tie_word_embeddings) weights.lm_head = weights.embed;
  }
  // The [out, in] copies for SmallLinear, in the compute type.
  const at::ScalarType small = bf16 ? at::kBFloat16 : at::kFloat;
  for (const auto& l : weights.layers) {
    m->w_qkv_.push_back(at::cat({l.q_proj, l.k_proj, l.v_proj}, 0).to(small).contiguous());
    m->w_gate_up_.push_back(at::cat({l.gate_proj, l.up_proj}, 0).to(small).contiguous());
    m->w_o_.push_back(l.o_proj.to(small).contiguous());
    m->w_down_.push_back(l.down_proj.to(small).contiguous());
    m->w_qkv_t_.push_back(at::cat({l.q_proj, l.k_proj, l.v_proj}, 0).t().contiguous());
    m->w_o_t_.push_back(l.o_proj.t().contiguous());
    m->w_gate_up_t_.push_back(at::cat({l.gate_proj, l.up_proj}, 0).t().contiguous());
    m->w_down_t_.push_back(l.down_proj.t().contiguous());
  }
  m->lm_head_t_ = weights.lm_head.t().contiguous();
  m->lm_head_ = weights.lm_head.to(small).contiguous();
  for (int64_t i = 0; i < config.head_dim / 2; ++i) {
    m->inv_freq_.push_back(std::pow(config.rope_theta, -2.0 * static_cast<double>(i) / config.head_dim));
  }
  // The projections live on in the layouts above; keep only what Forward reads directly
  // (embedding, norms).
  for (auto& l : weights.layers) {
    for (at::Tensor* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) {
      *t = at::Tensor();
    }
  }
  m->weights_ = std::move(weights);

  const int64_t D = config.head_dim, B = options.block_size;
  for (size_t g = 0; g < groups; ++g) {
    const int64_t heads = m->layout_.groups[g].num_heads;
    const int64_t blocks = options.blocks_per_group[g];
    // Uninitialized: the kernels never read a slot before it is written, and pages the OS has
    // not touched cost nothing until a sequence needs them.
    m->pool_k_.push_back(at::empty({blocks, heads, B, D}, ScalarTypeOf(options.kv_dtype)));
    m->pool_v_.push_back(at::empty({blocks, heads, B, D}, ScalarTypeOf(options.kv_dtype)));
    m->pools_.push_back(KvPoolView{m->pool_k_[g].data_ptr(), m->pool_v_[g].data_ptr(), blocks, heads});
  }
  return std::unique_ptr<PagedModel>(std::move(m));
}

int64_t PagedModelCpu::kv_bytes() const {
  int64_t bytes = 0;
  for (size_t g = 0; g < pool_k_.size(); ++g) {
    bytes += 2 * pool_k_[g].numel() * static_cast<int64_t>(pool_k_[g].element_size());
  }
  return bytes;
}

void PagedModelCpu::PoisonBlock(int g, int32_t block) {
  pool_k_[g][block].fill_(std::numeric_limits<float>::quiet_NaN());
  pool_v_[g][block].fill_(std::numeric_limits<float>::quiet_NaN());
}

// y[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w for rows of `n` floats.
void RmsNormRows(const float* x, const float* w, int64_t rows, int64_t n, double eps, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = x + t * n;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + static_cast<float>(eps));
    float* yr = y + t * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * r * w[i];
  }
}

// Rotates `heads` heads of D floats starting at row + offset, in place ("rotate half").
void RotateInPlace(float* x, int64_t heads, int64_t D, const float* cos, const float* sin) {
  const int64_t half = D / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* a = x + h * D;
    float* b = a + half;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = a[i], x2 = b[i];
      a[i] = x1 * cos[i] - x2 * sin[i];
      b[i] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

void PagedModelCpu::Linear(const at::Tensor& x, int64_t layer, Proj proj, at::Tensor& y,
                        bool accumulate) const {
  const at::Tensor* w = nullptr;    // [out, in]
  const at::Tensor* w_t = nullptr;  // [in, out]
  switch (proj) {
    case Proj::kQkv: w = &w_qkv_[layer]; w_t = &w_qkv_t_[layer]; break;
    case Proj::kO: w = &w_o_[layer]; w_t = &w_o_t_[layer]; break;
    case Proj::kGateUp: w = &w_gate_up_[layer]; w_t = &w_gate_up_t_[layer]; break;
    case Proj::kDown: w = &w_down_[layer]; w_t = &w_down_t_[layer]; break;
    case Proj::kLmHead: w = &lm_head_; w_t = &lm_head_t_; break;
  }
  const int64_t rows = x.size(0);
  if (rows <= kSmallLinearMaxRows && w->scalar_type() == at::kBFloat16) {
    SmallLinear(x.data_ptr<float>(), rows, x.size(1), static_cast<const Bf16*>(w->data_ptr()),
                w->size(0), y.data_ptr<float>(), y.size(1), accumulate);
  } else if (rows <= kSmallLinearMaxRows) {
    SmallLinear(x.data_ptr<float>(), rows, x.size(1), w->data_ptr<float>(), w->size(0),
                y.data_ptr<float>(), y.size(1), accumulate);
  } else if (accumulate) {
    y.addmm_(x, *w_t);
  } else {
    at::mm_out(y, x, *w_t);
  }
}

// Per-op overhead dominates a small model's decode step, so the elementwise work is plain loops
// over preallocated buffers and each layer costs four matrix products and one attention call.
at::Tensor PagedModelCpu::Forward(const StepInput& in) {
  const ModelConfig& c = config_;
  const int64_t N = in.num_tokens;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t E = c.hidden_size, F = c.intermediate_size;
  const int64_t row = (H + 2 * KV) * D;  // fused QKV row
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  // cos/sin per token: [N, D/2], angles in fp64 (positions grow without bound).
  const int64_t half = D / 2;
  std::vector<float> cos(N * half), sin(N * half);
  for (int64_t t = 0; t < N; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = std::fmod(static_cast<double>(in.positions[t]) * inv_freq_[i],
                                     6.283185307179586476925);
      cos[t * half + i] = static_cast<float>(std::cos(angle));
      sin[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }

  PagedKvParams p = StepParams(N);
  p.positions = in.positions;
  p.seq_index = in.seq_index;
  p.block_tables = in.block_tables;
  p.table_offsets = table_offsets_.data();
  p.ring_sizes = options_.ring_sizes.data();
  p.pools = pools_.data();
  p.kv_dtype = options_.kv_dtype;

  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor x = at::empty({N, E}, f32);        // residual stream
  at::Tensor h = at::empty({N, E}, f32);        // normed
  at::Tensor qkv = at::empty({N, row}, f32);    // [N, (H + 2KV) D]
  at::Tensor attn = at::empty({N, H * D}, f32);
  at::Tensor gu = at::empty({N, 2 * F}, f32);   // [N, 2F]: gate | up
  at::Tensor act = at::empty({N, F}, f32);
  float* xp = x.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  float* qkvp = qkv.data_ptr<float>();
  const float* embed = weights_.embed.data_ptr<float>();
  for (int64_t t = 0; t < N; ++t) std::copy_n(embed + in.tokens[t] * E, E, xp + t * E);

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[l];
    RmsNormRows(xp, lw.input_norm.data_ptr<float>(), N, E, c.rms_norm_eps, hp);
    Linear(h, l, Proj::kQkv, qkv, false);
    for (int64_t t = 0; t < N; ++t) {
      float* r = qkvp + t * row;
      RotateInPlace(r, H, D, &cos[t * half], &sin[t * half]);           // q
      RotateInPlace(r + H * D, KV, D, &cos[t * half], &sin[t * half]);  // k
    }
    p.kv_heads = kv_heads_[l].data();
    WriteKvCacheCpu(p, qkvp + H * D, qkvp + (H + KV) * D, row);
    PagedAttentionCpu(p, qkvp, row, scale, attn.data_ptr<float>());
    Linear(attn, l, Proj::kO, x, true);  // x += attn @ o^T

    RmsNormRows(xp, lw.post_norm.data_ptr<float>(), N, E, c.rms_norm_eps, hp);
    Linear(h, l, Proj::kGateUp, gu, false);
    at::silu_out(act, gu.narrow(1, 0, F));
    act.mul_(gu.narrow(1, F, F));
    Linear(act, l, Proj::kDown, x, true);  // x += (silu(gate) * up) @ down^T
  }
  at::Tensor last = at::empty({in.num_logits, E}, f32);
  for (int64_t i = 0; i < in.num_logits; ++i) {
    RmsNormRows(xp + in.logits_rows[i] * E, weights_.final_norm.data_ptr<float>(), 1, E,
                c.rms_norm_eps, last.data_ptr<float>() + i * E);
  }
  at::Tensor logits = at::empty({in.num_logits, c.vocab_size}, f32);
  Linear(last, -1, Proj::kLmHead, logits, false);
  return logits;  // [num_logits, V]
}

}  // namespace

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModel::Create(const ModelConfig& config, ModelWeights weights,
                                                               const PagedModelOptions& options) {
  if (options.device == ModelDevice::kCuda) return CreatePagedModelCuda(config, std::move(weights), options);
  return PagedModelCpu::Create(config, std::move(weights), options);
}

}  // namespace mswa
