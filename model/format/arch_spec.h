// What distinguishes one decoder family from another, as switches of the one forward pass.
//
// Every forward (the CPU paged model, the CUDA paged model, the dense reference, the trainer)
// reads these switches through the shared ops of model/runtime/ops.h; a family is only a mapper
// (model/format/families/) from its config.json to an ArchSpec, windows and weight names. No
// forward or kernel asks which family it runs.
//
// The decoder layer, with every switch (defaults give Llama):
//   h = norm(x, input_norm)
//   q, k, v = split(h W_qkv^T (+ b_qkv))            fused_qkv: one [ (H+2KV)D, E ] tensor
//   q, k = qk_norm ? per-head norm(q, q_norm), norm(k, k_norm) : q, k
//   q, k = rope(q, k) over the first rotary_dim dims of each head, with the layer's RopeSpec
//   s = (q . k) * attn_scale;  s = attn_softcap ? tanh(s / cap) * cap : s;  window mask
//   a = softmax(s) v W_o^T (+ b_o)
//   x = x + (sandwich_norms ? norm(a, attn_out_norm) : a)
//   h = norm(x, pre_mlp_norm)
//   m = (act(h W_gate^T (+b)) * (h W_up^T (+b))) W_down^T (+b)   fused_gate_up: [2F, E], gate first
//   x = x + (sandwich_norms ? norm(m, mlp_out_norm) : m)
// logits = norm(x, final_norm) W_lm^T;  final_softcap ? tanh(logits / cap) * cap
// where norm(x, w) = x / sqrt(mean(x^2) + eps) * (norm_plus_one ? 1 + w : w), and the input is
// embed[token] * embed_scale.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mswa {

enum class Activation { kSilu, kGeluTanh };

// Rotary position embedding of one layer type.
struct RopeSpec {
  enum class Scaling { kNone, kLinear, kLlama3 };
  double theta = 10000.0;
  Scaling scaling = Scaling::kNone;
  double factor = 1.0;              // linear and llama3
  double low_freq_factor = 1.0;     // llama3
  double high_freq_factor = 4.0;    // llama3
  double original_max_position = 8192;  // llama3
  int64_t rotary_dim = 0;           // dims rotated per head ("rotate half" within them)

  bool operator==(const RopeSpec& o) const;
};

// The inverse frequencies, rotary_dim / 2 of them, in fp64: theta^(-2i/rotary_dim), then
// divided by `factor` (linear) or smoothly by band (llama3: long wavelengths / factor, short
// ones kept, the band between interpolated).
std::vector<double> RopeInvFreq(const RopeSpec& rope);

struct ArchSpec {
  std::string family = "mswa";   // the config's model_type ("gemma3" for multimodal ones)

  bool norm_plus_one = false;    // RMSNorm scales by (1 + w) (Gemma)
  bool sandwich_norms = false;   // norms on the attention and MLP outputs too (Gemma 2/3)
  bool qk_norm = false;          // per-head RMSNorm of q and k before RoPE (Gemma 3, Qwen 3)
  double embed_scale = 1.0;      // multiplies the embedding rows
  Activation activation = Activation::kSilu;
  double attn_scale = 0.0;       // multiplies q.k; 0 means 1/sqrt(head_dim)
  double attn_softcap = 0.0;     // 0: none
  double final_softcap = 0.0;    // 0: none
  bool qkv_bias = false, o_bias = false, mlp_bias = false;

  // RoPE: the distinct layer types' specs and, per layer, which one it uses.
  std::vector<RopeSpec> ropes;
  std::vector<int> layer_rope;

  // Weight names: decoder tensors are weight_prefix + "layers.N..." / "embed_tokens.weight" /
  // "norm.weight"; the output head is lm_head_name. Tensors under skipped_prefixes (a vision
  // tower) are ignored.
  std::string weight_prefix = "model.";
  std::string lm_head_name = "lm_head.weight";
  // Another layout of the same checkpoint (older multimodal saves): used when the file has no
  // weight_prefix + "embed_tokens.weight".
  std::string alt_weight_prefix;
  std::string alt_lm_head_name = "language_model.lm_head.weight";
  std::vector<std::string> skipped_prefixes;
  bool fused_qkv = false;        // self_attn.qkv_proj (Phi-3)
  bool fused_gate_up = false;    // mlp.gate_up_proj (Phi-3)
  bool sandwich_names = false;   // Gemma's norm names (pre_feedforward_layernorm, ...)

  // The attention scale to use for head_dim `head_dim`.
  double AttnScale(int64_t head_dim) const;
};

}  // namespace mswa
