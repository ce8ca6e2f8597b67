#include "model/runtime/reference_forward.h"

#include <cmath>
#include <limits>
#include <map>

#include "kernels/window.h"
#include "model/runtime/ops.h"
#include "model/runtime/rope.h"

namespace mswa {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNormT(x, weight, eps);
}

at::Tensor WindowMask(int64_t start_pos, int64_t num_tokens, int64_t window) {
  at::Tensor mask = at::empty({num_tokens, num_tokens}, at::TensorOptions().dtype(at::kBool));
  bool* m = mask.data_ptr<bool>();
  for (int64_t i = 0; i < num_tokens; ++i) {
    for (int64_t j = 0; j < num_tokens; ++j) {
      m[i * num_tokens + j] = InWindow(start_pos + i, start_pos + j, window);
    }
  }
  return mask;
}

at::Tensor ReferenceForward(const ModelWeights& w, const ModelConfig& c,
                            const std::vector<int32_t>& tokens, int64_t start_pos) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const ArchSpec& arch = c.arch;
  const at::ScalarType dtype = w.dtype();
  at::Tensor ids = at::empty({T}, at::TensorOptions().dtype(at::kLong));
  int64_t* ids_data = ids.data_ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t) ids_data[t] = tokens[t];
  std::vector<int64_t> positions(T);
  for (int64_t t = 0; t < T; ++t) positions[t] = start_pos + t;

  auto norm = [&](const at::Tensor& x, const at::Tensor& weight) {
    return RmsNormT(x, NormScale(weight, arch, dtype), c.rms_norm_eps);
  };
  auto linear = [](const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    at::Tensor y = at::matmul(x, weight.t());
    return bias.defined() ? y + bias : y;
  };
  std::map<int64_t, at::Tensor> masks;  // window -> [T, T] mask
  const double scale = arch.AttnScale(D);

  at::Tensor x = w.embed.index_select(0, ids) * arch.embed_scale;  // [T, E]
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    const RopeTables rope = MakeRopeTablesAt(positions.data(), T, c.rope(l), dtype);
    at::Tensor h = norm(x, lw.input_norm);
    at::Tensor q = linear(h, lw.q_proj, lw.q_bias).view({T, H, D});   // [T, H, D]
    at::Tensor k = linear(h, lw.k_proj, lw.k_bias).view({T, KV, D});  // [T, KV, D]
    at::Tensor v = linear(h, lw.v_proj, lw.v_bias).view({T, KV, D});  // [T, KV, D]
    if (arch.qk_norm) {
      q = norm(q, lw.q_norm);
      k = norm(k, lw.k_norm);
    }
    q = ApplyRope(q, rope);
    k = ApplyRope(k, rope);

    std::vector<at::Tensor> heads;
    for (int64_t hq = 0; hq < H; ++hq) {
      const int64_t kvh = hq / c.gqa_group();
      const int64_t window = c.window(l, hq);
      auto it = masks.find(window);
      if (it == masks.end()) it = masks.emplace(window, WindowMask(start_pos, T, window)).first;
      at::Tensor qh = q.select(1, hq);   // [T, D]
      at::Tensor kh = k.select(1, kvh);  // [T, D]
      at::Tensor vh = v.select(1, kvh);  // [T, D]
      at::Tensor scores = SoftCapT(at::matmul(qh, kh.t()) * scale, arch.attn_softcap);  // [T, T]
      scores = scores.masked_fill(it->second.logical_not(), -std::numeric_limits<double>::infinity());
      heads.push_back(at::matmul(at::softmax(scores, -1), vh));  // [T, D]
    }
    at::Tensor attn = linear(at::stack(heads, 1).reshape({T, H * D}), lw.o_proj, lw.o_bias);
    x = x + (arch.sandwich_norms ? norm(attn, lw.attn_out_norm) : attn);

    at::Tensor h2 = norm(x, lw.post_norm);
    at::Tensor mlp = linear(GatedActivationT(linear(h2, lw.gate_proj, lw.gate_bias),
                                             linear(h2, lw.up_proj, lw.up_bias), arch.activation),
                            lw.down_proj, lw.down_bias);
    x = x + (arch.sandwich_norms ? norm(mlp, lw.mlp_out_norm) : mlp);
  }
  x = norm(x, w.final_norm);
  return SoftCapT(at::matmul(x, w.lm_head.t()), arch.final_softcap);  // [T, V]
}

}  // namespace mswa
