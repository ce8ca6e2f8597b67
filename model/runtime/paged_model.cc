#include "model/runtime/paged_model.h"

#include "kernels/small_linear.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/runtime/huge_pages.h"
#include "model/runtime/ops.h"
#include "model/runtime/paged_model_cuda.h"
#include "model/status_macros.h"

namespace mswa {

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
  // y (+)= x W^T for projection `proj` of `layer`: a matrix-vector kernel for a few rows (int8
  // VNNI: any number), BLAS for more.
  void Linear(const at::Tensor& x, int64_t layer, Proj proj, at::Tensor& y, bool accumulate) const;

  // Per layer, [out, in] in the compute type (fp32 or bfloat16), each projection one matrix:
  // [q; k; v] [(H + 2 KV) D, E], o [E, H D], [gate; up] [2F, E], down [E, F]. Decode-sized
  // batches read them with kernels/small_linear.h, larger ones with BLAS (transposed operand).
  // One weight matrix [out, in]: `w` in fp32 or bfloat16, or, for int8 and q4 compute, `q` with
  // `scales` (fp32, one per kInt8Group values of a row) laid out as `layout` says: row-major
  // int8 values, or packed in tiles for the AVX-512 VNNI kernel (scales inside q; q4's values
  // two a byte) where that kernel runs.
  struct Matrix {
    at::Tensor w, q, scales;
    int64_t q_out = 0;
    Int8Layout layout = Int8Layout::kRows;
    int64_t out() const { return q.defined() ? q_out : w.size(0); }
    Int8Matrix int8() const {
      return Int8Matrix{q.data_ptr<int8_t>(), scales.defined() ? scales.data_ptr<float>() : nullptr, q_out, layout};
    }
  };
  static Matrix MakeMatrix(const at::Tensor& t, at::ScalarType compute);
  std::vector<Matrix> w_qkv_, w_gate_up_, w_o_, w_down_;
  Matrix lm_head_;    // [V, E]; the embedding itself when tied
  // Per layer, fp32: what each RMSNorm multiplies by (NormScale), and the fused biases.
  struct LayerExtras {
    at::Tensor input_scale, post_scale, attn_out_scale, mlp_out_scale, q_scale, k_scale;
    at::Tensor qkv_bias, o_bias, gate_up_bias, down_bias;
  };
  std::vector<LayerExtras> extras_;
  at::Tensor final_scale_;
  Matrix embed_;  // [V, E], compute type
  // The distinct RoPEs (fp64 frequencies, rotary_dim / 2 each) and which one each layer uses.
  std::vector<std::vector<double>> inv_freq_;
  std::vector<int> layer_rope_;
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
  const bool int8 = options.dtype == at::kChar;
  const bool q4 = options.dtype == at::kQUInt4x2;
  const ArchSpec& arch = config.arch;
  // Matrices (and the embedding) are kept once, in the compute type: bf16 weights stay bf16
  // (the resident weights are then the checkpoint's size), and BLAS reads them through
  // cache-sized fp32 tiles (Linear). Vectors (norms, biases) are fp32; with bfloat16 compute
  // they first take their bfloat16 value, so every path sees the same weights.
  const at::ScalarType small = bf16 ? at::kBFloat16 : int8 ? at::kChar : q4 ? at::kQUInt4x2 : at::kFloat;
  // With q4 the embedding and LM head stay int8, as llama.cpp keeps its output matrix in more
  // bits than q4_0: the head's error reaches every logit directly.
  const at::ScalarType outer = q4 ? at::kChar : small;
  auto vec = [bf16](const at::Tensor& t) {
    if (!t.defined()) return at::Tensor();
    return (bf16 ? t.to(at::kBFloat16) : t).to(at::kFloat).contiguous();
  };
  auto cat_defined = [&](std::vector<at::Tensor> parts) {
    for (const at::Tensor& t : parts) {
      if (!t.defined()) return at::Tensor();
    }
    return vec(at::cat(parts, 0));
  };
  auto scale_of = [&](const at::Tensor& w) {
    return w.defined() ? NormScale(vec(w), arch, at::kFloat).contiguous() : at::Tensor();
  };
  for (auto& l : weights.layers) {
    m->w_qkv_.push_back(MakeMatrix(at::cat({l.q_proj, l.k_proj, l.v_proj}, 0), small));
    m->w_gate_up_.push_back(MakeMatrix(at::cat({l.gate_proj, l.up_proj}, 0), small));
    m->w_o_.push_back(MakeMatrix(l.o_proj, small));
    m->w_down_.push_back(MakeMatrix(l.down_proj, small));
    LayerExtras e;
    e.input_scale = scale_of(l.input_norm);
    e.post_scale = scale_of(l.post_norm);
    e.attn_out_scale = scale_of(l.attn_out_norm);
    e.mlp_out_scale = scale_of(l.mlp_out_norm);
    e.q_scale = scale_of(l.q_norm);
    e.k_scale = scale_of(l.k_norm);
    e.qkv_bias = cat_defined({l.q_bias, l.k_bias, l.v_bias});
    e.o_bias = vec(l.o_bias);
    e.gate_up_bias = cat_defined({l.gate_bias, l.up_bias});
    e.down_bias = vec(l.down_bias);
    m->extras_.push_back(std::move(e));
    l = LayerWeights();  // drop the checkpoint's copies as we go
  }
  m->embed_ = MakeMatrix(weights.embed, outer);
  m->lm_head_ = config.tie_word_embeddings ? m->embed_ : MakeMatrix(weights.lm_head, outer);
  m->final_scale_ = scale_of(weights.final_norm);
  std::vector<RopeSpec> ropes;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const RopeSpec r = config.rope(l);
    size_t i = 0;
    while (i < ropes.size() && !(ropes[i] == r)) ++i;
    if (i == ropes.size()) {
      ropes.push_back(r);
      m->inv_freq_.push_back(RopeInvFreq(r));
    }
    m->layer_rope_.push_back(static_cast<int>(i));
  }
  // Everything Forward reads lives on in the layouts above.
  weights = ModelWeights();
  // The matrices, which every step reads whole, on huge pages (huge_pages.h): decode of fp32
  // and int8 weights ran 4-15% faster (a page walk per 4 KiB of weights gone). Not with
  // bfloat16 activations: their decode gained nothing and AMX-BF16 prompts lost 5-13%, for a
  // reason not found (4 KiB-aligned matrices lost more than 64-byte-aligned ones).
  std::vector<at::Tensor*> matrices;
  for (std::vector<Matrix>* list : {&m->w_qkv_, &m->w_gate_up_, &m->w_o_, &m->w_down_}) {
    for (Matrix& x : *list) matrices.insert(matrices.end(), {&x.w, &x.q, &x.scales});
  }
  matrices.insert(matrices.end(), {&m->embed_.w, &m->embed_.q, &m->embed_.scales});
  if (config.tie_word_embeddings) {
    m->lm_head_ = Matrix();  // so that the embedding's old copy goes as it moves
  } else {
    matrices.insert(matrices.end(), {&m->lm_head_.w, &m->lm_head_.q, &m->lm_head_.scales});
  }
  // Where it cannot, the matrices stay where they are.
  if (options.activation_dtype != at::kBFloat16) (void)MoveToHugePages(matrices);
  if (config.tie_word_embeddings) m->lm_head_ = m->embed_;

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

