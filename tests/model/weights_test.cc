#include "model/format/weights.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "model/format/safetensors.h"
#include "tests/model/test_models.h"

namespace mswa {
namespace {

using mswa::testing::TinyConfig;

std::string TempDir(const std::string& name) { return ::testing::TempDir() + "/weights_" + name; }

// Writes `w` as a safetensors file, skipping `skip` and adding `extra` (if non-empty).
std::string WriteFile(const std::string& name, const ModelConfig& c, const ModelWeights& w,
                      const std::string& skip, const std::string& extra,
                      const std::string& reshape = "") {
  std::vector<at::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& [tensor_name, shape] : ExpectedTensors(c)) {
    if (tensor_name == skip) continue;
    at::Tensor t;
    if (tensor_name == "model.embed_tokens.weight") t = w.embed;
    else if (tensor_name == "model.norm.weight") t = w.final_norm;
    else if (tensor_name == "lm_head.weight") t = w.lm_head;
    else t = at::zeros(shape, at::kFloat);
    if (tensor_name == reshape) t = t.reshape({-1});
    t = t.contiguous();
    keep.push_back(t);
    out.push_back({tensor_name, DType::kF32, t.sizes().vec(), t.data_ptr(),
                   static_cast<size_t>(t.numel()) * 4});
  }
  at::Tensor e = at::zeros({3});
  if (!extra.empty()) out.push_back({extra, DType::kF32, {3}, e.data_ptr(), 12});
  const std::string path = TempDir(name) + ".safetensors";
  EXPECT_TRUE(WriteSafetensors(path, out).ok());
  return path;
}

absl::Status LoadStatus(const std::string& path, const ModelConfig& c) {
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) return file.status();
  return LoadModelWeights(**file, c).status();
}

TEST(ModelWeights, RandomWeightsAreDeterministic) {
  ModelConfig c = TinyConfig();
  ModelWeights a = RandomModelWeights(c, 7), b = RandomModelWeights(c, 7),
               d = RandomModelWeights(c, 8);
  EXPECT_TRUE(at::equal(a.layers[1].down_proj, b.layers[1].down_proj));
  EXPECT_FALSE(at::equal(a.layers[1].down_proj, d.layers[1].down_proj));
  EXPECT_TRUE(a.lm_head.is_same(a.embed));
}

TEST(ModelWeights, RoundTripsThroughAModelDirectoryInEveryDtype) {
  ModelConfig c = TinyConfig({{2, 2, 4, 4}, {0, 0, 5, 5}}, /*tied=*/false);
  ModelWeights w = RandomModelWeights(c, 1);
  struct Case {
    DType dtype;
    double tolerance;
  };
  for (Case k : {Case{DType::kF32, 0.0}, Case{DType::kF16, 2e-3}, Case{DType::kBF16, 1e-2}}) {
    const std::string dir = TempDir(std::string(DTypeName(k.dtype)));
    ASSERT_TRUE(WriteModelDirectory(dir, c, w, k.dtype).ok());
    auto config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status();
    auto loaded = LoadModelWeights(dir, *config);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->dtype(), at::kFloat);
    EXPECT_EQ(loaded->num_parameters(), w.num_parameters());
    for (auto [a, b] : {std::pair{&w.layers[1].q_proj, &loaded->layers[1].q_proj},
                        std::pair{&w.lm_head, &loaded->lm_head},
                        std::pair{&w.final_norm, &loaded->final_norm}}) {
      const double err = (*a - *b).abs().max().item<double>();
      const double scale = a->abs().max().item<double>();
      EXPECT_LE(err, k.tolerance * scale) << DTypeName(k.dtype);
    }
  }
}

TEST(ModelWeights, LoadsIntoDouble) {
  ModelConfig c = TinyConfig();
  const std::string dir = TempDir("double");
  ASSERT_TRUE(WriteModelDirectory(dir, c, RandomModelWeights(c, 2), DType::kF32).ok());
  auto w = LoadModelWeights(dir, c, at::kDouble);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->layers[0].k_proj.scalar_type(), at::kDouble);
}

