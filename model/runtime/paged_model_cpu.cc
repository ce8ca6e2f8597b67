#include "model/runtime/paged_model_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/runtime/huge_pages.h"
#include "model/runtime/ops.h"
#include "model/runtime/rope.h"
#include "model/status_macros.h"

namespace mswa {

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
  if (!config.tie_word_embeddings && outer == at::kFloat) {
    // Only ever read a row at a time: fp32 rows as they are (panels would scatter each row over
    // 48-float strides, 0.8% of a small model's prompt time to gather).
    m->embed_.w = weights.embed.to(at::kFloat).contiguous();
  } else {
    m->embed_ = MakeMatrix(weights.embed, outer);
  }
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
  if (compute == at::kFloat && F32LayoutNow() == F32Layout::kPanels48) {
    const at::Tensor f = t.to(at::kFloat).contiguous();
    m.q_out = f.size(0);
    m.w = at::empty({F32PanelsFloats(f.size(0), f.size(1))}, at::TensorOptions().dtype(at::kFloat));
    PackF32Panels(f.data_ptr<float>(), f.size(0), f.size(1), m.w.data_ptr<float>());
    m.f32_panels = true;
    return m;
  }
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

bool PagedModelCpu::TakesBlas(const Matrix& m, int64_t rows, int64_t in) const {
  if (options_.activation_dtype == at::kBFloat16 && m.w.defined() && m.w.scalar_type() == at::kBFloat16) return false;
  if (m.q.defined() && Int8SmallLinearPreferred(rows, in, m.layout)) return false;
  return !m.f32_panels && rows > kSmallLinearMaxRows;
}

bool PagedModelCpu::OnKernelsOnly(int64_t rows, int64_t logits) const {
  const ModelConfig& c = config_;
  const int64_t E = c.hidden_size, HD = c.num_attention_heads * c.head_dim, F = c.intermediate_size;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (TakesBlas(w_qkv_[l], rows, E) || TakesBlas(w_o_[l], rows, HD) || TakesBlas(w_gate_up_[l], rows, E) ||
        TakesBlas(w_down_[l], rows, F)) {
      return false;
    }
  }
  return !TakesBlas(lm_head_, logits, E);
}

void PagedModelCpu::Linear(const float* x, int64_t rows, int64_t in, int64_t layer, Proj proj,
                           float* y, int64_t y_stride, bool accumulate) const {
  const Matrix* m = nullptr;  // [out, in]
  switch (proj) {
    case Proj::kQkv: m = &w_qkv_[layer]; break;
    case Proj::kO: m = &w_o_[layer]; break;
    case Proj::kGateUp: m = &w_gate_up_[layer]; break;
    case Proj::kDown: m = &w_down_[layer]; break;
    case Proj::kLmHead: m = &lm_head_; break;
  }
  const at::Tensor* w = &m->w;
  if (options_.activation_dtype == at::kBFloat16 && w->scalar_type() == at::kBFloat16) {
    // Every number of rows on one kernel: a token's products are the same in any step.
    SmallLinearBf16Dot(x, rows, in, static_cast<const Bf16*>(w->data_ptr()), w->size(0), y, y_stride,
                       accumulate);
  } else if (m->q.defined() && Int8SmallLinearPreferred(rows, in, m->layout)) {
    SmallLinear(x, rows, in, m->int8(), y, y_stride, accumulate);
  } else if (m->f32_panels) {
    // Prompts too: as fast as BLAS on its rows (pp512 1,071-1,245 against 1,057-1,134 tokens/s
    // on SmolLM2-135M), where unpacking the panels for BLAS cost a third.
    SmallLinear(x, rows, in, m->panels(), y, y_stride, accumulate);
  } else if (!TakesBlas(*m, rows, in)) {
    if (w->scalar_type() == at::kBFloat16) {
      SmallLinear(x, rows, in, static_cast<const Bf16*>(w->data_ptr()), w->size(0), y, y_stride, accumulate);
    } else {
      SmallLinear(x, rows, in, w->data_ptr<float>(), w->size(0), y, y_stride, accumulate);
    }
  } else {
    const int64_t out = m->out();
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    const at::Tensor xt = at::from_blob(const_cast<float*>(x), {rows, in}, f32);
    at::Tensor yt = at::from_blob(y, {rows, out}, {y_stride, 1}, f32);
    if (!m->q.defined() && w->scalar_type() == at::kFloat) {
      if (accumulate) {
        yt.addmm_(xt, w->t());
      } else {
        at::mm_out(yt, xt, w->t());
      }
      return;
    }
    // BLAS multiplies fp32: convert W a tile of rows at a time (about 2 MiB of fp32, so it stays
    // in cache between the conversion and the product) into its columns of y.
    const int64_t tile = std::max<int64_t>(64, (int64_t{2} << 20) / (4 * in));
    at::Tensor scratch;
    for (int64_t r = 0; r < out; r += tile) {
      const int64_t n = std::min(tile, out - r);
      at::Tensor wt;
      if (m->q.defined()) {
        if (!scratch.defined()) scratch = at::empty({tile, in}, f32);
        wt = scratch.narrow(0, 0, n);
        DequantizeInt8(m->int8(), in, r, r + n, wt.data_ptr<float>());
      } else {
        wt = w->narrow(0, r, n).to(at::kFloat);
      }
      at::Tensor yc = yt.narrow(1, r, n);
      yc.addmm_(xt, wt.t(), /*beta=*/accumulate ? 1 : 0);
    }
  }
}

}  // namespace mswa
