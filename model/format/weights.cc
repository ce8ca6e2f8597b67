#include "model/format/weights.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace mswa {

absl::StatusOr<std::vector<std::string>> CheckpointFiles(const std::string& model_dir) {
  const std::string single = model_dir + "/model.safetensors";
  const std::string index_path = model_dir + "/model.safetensors.index.json";
  struct stat st;
  if (stat(single.c_str(), &st) == 0) return std::vector<std::string>{single};
  if (stat(index_path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(model_dir, " has neither model.safetensors nor "
                                            "model.safetensors.index.json"));
  }
  std::ifstream in(index_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json index = nlohmann::json::parse(ss.str(), nullptr, false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": not JSON with a \"weight_map\" object"));
  }
  std::set<std::string> shards;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string() || it.value().get<std::string>().find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path, ": weight_map[\"", it.key(), "\"] must name a file in the directory"));
    }
    shards.insert(it.value().get<std::string>());
  }
  std::vector<std::string> paths;
  for (const std::string& f : shards) paths.push_back(model_dir + "/" + f);
  return paths;
}

namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

at::ScalarType ToScalarType(DType d) {
  switch (d) {
    case DType::kF32: return at::kFloat;
    case DType::kF16: return at::kHalf;
    case DType::kBF16: return at::kBFloat16;
  }
  return at::kFloat;
}

std::string TorchDTypeName(DType d) {
  switch (d) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
  }
  return "float32";
}

// Copies out of the mapping (offsets in a file need not be aligned for the element type), then
// converts.
at::Tensor ToTensor(const TensorView& view, at::ScalarType compute_dtype) {
  at::Tensor raw = at::empty(view.shape, at::TensorOptions().dtype(ToScalarType(view.dtype)));
  if (view.nbytes > 0) std::memcpy(raw.data_ptr(), view.data, view.nbytes);
  return raw.to(compute_dtype);
}

// One checkpoint tensor and the slots it fills: one, or several rows-wise parts of a fused
// tensor (Phi-3's qkv_proj = [q; k; v], gate_up_proj = [gate; up]).
struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<at::Tensor*> slots;
  std::vector<int64_t> rows;  // per slot, when fused
  bool is_norm = false;
};

// The model's tensors in file order, named as the family names them under `prefix`.
template <typename Weights>
std::vector<Entry> Plan(Weights& w, const ModelConfig& c, const std::string& prefix,
                        const std::string& lm_head_name) {
  const ArchSpec& a = c.arch;
  const int64_t E = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t HD = c.num_attention_heads * D, KD = c.num_key_value_heads * D;
  auto slot = [](const at::Tensor& t) { return const_cast<at::Tensor*>(&t); };
  std::vector<Entry> out;
  auto one = [&](std::string name, std::vector<int64_t> shape, const at::Tensor& t, bool norm = false) {
    out.push_back(Entry{std::move(name), std::move(shape), {slot(t)}, {}, norm});
  };
  one(prefix + "embed_tokens.weight", {V, E}, w.embed);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    auto& l = w.layers[i];
    const std::string p = absl::StrCat(prefix, "layers.", i, ".");
    one(p + "input_layernorm.weight", {E}, l.input_norm, true);
    if (a.fused_qkv) {
      out.push_back(Entry{p + "self_attn.qkv_proj.weight", {HD + 2 * KD, E},
                          {slot(l.q_proj), slot(l.k_proj), slot(l.v_proj)}, {HD, KD, KD}});
    } else {
      one(p + "self_attn.q_proj.weight", {HD, E}, l.q_proj);
      one(p + "self_attn.k_proj.weight", {KD, E}, l.k_proj);
      one(p + "self_attn.v_proj.weight", {KD, E}, l.v_proj);
    }
    if (a.qkv_bias) {
      one(p + "self_attn.q_proj.bias", {HD}, l.q_bias);
      one(p + "self_attn.k_proj.bias", {KD}, l.k_bias);
      one(p + "self_attn.v_proj.bias", {KD}, l.v_bias);
    }
    if (a.qk_norm) {
      one(p + "self_attn.q_norm.weight", {D}, l.q_norm, true);
      one(p + "self_attn.k_norm.weight", {D}, l.k_norm, true);
    }
    one(p + "self_attn.o_proj.weight", {E, HD}, l.o_proj);
    if (a.o_bias) one(p + "self_attn.o_proj.bias", {E}, l.o_bias);
    if (a.sandwich_names) {
      one(p + "post_attention_layernorm.weight", {E}, l.attn_out_norm, true);
      one(p + "pre_feedforward_layernorm.weight", {E}, l.post_norm, true);
      one(p + "post_feedforward_layernorm.weight", {E}, l.mlp_out_norm, true);
    } else {
      one(p + "post_attention_layernorm.weight", {E}, l.post_norm, true);
    }
    if (a.fused_gate_up) {
      out.push_back(Entry{p + "mlp.gate_up_proj.weight", {2 * F, E},
                          {slot(l.gate_proj), slot(l.up_proj)}, {F, F}});
    } else {
      one(p + "mlp.gate_proj.weight", {F, E}, l.gate_proj);
      one(p + "mlp.up_proj.weight", {F, E}, l.up_proj);
    }
    one(p + "mlp.down_proj.weight", {E, F}, l.down_proj);
    if (a.mlp_bias) {
      one(p + "mlp.gate_proj.bias", {F}, l.gate_bias);
      one(p + "mlp.up_proj.bias", {F}, l.up_bias);
      one(p + "mlp.down_proj.bias", {E}, l.down_bias);
    }
  }
  one(prefix + "norm.weight", {E}, w.final_norm, true);
  if (!c.tie_word_embeddings) one(lm_head_name, {V, E}, w.lm_head);
  return out;
}

