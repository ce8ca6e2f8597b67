#include "model/format/weights.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"

namespace mswa {
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

// Walks the model's tensors in file order with a visitor taking (name, tensor slot).
template <typename Weights, typename Fn>
void ForEachTensor(Weights& w, const ModelConfig& config, Fn&& fn) {
  fn("model.embed_tokens.weight", w.embed);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    auto& l = w.layers[i];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    fn(p + "input_layernorm.weight", l.input_norm);
    fn(p + "self_attn.q_proj.weight", l.q_proj);
    fn(p + "self_attn.k_proj.weight", l.k_proj);
    fn(p + "self_attn.v_proj.weight", l.v_proj);
    fn(p + "self_attn.o_proj.weight", l.o_proj);
    fn(p + "post_attention_layernorm.weight", l.post_norm);
    fn(p + "mlp.gate_proj.weight", l.gate_proj);
    fn(p + "mlp.up_proj.weight", l.up_proj);
    fn(p + "mlp.down_proj.weight", l.down_proj);
  }
  fn("model.norm.weight", w.final_norm);
  if (!config.tie_word_embeddings) fn("lm_head.weight", w.lm_head);
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
                                &l.post_norm, &l.gate_proj, &l.up_proj, &l.down_proj}) {
      n += t->numel();
    }
  }
  return n;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(
    const ModelConfig& c) {
  const int64_t E = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t HD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({"model.embed_tokens.weight", {V, E}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    out.push_back({p + "input_layernorm.weight", {E}});
    out.push_back({p + "self_attn.q_proj.weight", {HD, E}});
    out.push_back({p + "self_attn.k_proj.weight", {KD, E}});
    out.push_back({p + "self_attn.v_proj.weight", {KD, E}});
    out.push_back({p + "self_attn.o_proj.weight", {E, HD}});
    out.push_back({p + "post_attention_layernorm.weight", {E}});
    out.push_back({p + "mlp.gate_proj.weight", {F, E}});
    out.push_back({p + "mlp.up_proj.weight", {F, E}});
    out.push_back({p + "mlp.down_proj.weight", {E, F}});
  }
  out.push_back({"model.norm.weight", {E}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, E}});
  return out;
}

absl::StatusOr<ModelWeights> LoadModelWeights(const SafetensorsFile& file,
                                              const ModelConfig& config,
                                              at::ScalarType compute_dtype) {
  const auto expected = ExpectedTensors(config);
  std::set<std::string> known;
  for (const auto& [name, shape] : expected) {
    known.insert(name);
    const TensorView* view = file.Find(name);
    if (view == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": missing tensor \"", name, "\" (expected shape ", ShapeString(shape),
          " for this config.json)"));
    }
    if (view->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": tensor \"", name, "\" has shape ", ShapeString(view->shape),
          " but config.json implies ", ShapeString(shape)));
    }
  }
  for (const TensorView& t : file.tensors()) {
    if (known.count(t.name) != 0) continue;
    if (config.tie_word_embeddings && t.name == "lm_head.weight") continue;
    if (absl::EndsWith(t.name, "rotary_emb.inv_freq")) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": unexpected tensor \"", t.name,
        "\" (not part of the architecture described by config.json: check num_hidden_layers "
        "and tie_word_embeddings)"));
  }

  ModelWeights w;
  w.layers.resize(config.num_hidden_layers);
  ForEachTensor(w, config, [&](const std::string& name, at::Tensor& slot) {
    slot = ToTensor(*file.Find(name), compute_dtype);
  });
  if (config.tie_word_embeddings) w.lm_head = w.embed;
  return w;
}

absl::StatusOr<ModelWeights> LoadModelWeights(const std::string& model_dir,
                                              const ModelConfig& config,
                                              at::ScalarType compute_dtype) {
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(model_dir + "/model.safetensors"));
  return LoadModelWeights(*file, config, compute_dtype);
}

ModelWeights RandomModelWeights(const ModelConfig& c, uint64_t seed, at::ScalarType dtype) {
  Rng rng(seed);
  ModelWeights w;
  w.layers.resize(c.num_hidden_layers);
  const auto expected = ExpectedTensors(c);
  size_t i = 0;
  ForEachTensor(w, c, [&](const std::string& name, at::Tensor& slot) {
    const std::vector<int64_t>& shape = expected[i++].second;
    if (shape.size() == 1) {
      slot = RandomTensor(rng, shape, 1.0, 0.1, dtype);
    } else if (name == "model.embed_tokens.weight") {
      slot = RandomTensor(rng, shape, 0.0, 1.0, dtype);
    } else {
      slot = RandomTensor(rng, shape, 0.0, 1.0 / std::sqrt(static_cast<double>(shape[1])), dtype);
    }
  });
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
