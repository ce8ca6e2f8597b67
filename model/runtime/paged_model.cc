#include "model/runtime/paged_model.h"

#include "kernels/small_linear.h"

#include <omp.h>

#include <algorithm>
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
  // y (+)= x W^T for projection `proj` of `layer`, x [rows, in] and y [rows, out] (row stride
  // y_stride): a matrix-vector kernel for a few rows (int8 VNNI: any number), BLAS for more.
  // Inside a team (kernels/cpu_team.h) only the kernels, which take up to kSmallLinearMaxRows.
  void Linear(const float* x, int64_t rows, int64_t in, int64_t layer, Proj proj, float* y,
              int64_t y_stride, bool accumulate) const;
  // The bias, q/k norms and RoPE of KV head `kvh`'s rows of token t (its query heads, its key,
  // its value) in the fused QKV row.
  void PrepareHeads(float* qkv_row, int64_t layer, int64_t kvh, const float* cos, const float* sin) const;

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
  // A step's activations and RoPE angles, kept from step to step: nine tensor allocations a
  // step cost 5-8 us, 1-2% of a small model's decode step.
  std::vector<float> activations_;
  std::vector<std::vector<float>> cos_, sin_;
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
  } else if (rows <= kSmallLinearMaxRows && w->scalar_type() == at::kBFloat16) {
    SmallLinear(x, rows, in, static_cast<const Bf16*>(w->data_ptr()), w->size(0), y, y_stride, accumulate);
  } else if (rows <= kSmallLinearMaxRows) {
    SmallLinear(x, rows, in, w->data_ptr<float>(), w->size(0), y, y_stride, accumulate);
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

void PagedModelCpu::PrepareHeads(float* r, int64_t layer, int64_t kvh, const float* cos,
                                 const float* sin) const {
  const ModelConfig& c = config_;
  const LayerExtras& ex = extras_[layer];
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t G = H / KV;
  float* q = r + kvh * G * D;
  float* k = r + (H + kvh) * D;
  float* v = r + (H + KV + kvh) * D;
  if (ex.qkv_bias.defined()) {
    const float* b = ex.qkv_bias.data_ptr<float>();
    const float* bq = b + kvh * G * D;
    const float* bk = b + (H + kvh) * D;
    const float* bv = b + (H + KV + kvh) * D;
#pragma omp simd
    for (int64_t i = 0; i < G * D; ++i) q[i] += bq[i];
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) {
      k[i] += bk[i];
      v[i] += bv[i];
    }
  }
  if (c.arch.qk_norm) {
    RmsNormRows(q, ex.q_scale.data_ptr<float>(), G, D, c.rms_norm_eps, q, D);
    RmsNormRows(k, ex.k_scale.data_ptr<float>(), 1, D, c.rms_norm_eps, k, D);
  }
  const int64_t rot = 2 * static_cast<int64_t>(inv_freq_[layer_rope_[layer]].size());
  RotateHeads(q, G, D, rot, cos, sin);
  RotateHeads(k, 1, D, rot, cos, sin);
}