PagedModelCpu::Matrix PagedModelCpu::MakeMatrix(const at::Tensor& t, at::ScalarType compute) {
  Matrix m;
  const bool q4 = compute == at::kQUInt4x2;
  if (compute != at::kChar && !q4) {
    m.w = t.to(compute).contiguous();
    return m;
  }
  const at::Tensor f = t.to(at::kFloat).contiguous();
  const int64_t out = f.size(0), in = f.size(1);
  m.q_out = out;
  m.q = at::empty({out, in}, at::TensorOptions().dtype(at::kChar));
  m.scales = at::empty({out, Int8Groups(in)}, at::TensorOptions().dtype(at::kFloat));
  (q4 ? QuantizeQ4 : QuantizeInt8)(f.data_ptr<float>(), out, in, m.q.data_ptr<int8_t>(), m.scales.data_ptr<float>());
  // Where the AVX2 kernel runs instead of the VNNI one, q4's values go two a byte in rows
  // (kRowsQ4); where neither does, they stay one a byte (kRows): the same model, read by the
  // int8 kernels, at int8's size.
  if (q4 && !Int8TilesPreferred(in) && Q4RowsPreferred(in)) {
    at::Tensor packed = at::empty({out * in / 2}, at::TensorOptions().dtype(at::kChar));
    PackQ4Rows(m.q.data_ptr<int8_t>(), out, in, packed.data_ptr<int8_t>());
    m.q = packed;
    m.layout = Int8Layout::kRowsQ4;
  } else if (Int8TilesPreferred(in)) {
    const Int8Layout layout = q4 ? Int8Layout::kTiles16Q4 : Int8Layout::kTiles16;
    at::Tensor tiles = at::empty({Int8TilesBytes(out, in, layout)}, at::TensorOptions().dtype(at::kChar));
    PackInt8Tiles(m.q.data_ptr<int8_t>(), m.scales.data_ptr<float>(), out, in, tiles.data_ptr<int8_t>(), layout);
    m.q = tiles;
    m.scales = at::Tensor();
    m.layout = layout;
  }
  return m;
}

