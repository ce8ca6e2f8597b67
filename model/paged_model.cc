#include "model/paged_model.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "model/reference_forward.h"
#include "model/rope.h"

namespace mswa {

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModel::Create(const ModelConfig& config,
                                                               ModelWeights weights,
                                                               const PagedModelOptions& options) {
  if (config.head_dim > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim ", config.head_dim, " is larger than the CPU kernel's 256"));
  }
  if (options.block_size < 1 || options.block_size > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV block size must be in [1, 64], got ", options.block_size));
  }
  std::unique_ptr<PagedModel> m(new PagedModel());
  m->config_ = config;
  m->layout_ = BuildKvLayout(config);
  m->options_ = options;
  const size_t groups = m->layout_.groups.size();
  if (options.blocks_per_group.size() != groups || options.ring_sizes.size() != groups) {
    return absl::InvalidArgumentError(absl::StrCat("the model has ", groups,
                                                   " window groups but the KV options give ",
                                                   options.blocks_per_group.size(), " pools"));
  }
  if (weights.dtype() != at::kFloat) {
    auto to_float = [](at::Tensor& t) { t = t.to(at::kFloat); };
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
  for (const auto& l : weights.layers) {
    m->w_qkv_.push_back(at::cat({l.q_proj, l.k_proj, l.v_proj}, 0).contiguous());
    m->w_gate_up_.push_back(at::cat({l.gate_proj, l.up_proj}, 0).contiguous());
  }
  m->weights_ = std::move(weights);

  const int64_t D = config.head_dim, B = options.block_size;
  for (size_t g = 0; g < groups; ++g) {
    const int64_t heads = m->layout_.groups[g].num_heads;
    const int64_t blocks = options.blocks_per_group[g];
    m->pool_k_.push_back(at::zeros({blocks, heads, B, D}, at::kFloat));
    m->pool_v_.push_back(at::zeros({blocks, heads, B, D}, at::kFloat));
    m->pools_.push_back(KvPoolView{m->pool_k_[g].data_ptr<float>(),
                                   m->pool_v_[g].data_ptr<float>(), blocks, heads});
    m->table_offsets_.push_back(m->table_stride_);
    m->table_stride_ += options.ring_sizes[g];
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    std::vector<KvHeadDesc> heads;
    for (int64_t h = 0; h < config.num_key_value_heads; ++h) {
      heads.push_back(KvHeadDesc{config.kv_window(l, h),
                                 static_cast<int32_t>(m->layout_.group_of[l][h]),
                                 static_cast<int32_t>(m->layout_.head_offset[l][h])});
    }
    m->kv_heads_.push_back(std::move(heads));
  }
  return m;
}

int64_t PagedModel::kv_bytes() const {
  int64_t bytes = 0;
  for (size_t g = 0; g < pool_k_.size(); ++g) {
    bytes += 2 * pool_k_[g].numel() * static_cast<int64_t>(sizeof(float));
  }
  return bytes;
}

void PagedModel::PoisonBlock(int g, int32_t block) {
  pool_k_[g][block].fill_(std::numeric_limits<float>::quiet_NaN());
  pool_v_[g][block].fill_(std::numeric_limits<float>::quiet_NaN());
}

at::Tensor PagedModel::Forward(const StepInput& in) {
  const ModelConfig& c = config_;
  const int64_t N = in.num_tokens;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t F = c.intermediate_size;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  at::Tensor ids = at::empty({N}, at::kLong);
  for (int64_t t = 0; t < N; ++t) ids.data_ptr<int64_t>()[t] = in.tokens[t];
  const RopeTables rope = MakeRopeTablesAt(in.positions, N, D, c.rope_theta, at::kFloat);

  PagedKvParams p;
  p.num_tokens = N;
  p.num_q_heads = H;
  p.num_kv_heads = KV;
  p.head_dim = D;
  p.block_size = options_.block_size;
  p.positions = in.positions;
  p.seq_index = in.seq_index;
  p.block_tables = in.block_tables;
  p.table_stride = table_stride_;
  p.table_offsets = table_offsets_.data();
  p.ring_sizes = options_.ring_sizes.data();
  p.pools = pools_.data();
  p.num_groups = static_cast<int32_t>(pools_.size());

  at::Tensor x = weights_.embed.index_select(0, ids);  // [N, E]
  at::Tensor attn = at::empty({N, H, D}, at::kFloat);  // [N, H, D], reused by every layer
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[l];
    at::Tensor h = RmsNorm(x, lw.input_norm, c.rms_norm_eps);
    at::Tensor qkv = at::linear(h, w_qkv_[l]);                                   // [N, (H+2KV)D]
    at::Tensor q = ApplyRope(qkv.narrow(1, 0, H * D).view({N, H, D}), rope);     // [N, H, D]
    at::Tensor k = ApplyRope(qkv.narrow(1, H * D, KV * D).view({N, KV, D}), rope);  // [N, KV, D]
    at::Tensor v = qkv.narrow(1, (H + KV) * D, KV * D).contiguous();             // [N, KV*D]
    q = q.contiguous();
    k = k.contiguous();
    p.kv_heads = kv_heads_[l].data();
    WriteKvCacheCpu(p, k.data_ptr<float>(), v.data_ptr<float>());
    PagedAttentionCpu(p, q.data_ptr<float>(), scale, attn.data_ptr<float>());
    x = x + at::linear(attn.view({N, H * D}), lw.o_proj);

    at::Tensor h2 = RmsNorm(x, lw.post_norm, c.rms_norm_eps);
    at::Tensor gu = at::linear(h2, w_gate_up_[l]);  // [N, 2F]
    x = x + at::linear(at::silu(gu.narrow(1, 0, F)) * gu.narrow(1, F, F), lw.down_proj);
  }
  at::Tensor rows = at::empty({in.num_logits}, at::kLong);
  for (int64_t i = 0; i < in.num_logits; ++i) rows.data_ptr<int64_t>()[i] = in.logits_rows[i];
  at::Tensor last = RmsNorm(x.index_select(0, rows), weights_.final_norm, c.rms_norm_eps);
  return at::linear(last, weights_.lm_head).contiguous();  // [num_logits, V]
}

}  // namespace mswa