TEST(ModelWeights, MissingTensorIsNamed) {
  ModelConfig c = TinyConfig();
  ModelWeights w = RandomModelWeights(c, 3);
  const std::string path = WriteFile("missing", c, w, "model.layers.1.mlp.up_proj.weight", "");
  absl::Status s = LoadStatus(path, c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("missing tensor \"model.layers.1.mlp.up_proj.weight\""),
            std::string::npos) << s;
}

TEST(ModelWeights, ExtraTensorIsNamed) {
  ModelConfig c = TinyConfig();
  ModelWeights w = RandomModelWeights(c, 3);
  const std::string path = WriteFile("extra", c, w, "", "model.layers.2.mlp.up_proj.weight");
  absl::Status s = LoadStatus(path, c);
  EXPECT_NE(std::string(s.message()).find("unexpected tensor \"model.layers.2.mlp.up_proj.weight\""),
            std::string::npos) << s;
  // Known harmless buffers are accepted.
  const std::string ok = WriteFile("inv_freq", c, w, "", "model.layers.0.self_attn.rotary_emb.inv_freq");
  EXPECT_TRUE(LoadStatus(ok, c).ok());
}

TEST(ModelWeights, ShapeMismatchNamesBothShapes) {
  ModelConfig c = TinyConfig();
  ModelWeights w = RandomModelWeights(c, 3);
  const std::string path = WriteFile("shape", c, w, "", "", "model.layers.0.self_attn.k_proj.weight");
  absl::Status s = LoadStatus(path, c);
  EXPECT_NE(std::string(s.message()).find("has shape [512] but config.json implies [16, 32]"),
            std::string::npos) << s;
}

// Writes the tensors of `w` (mswa names) split over two shard files with an index.
void WriteShards(const std::string& dir, const ModelConfig& c, const ModelWeights& w,
                 const std::string& index_extra = "") {
  std::filesystem::create_directories(dir);
  const std::string single = TempDir("shard_src");
  ASSERT_TRUE(WriteModelDirectory(single, c, w, DType::kF32).ok());
  auto file = SafetensorsFile::Open(single + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  std::vector<TensorToWrite> a, b;
  std::string map;
  size_t i = 0;
  for (const TensorView& t : (*file)->tensors()) {
    const bool first = i++ % 2 == 0;
    (first ? a : b).push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
    map += (map.empty() ? "" : ", ") + std::string("\"") + t.name + "\": \"" +
           (first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors") + "\"";
  }
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00001-of-00002.safetensors", a).ok());
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00002-of-00002.safetensors", b).ok());
  std::ofstream(dir + "/model.safetensors.index.json")
      << "{\"metadata\": {}, \"weight_map\": {" << map << index_extra << "}}";
}

TEST(ModelWeights, LoadsShardsThroughTheIndex) {
  ModelConfig c = TinyConfig();
  ModelWeights w = RandomModelWeights(c, 5);
  const std::string dir = TempDir("sharded");
  WriteShards(dir, c, w);
  auto loaded = LoadModelWeights(dir, c);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(at::equal(loaded->layers[1].down_proj, w.layers[1].down_proj));
  EXPECT_TRUE(at::equal(loaded->final_norm, w.final_norm));

  // An index that names a shard that is not there.
  const std::string missing = TempDir("sharded_missing");
  WriteShards(missing, c, w, ", \"extra.weight\": \"model-00003-of-00003.safetensors\"");
  absl::Status s = LoadModelWeights(missing, c).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(std::string(s.message()).find("model-00003-of-00003.safetensors"), std::string::npos) << s;

  // Neither a single file nor an index.
  const std::string empty = TempDir("no_weights");
  std::filesystem::create_directories(empty);
  s = LoadModelWeights(empty, c).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(s.message()).find("model.safetensors.index.json"), std::string::npos) << s;
}

TEST(ModelWeights, BfloatCheckpointsStayBfloatWhenAsked) {
  ModelConfig c = TinyConfig();
  const std::string dir = TempDir("bf16_kept");
  ASSERT_TRUE(WriteModelDirectory(dir, c, RandomModelWeights(c, 6), DType::kBF16).ok());
  auto w = LoadModelWeights(dir, c, std::nullopt);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->dtype(), at::kBFloat16);
  EXPECT_EQ(w->layers[0].q_proj.scalar_type(), at::kBFloat16);
}

}  // namespace
}  // namespace mswa