void PagedModelCpu::Linear(const at::Tensor& x, int64_t layer, Proj proj, at::Tensor& y,
                        bool accumulate) const {
  const Matrix* m = nullptr;  // [out, in]
  switch (proj) {
    case Proj::kQkv: m = &w_qkv_[layer]; break;
    case Proj::kO: m = &w_o_[layer]; break;
    case Proj::kGateUp: m = &w_gate_up_[layer]; break;
    case Proj::kDown: m = &w_down_[layer]; break;
    case Proj::kLmHead: m = &lm_head_; break;
  }
  const at::Tensor* w = &m->w;
  const int64_t rows = x.size(0), in = x.size(1);
  if (options_.activation_dtype == at::kBFloat16 && w->scalar_type() == at::kBFloat16) {
    // Every number of rows on one kernel: a token's products are the same in any step.
    SmallLinearBf16Dot(x.data_ptr<float>(), rows, in, static_cast<const Bf16*>(w->data_ptr()),
                       w->size(0), y.data_ptr<float>(), y.size(1), accumulate);
  } else if (m->q.defined() && Int8SmallLinearPreferred(rows, in, m->layout)) {
    SmallLinear(x.data_ptr<float>(), rows, in, m->int8(), y.data_ptr<float>(), y.size(1), accumulate);
  } else if (rows <= kSmallLinearMaxRows && w->scalar_type() == at::kBFloat16) {
    SmallLinear(x.data_ptr<float>(), rows, in, static_cast<const Bf16*>(w->data_ptr()),
                w->size(0), y.data_ptr<float>(), y.size(1), accumulate);
  } else if (rows <= kSmallLinearMaxRows) {
    SmallLinear(x.data_ptr<float>(), rows, in, w->data_ptr<float>(), w->size(0),
                y.data_ptr<float>(), y.size(1), accumulate);
  } else if (!m->q.defined() && w->scalar_type() == at::kFloat) {
    if (accumulate) {
      y.addmm_(x, w->t());
    } else {
      at::mm_out(y, x, w->t());
    }
  } else {
    // BLAS multiplies fp32: convert W a tile of rows at a time (about 2 MiB of fp32, so it stays
    // in cache between the conversion and the product) into its columns of y.
    const int64_t out = m->out();
    const int64_t tile = std::max<int64_t>(64, (int64_t{2} << 20) / (4 * in));
    at::Tensor scratch;
    for (int64_t r = 0; r < out; r += tile) {
      const int64_t n = std::min(tile, out - r);
      at::Tensor wt;
      if (m->q.defined()) {
        if (!scratch.defined()) scratch = at::empty({tile, in}, at::TensorOptions().dtype(at::kFloat));
        wt = scratch.narrow(0, 0, n);
        DequantizeInt8(m->int8(), in, r, r + n, wt.data_ptr<float>());
      } else {
        wt = w->narrow(0, r, n).to(at::kFloat);
      }
      at::Tensor yc = y.narrow(1, r, n);
      yc.addmm_(x, wt.t(), /*beta=*/accumulate ? 1 : 0);
    }
  }
}