// Walks the mswa-format tensors (unfused, no optional ones) with (name, tensor slot).
template <typename Weights, typename Fn>
void ForEachTensor(Weights& w, const ModelConfig& config, Fn&& fn) {
  for (const Entry& e : Plan(w, config, "model.", "lm_head.weight")) fn(e.name, *e.slots[0]);
}

// The tensors of a checkpoint: one file or the shards an index names.
struct Checkpoint {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, std::pair<const TensorView*, const SafetensorsFile*>> tensors;
};

absl::StatusOr<Checkpoint> OpenCheckpoint(const std::string& model_dir) {
  Checkpoint ck;
  ASSIGN_OR_RETURN(const std::vector<std::string> paths, CheckpointFiles(model_dir));
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    for (const TensorView& t : file->tensors()) {
      if (!ck.tensors.emplace(t.name, std::make_pair(&t, file.get())).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor \"", t.name, "\" is also in another shard"));
      }
    }
    ck.files.push_back(std::move(file));
  }
  return ck;
}

absl::StatusOr<ModelWeights> LoadFromCheckpoint(const Checkpoint& ck, const std::string& where,
                                                const ModelConfig& config,
                                                std::optional<at::ScalarType> compute_dtype) {
  const ArchSpec& a = config.arch;
  std::string prefix = a.weight_prefix, lm_head = a.lm_head_name;
  if (!a.alt_weight_prefix.empty() && ck.tensors.count(prefix + "embed_tokens.weight") == 0 &&
      ck.tensors.count(a.alt_weight_prefix + "embed_tokens.weight") != 0) {
    prefix = a.alt_weight_prefix;
    lm_head = a.alt_lm_head_name;
  }
  ModelWeights w;
  w.layers.resize(config.num_hidden_layers);
  const std::vector<Entry> plan = Plan(w, config, prefix, lm_head);
  std::set<std::string> known;
  for (const Entry& e : plan) {
    known.insert(e.name);
    auto it = ck.tensors.find(e.name);
    if (it == ck.tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": missing tensor \"", e.name, "\" (expected shape ", ShapeString(e.shape),
          " for this config.json)"));
    }
    if (it->second.first->shape != e.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          it->second.second->path(), ": tensor \"", e.name, "\" has shape ",
          ShapeString(it->second.first->shape), " but config.json implies ", ShapeString(e.shape)));
    }
  }
  for (const auto& [name, view] : ck.tensors) {
    if (known.count(name) != 0) continue;
    if (config.tie_word_embeddings && (name == lm_head || name == "lm_head.weight")) continue;
    if (absl::EndsWith(name, "rotary_emb.inv_freq")) continue;
    bool skipped = false;
    for (const std::string& s : a.skipped_prefixes) skipped = skipped || absl::StartsWith(name, s);
    if (skipped) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        view.second->path(), ": unexpected tensor \"", name,
        "\" (not part of the architecture described by config.json: check num_hidden_layers, "
        "tie_word_embeddings and the bias and norm fields)"));
  }
  for (const Entry& e : plan) {
    const TensorView& view = *ck.tensors.at(e.name).first;
    const at::ScalarType stored = ToScalarType(view.dtype);
    at::Tensor t = ToTensor(view, compute_dtype.value_or(stored));
    if (e.slots.size() == 1) {
      *e.slots[0] = std::move(t);
    } else {
      int64_t row = 0;
      for (size_t k = 0; k < e.slots.size(); ++k) {
        *e.slots[k] = t.narrow(0, row, e.rows[k]).clone();
        row += e.rows[k];
      }
    }
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed;
  return w;
}

