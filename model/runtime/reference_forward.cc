#include "model/runtime/reference_forward.h"

#include <cmath>
#include <limits>
#include <map>

#include "kernels/window.h"
#include "model/runtime/rope.h"

namespace mswa {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return x * at::rsqrt(x.pow(2).mean({-1}, /*keepdim=*/true) + eps) * weight;
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
  const at::ScalarType dtype = w.dtype();
  at::Tensor ids = at::empty({T}, at::TensorOptions().dtype(at::kLong));
  int64_t* ids_data = ids.data_ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t) ids_data[t] = tokens[t];

  const RopeTables rope = MakeRopeTables(start_pos, T, D, c.rope_theta, dtype);
  std::map<int64_t, at::Tensor> masks;  // window -> [T, T] mask
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));

  at::Tensor x = w.embed.index_select(0, ids);  // [T, E]
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    at::Tensor h = RmsNorm(x, lw.input_norm, c.rms_norm_eps);
    at::Tensor q = at::matmul(h, lw.q_proj.t()).view({T, H, D});   // [T, H, D]
    at::Tensor k = at::matmul(h, lw.k_proj.t()).view({T, KV, D});  // [T, KV, D]
    at::Tensor v = at::matmul(h, lw.v_proj.t()).view({T, KV, D});  // [T, KV, D]
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
      at::Tensor scores = at::matmul(qh, kh.t()) * scale;  // [T, T]
      scores = scores.masked_fill(it->second.logical_not(), -std::numeric_limits<double>::infinity());
      heads.push_back(at::matmul(at::softmax(scores, -1), vh));  // [T, D]
    }
    at::Tensor attn = at::stack(heads, 1).reshape({T, H * D});  // [T, H*D]
    x = x + at::matmul(attn, lw.o_proj.t());

    at::Tensor h2 = RmsNorm(x, lw.post_norm, c.rms_norm_eps);
    at::Tensor mlp = at::silu(at::matmul(h2, lw.gate_proj.t())) * at::matmul(h2, lw.up_proj.t());
    x = x + at::matmul(mlp, lw.down_proj.t());
  }
  x = RmsNorm(x, w.final_norm, c.rms_norm_eps);
  return at::matmul(x, w.lm_head.t());  // [T, V]
}

}  // namespace mswa