// Per-op overhead dominates a small model's decode step, so the elementwise work is plain loops
// over preallocated buffers (model/runtime/ops.h) and each layer costs four matrix products and
// one attention call.
at::Tensor PagedModelCpu::Forward(const StepInput& in) {
  const ModelConfig& c = config_;
  const ArchSpec& arch = c.arch;
  const int64_t N = in.num_tokens;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t E = c.hidden_size, F = c.intermediate_size;
  const int64_t row = (H + 2 * KV) * D;  // fused QKV row
  const float scale = static_cast<float>(arch.AttnScale(D));
  const double eps = c.rms_norm_eps;

  // cos/sin per distinct RoPE and token: [N, rotary_dim / 2].
  std::vector<std::vector<float>> cos(inv_freq_.size()), sin(inv_freq_.size());
  for (size_t r = 0; r < inv_freq_.size(); ++r) {
    cos[r].resize(N * inv_freq_[r].size());
    sin[r].resize(N * inv_freq_[r].size());
    RopeAngles(inv_freq_[r], in.positions, N, cos[r].data(), sin[r].data());
  }

  PagedKvParams p = StepParams(N);
  p.positions = in.positions;
  p.seq_index = in.seq_index;
  p.block_tables = in.block_tables;
  p.table_offsets = table_offsets_.data();
  p.ring_sizes = options_.ring_sizes.data();
  p.pools = pools_.data();
  p.kv_dtype = options_.kv_dtype;
  p.softcap = static_cast<float>(arch.attn_softcap);

  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor x = at::empty({N, E}, f32);        // residual stream
  at::Tensor h = at::empty({N, E}, f32);        // normed
  at::Tensor qkv = at::empty({N, row}, f32);    // [N, (H + 2KV) D]
  at::Tensor attn = at::empty({N, H * D}, f32);
  at::Tensor gu = at::empty({N, 2 * F}, f32);   // [N, 2F]: gate | up
  at::Tensor act = at::empty({N, F}, f32);
  // A branch's output before it joins the residual, when it needs a bias or a norm first.
  at::Tensor branch = at::empty({N, E}, f32);
  float* xp = x.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  float* qkvp = qkv.data_ptr<float>();
  float* bp = branch.data_ptr<float>();
  const float embed_scale = static_cast<float>(arch.embed_scale);
  const bool embed_bf16 = embed_.w.defined() && embed_.w.scalar_type() == at::kBFloat16;
  for (int64_t t = 0; t < N; ++t) {
    const int64_t offset = static_cast<int64_t>(in.tokens[t]) * E;
    float* xr = xp + t * E;
    if (embed_.q.defined()) {
      DequantizeInt8(embed_.int8(), E, in.tokens[t], in.tokens[t] + 1, xr);
      for (int64_t i = 0; i < E; ++i) xr[i] *= embed_scale;
    } else if (embed_bf16) {
      const uint16_t* e = static_cast<const uint16_t*>(embed_.w.data_ptr()) + offset;
      for (int64_t i = 0; i < E; ++i) {
        const uint32_t bits = static_cast<uint32_t>(e[i]) << 16;
        float f;
        std::memcpy(&f, &bits, sizeof f);
        xr[i] = f * embed_scale;
      }
    } else {
      const float* e = embed_.w.data_ptr<float>() + offset;
      for (int64_t i = 0; i < E; ++i) xr[i] = e[i] * embed_scale;
    }
  }
  auto add_bias = [](float* y, const at::Tensor& bias, int64_t rows, int64_t n, int64_t stride) {
    const float* b = bias.data_ptr<float>();
    for (int64_t t = 0; t < rows; ++t) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[t * stride + i] += b[i];
    }
  };
  // x += y, after y's bias and (sandwich norms) its norm.
  auto join = [&](const at::Tensor& bias, const at::Tensor& out_scale) {
    if (bias.defined()) add_bias(bp, bias, N, E, E);
    if (out_scale.defined()) RmsNormRows(bp, out_scale.data_ptr<float>(), N, E, eps, bp, E);
    x.add_(branch);
  };

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerExtras& ex = extras_[l];
    RmsNormRows(xp, ex.input_scale.data_ptr<float>(), N, E, eps, hp, E);
    Linear(h, l, Proj::kQkv, qkv, false);
    if (ex.qkv_bias.defined()) add_bias(qkvp, ex.qkv_bias, N, row, row);
    const int rope = layer_rope_[l];
    const int64_t rot = 2 * static_cast<int64_t>(inv_freq_[rope].size());
    for (int64_t t = 0; t < N; ++t) {
      float* r = qkvp + t * row;
      if (arch.qk_norm) {
        RmsNormRows(r, ex.q_scale.data_ptr<float>(), H, D, eps, r, D);
        RmsNormRows(r + H * D, ex.k_scale.data_ptr<float>(), KV, D, eps, r + H * D, D);
      }
      const float* cs = cos[rope].data() + t * rot / 2;
      const float* sn = sin[rope].data() + t * rot / 2;
      RotateHeads(r, H, D, rot, cs, sn);           // q
      RotateHeads(r + H * D, KV, D, rot, cs, sn);  // k
    }
    p.kv_heads = kv_heads_[l].data();
    WriteKvCacheCpu(p, qkvp + H * D, qkvp + (H + KV) * D, row);
    PagedAttentionCpu(p, qkvp, row, scale, attn.data_ptr<float>());
    if (ex.o_bias.defined() || ex.attn_out_scale.defined()) {
      Linear(attn, l, Proj::kO, branch, false);
      join(ex.o_bias, ex.attn_out_scale);
    } else {
      Linear(attn, l, Proj::kO, x, true);  // x += attn @ o^T
    }

    RmsNormRows(xp, ex.post_scale.data_ptr<float>(), N, E, eps, hp, E);
    Linear(h, l, Proj::kGateUp, gu, false);
    if (ex.gate_up_bias.defined()) add_bias(gu.data_ptr<float>(), ex.gate_up_bias, N, 2 * F, 2 * F);
    GatedActivation(gu.data_ptr<float>(), N, F, arch.activation, act.data_ptr<float>());
    if (ex.down_bias.defined() || ex.mlp_out_scale.defined()) {
      Linear(act, l, Proj::kDown, branch, false);
      join(ex.down_bias, ex.mlp_out_scale);
    } else {
      Linear(act, l, Proj::kDown, x, true);  // x += act(gate) * up @ down^T
    }
  }
  at::Tensor last = at::empty({in.num_logits, E}, f32);
  for (int64_t i = 0; i < in.num_logits; ++i) {
    RmsNormRows(xp + in.logits_rows[i] * E, final_scale_.data_ptr<float>(), 1, E, eps,
                last.data_ptr<float>() + i * E, E);
  }
  at::Tensor logits = at::empty({in.num_logits, c.vocab_size}, f32);
  Linear(last, -1, Proj::kLmHead, logits, false);
  SoftCap(logits.data_ptr<float>(), logits.numel(), arch.final_softcap);
  return logits;  // [num_logits, V]
}

}  // namespace

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModel::Create(const ModelConfig& config, ModelWeights weights,
                                                               const PagedModelOptions& options) {
  if (options.device == ModelDevice::kCuda) return CreatePagedModelCuda(config, std::move(weights), options);
  return PagedModelCpu::Create(config, std::move(weights), options);
}

}  // namespace mswa