// splitmix64: tiny, fast and bit-exact everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  // Box-Muller; uses one of the two normals (simplicity over speed).
  double Normal() {
    const double u1 = Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

at::Tensor RandomTensor(Rng& rng, const std::vector<int64_t>& shape, double mean, double stddev,
                        at::ScalarType dtype) {
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kDouble));
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = mean + stddev * rng.Normal();
  return t.to(dtype);
}

absl::Status MakeDirectories(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || (dir[i] == '/' && i > 0)) {
      partial = dir.substr(0, i);
      if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot create directory ", partial, ": ", std::strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t ModelWeights::num_parameters() const {
  int64_t n = embed.numel() + final_norm.numel();
  if (!lm_head.is_same(embed)) n += lm_head.numel();
  for (const auto& l : layers) {
    for (const at::Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                                &l.post_norm, &l.gate_proj, &l.up_proj, &l.down_proj, &l.q_bias,
                                &l.k_bias, &l.v_bias, &l.o_bias, &l.gate_bias, &l.up_bias,
                                &l.down_bias, &l.q_norm, &l.k_norm, &l.attn_out_norm,
                                &l.mlp_out_norm}) {
      if (t->defined()) n += t->numel();
    }
  }
  return n;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(
    const ModelConfig& c) {
  ModelWeights w;
  w.layers.resize(c.num_hidden_layers);
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const Entry& e : Plan(w, c, c.arch.weight_prefix, c.arch.lm_head_name)) {
    out.push_back({e.name, e.shape});
  }
  return out;
}

absl::StatusOr<ModelWeights> LoadModelWeights(const SafetensorsFile& file,
                                              const ModelConfig& config,
                                              at::ScalarType compute_dtype) {
  Checkpoint ck;
  for (const TensorView& t : file.tensors()) ck.tensors.emplace(t.name, std::make_pair(&t, &file));
  return LoadFromCheckpoint(ck, file.path(), config, compute_dtype);
}

absl::StatusOr<ModelWeights> LoadModelWeights(const std::string& model_dir,
                                              const ModelConfig& config,
                                              std::optional<at::ScalarType> compute_dtype) {
  ASSIGN_OR_RETURN(Checkpoint ck, OpenCheckpoint(model_dir));
  return LoadFromCheckpoint(ck, ck.files.size() == 1 ? ck.files[0]->path() : model_dir, config,
                            compute_dtype);
}

ModelWeights RandomModelWeights(const ModelConfig& c, uint64_t seed, at::ScalarType dtype) {
  Rng rng(seed);
  ModelWeights w;
  w.layers.resize(c.num_hidden_layers);
  const double norm_mean = c.arch.norm_plus_one ? 0.0 : 1.0;
  for (const Entry& e : Plan(w, c, c.arch.weight_prefix, c.arch.lm_head_name)) {
    at::Tensor t;
    if (e.is_norm) {
      t = RandomTensor(rng, e.shape, norm_mean, 0.1, dtype);
    } else if (e.shape.size() == 1) {
      t = RandomTensor(rng, e.shape, 0.0, 0.1, dtype);  // biases
    } else if (absl::EndsWith(e.name, "embed_tokens.weight")) {
      t = RandomTensor(rng, e.shape, 0.0, 1.0, dtype);
    } else {
      t = RandomTensor(rng, e.shape, 0.0, 1.0 / std::sqrt(static_cast<double>(e.shape[1])), dtype);
    }
    int64_t row = 0;
    for (size_t k = 0; k < e.slots.size(); ++k) {
      *e.slots[k] = e.slots.size() == 1 ? t : t.narrow(0, row, e.rows[k]).clone();
      if (e.slots.size() > 1) row += e.rows[k];
    }
  }
  if (c.tie_word_embeddings) w.lm_head = w.embed;
  return w;
}

absl::Status WriteModelDirectory(const std::string& model_dir, ModelConfig config,
                                 const ModelWeights& weights, DType storage) {
  RETURN_IF_ERROR(config.Validate());
  RETURN_IF_ERROR(MakeDirectories(model_dir));
  config.torch_dtype = TorchDTypeName(storage);

  std::vector<at::Tensor> keep_alive;
  std::vector<TensorToWrite> tensors;
  ForEachTensor(weights, config, [&](const std::string& name, const at::Tensor& t) {
    at::Tensor s = t.to(ToScalarType(storage)).contiguous();
    keep_alive.push_back(s);
    tensors.push_back(TensorToWrite{name, storage, s.sizes().vec(), s.data_ptr(),
                                    static_cast<size_t>(s.numel()) * DTypeSize(storage)});
  });
  RETURN_IF_ERROR(WriteSafetensors(model_dir + "/model.safetensors", tensors,
                                   {{"format", "pt"}}));

  const std::string path = model_dir + "/config.json";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << ModelConfigToJson(config);
  out.close();
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace mswa