// Per-op overhead dominates a small model's decode step, so the elementwise work is plain loops
// over preallocated buffers (model/runtime/ops.h), each layer costs four matrix products and one
// attention call, and a step of up to kSmallLinearMaxRows tokens runs all of its layers on one
// team of threads (kernels/cpu_team.h): the kernels split their work among the team instead of
// opening a parallel region each, and the loops here are worksharing loops. Larger steps
// (prompts) run the layers on the calling thread, each kernel, and BLAS, with threads of its own.
at::Tensor PagedModelCpu::Forward(const StepInput& in) {
  const ModelConfig& c = config_;
  const ArchSpec& arch = c.arch;
  const int64_t N = in.num_tokens;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t E = c.hidden_size, F = c.intermediate_size;
  const int64_t row = (H + 2 * KV) * D;  // fused QKV row
  const float scale = static_cast<float>(arch.AttnScale(D));
  const double eps = c.rms_norm_eps;
  const int64_t V = c.vocab_size, L = in.num_logits;
  const int threads = omp_get_max_threads();
#if defined(__SANITIZE_THREAD__)
  // libgomp's barriers are invisible to ThreadSanitizer, which would report the team's
  // barrier-ordered accesses as races: there, every kernel opens its own region.
  const bool team = false;
#else
  const bool team = threads > 1 && N <= kSmallLinearMaxRows;
#endif

  // cos/sin per distinct RoPE and token: [N, rotary_dim / 2].
  cos_.resize(inv_freq_.size());
  sin_.resize(inv_freq_.size());
  for (size_t r = 0; r < inv_freq_.size(); ++r) {
    cos_[r].resize(N * inv_freq_[r].size());
    sin_[r].resize(N * inv_freq_[r].size());
    RopeAngles(inv_freq_[r], in.positions, N, cos_[r].data(), sin_[r].data());
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

  // The step's buffers, carved from activations_ at 64-byte boundaries.
  const int64_t copies = team ? threads : 1;
  const int64_t sizes[] = {
      N * E,           // x: the residual stream
      copies * N * E,  // h: normed rows, one copy per thread of a team: each thread norms the
                       //    residual itself rather than wait at a barrier for one thread to
      N * row,         // qkv: [N, (H + 2KV) D]
      N * H * D,       // attn
      N * 2 * F,       // gu: [N, 2F], gate | up
      N * F,           // act
      N * E,           // branch: a branch's output before it joins the residual, when it needs a
                       //         bias or a norm first
      L * E,           // last: the normed rows that get logits
  };
  int64_t total = 0;
  for (int64_t n : sizes) total += (n + 15) / 16 * 16;
  activations_.resize(static_cast<size_t>(total) + 16);
  float* next = activations_.data() + (16 - reinterpret_cast<uintptr_t>(activations_.data()) / 4 % 16) % 16;
  float* buffers[8];
  for (int i = 0; i < 8; ++i) {
    buffers[i] = next;
    next += (sizes[i] + 15) / 16 * 16;
  }
  float* const xp = buffers[0];
  float* const h0 = buffers[1];
  float* const qkvp = buffers[2];
  float* const attnp = buffers[3];
  float* const gup = buffers[4];
  float* const actp = buffers[5];
  float* const bp = buffers[6];
  float* const lastp = buffers[7];
  at::Tensor logits = at::empty({L, V}, at::TensorOptions().dtype(at::kFloat));
  float* const logitsp = logits.data_ptr<float>();
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
  // x += y, after y's bias and (sandwich norms) its norm; row by row.
  auto join = [&](const at::Tensor& bias, const at::Tensor& out_scale) {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < N; ++t) {
      float* y = bp + t * E;
      float* xr = xp + t * E;
      if (bias.defined()) {
        const float* b = bias.data_ptr<float>();
#pragma omp simd
        for (int64_t i = 0; i < E; ++i) y[i] += b[i];
      }
      if (out_scale.defined()) RmsNormRows(y, out_scale.data_ptr<float>(), 1, E, eps, y, E);
#pragma omp simd
      for (int64_t i = 0; i < E; ++i) xr[i] += y[i];
    }
  };

  // Run by every thread of the team (or by the calling thread alone): locals are the thread's.
  auto layers = [&] {
    float* const hp = h0 + omp_get_thread_num() * N * E;  // this thread's normed rows
    PagedKvParams pl = p;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const LayerExtras& ex = extras_[l];
      RmsNormRows(xp, ex.input_scale.data_ptr<float>(), N, E, eps, hp, E);
      Linear(hp, N, E, l, Proj::kQkv, qkvp, row, false);
      // Each (token, KV head) item prepares the rows that head's attention reads; the KV write
      // below splits the same items with the same static schedule, so each thread writes the
      // rows it prepared and no barrier is needed between the two (OpenMP assigns equal
      // static loops alike).
      const int rope = layer_rope_[l];
      const int64_t half = static_cast<int64_t>(inv_freq_[rope].size());
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < N * KV; ++i) {
        const int64_t t = i / KV;
        PrepareHeads(qkvp + t * row, l, i % KV, cos_[rope].data() + t * half, sin_[rope].data() + t * half);
      }
      pl.kv_heads = kv_heads_[l].data();
      WriteKvCacheCpu(pl, qkvp + H * D, qkvp + (H + KV) * D, row);
      PagedAttentionCpu(pl, qkvp, row, scale, attnp);
      if (ex.o_bias.defined() || ex.attn_out_scale.defined()) {
        Linear(attnp, N, H * D, l, Proj::kO, bp, E, false);
        join(ex.o_bias, ex.attn_out_scale);
      } else {
        Linear(attnp, N, H * D, l, Proj::kO, xp, E, true);  // x += attn @ o^T
      }

      RmsNormRows(xp, ex.post_scale.data_ptr<float>(), N, E, eps, hp, E);
      Linear(hp, N, E, l, Proj::kGateUp, gup, 2 * F, false);
      if (ex.gate_up_bias.defined()) {
        const float* b = ex.gate_up_bias.data_ptr<float>();
#pragma omp for schedule(static)
        for (int64_t t = 0; t < N; ++t) {
#pragma omp simd
          for (int64_t i = 0; i < 2 * F; ++i) gup[t * 2 * F + i] += b[i];
        }
      }
      GatedActivation(gup, N, F, arch.activation, actp);
      if (ex.down_bias.defined() || ex.mlp_out_scale.defined()) {
        Linear(actp, N, F, l, Proj::kDown, bp, E, false);
        join(ex.down_bias, ex.mlp_out_scale);
      } else {
        Linear(actp, N, F, l, Proj::kDown, xp, E, true);  // x += act(gate) * up @ down^T
      }
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < L; ++i) {
      RmsNormRows(xp + in.logits_rows[i] * E, final_scale_.data_ptr<float>(), 1, E, eps, lastp + i * E, E);
    }
    Linear(lastp, L, E, -1, Proj::kLmHead, logitsp, V, false);
    if (arch.final_softcap > 0) {
      constexpr int64_t kChunk = 4096;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < L * V; i += kChunk) {
        SoftCap(logitsp + i, std::min(kChunk, L * V - i), arch.final_softcap);
      }
    }
  };
  if (team) {
#pragma omp parallel
    layers();
  } else {
    layers();
  }
  return logits;  // [num_logits, V]
}

}  // namespace

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModel::Create(const ModelConfig& config, ModelWeights weights,
                                                               const PagedModelOptions& options) {
  if (options.device == ModelDevice::kCuda) return CreatePagedModelCuda(config, std::move(weights), options);
  return PagedModelCpu::Create(config, std::move(weights), options);
}

}  // namespace mswa
