// Model weights in LibTorch tensors, loaded from a model directory's model.safetensors or its
// shards (model.safetensors.index.json), with the family's tensor names (ArchSpec: prefixes,
// fused projections split at load, Gemma's norm names), and saved in the mswa format.
//
// Shapes (HF nn.Linear layout, [out_features, in_features]); H = num_attention_heads,
// KV = num_key_value_heads, D = head_dim, E = hidden_size, F = intermediate_size, V = vocab:
//   embed [V, E]   lm_head [V, E] (the same tensor as embed when tied)   final_norm [E]
//   per layer: input_norm [E], q_proj [H*D, E], k_proj [KV*D, E], v_proj [KV*D, E],
//              o_proj [E, H*D], post_norm [E], gate_proj [F, E], up_proj [F, E],
//              down_proj [E, F]
//   optional per layer (ArchSpec switches; undefined tensors otherwise):
//              q_bias [H*D], k_bias/v_bias [KV*D], o_bias [E], gate_bias/up_bias [F],
//              down_bias [E], q_norm/k_norm [D], attn_out_norm/mlp_out_norm [E]
// Norm weights are stored as in the checkpoint (Gemma's are the w of (1 + w)).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/format/config.h"
#include "model/format/safetensors.h"

namespace mswa {

struct LayerWeights {
  at::Tensor input_norm, q_proj, k_proj, v_proj, o_proj;
  at::Tensor post_norm, gate_proj, up_proj, down_proj;  // post_norm: the norm before the MLP
  at::Tensor q_bias, k_bias, v_bias, o_bias, gate_bias, up_bias, down_bias;
  at::Tensor q_norm, k_norm, attn_out_norm, mlp_out_norm;
};

struct ModelWeights {
  at::Tensor embed, final_norm, lm_head;
  std::vector<LayerWeights> layers;

  at::ScalarType dtype() const { return embed.scalar_type(); }
  int64_t num_parameters() const;  // tied lm_head counted once
};

// Every tensor the config requires, with its name in the checkpoint and shape, in file order
// (fused tensors whole). lm_head.weight is absent when embeddings are tied.
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(
    const ModelConfig& config);

// Loads and converts to `compute_dtype` (at::kFloat or at::kDouble; at::kBFloat16 or kHalf
// keep a checkpoint of that type as it is). Errors name the tensor: missing; unexpected (extra)
// tensor; shape differing from the config. A tied model's file may also hold lm_head.weight
// (ignored); rotary_emb.inv_freq buffers and the family's skipped prefixes (a vision tower)
// are ignored.
absl::StatusOr<ModelWeights> LoadModelWeights(const SafetensorsFile& file,
                                              const ModelConfig& config,
                                              at::ScalarType compute_dtype = at::kFloat);
// The weight files of a model directory: model.safetensors, or else the shards that
// model.safetensors.index.json names (each once, sorted), as paths under model_dir.
// NotFound when there is neither; InvalidArgument naming the index when it is not JSON with a
// "weight_map" object of file names in the directory.
absl::StatusOr<std::vector<std::string>> CheckpointFiles(const std::string& model_dir);

// Opens `model_dir`/model.safetensors, or the shards model.safetensors.index.json names, and
// loads them. `compute_dtype` nullopt keeps the checkpoint's type (bf16 stays bf16: the
// resident weights are then the size of the files).
absl::StatusOr<ModelWeights> LoadModelWeights(const std::string& model_dir,
                                              const ModelConfig& config,
                                              std::optional<at::ScalarType> compute_dtype = at::kFloat);

// Deterministic random weights (own RNG: the same seed gives the same bits on every platform
// and LibTorch version). Projections ~ N(0, 1/in_features), embeddings ~ N(0, 1), norms
// ~ 1 + N(0, 0.1^2) so that tests see non-trivial norm weights.
ModelWeights RandomModelWeights(const ModelConfig& config, uint64_t seed,
                                at::ScalarType dtype = at::kFloat);

// Writes config.json and model.safetensors (mswa family only) (weights stored as `storage`) into `model_dir`,
// creating the directory. config.torch_dtype is set to match `storage`.
absl::Status WriteModelDirectory(const std::string& model_dir, ModelConfig config,
                                 const ModelWeights& weights, DType storage);

}  // namespace mswa
