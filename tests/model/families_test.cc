// config.json of each Hugging Face family -> ModelConfig: windows per layer, ArchSpec switches,
// RoPE per layer type, and every refusal naming its field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/format/config.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using json = nlohmann::json;

json Base(const std::string& type) {
  return json{{"model_type", type},       {"vocab_size", 300},  {"hidden_size", 64},
              {"intermediate_size", 96},  {"num_hidden_layers", 6},
              {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"bos_token_id", 1},        {"eos_token_id", 2},  {"tokenizer", {{"type", "bytes"}}}};
}

ModelConfig Parse(const json& j) {
  auto c = ParseModelConfig(j.dump());
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ModelConfig();
}

std::string ErrorOf(const json& j) {
  auto c = ParseModelConfig(j.dump());
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

std::vector<int64_t> LayerWindows(const ModelConfig& c) {
  std::vector<int64_t> w;
  for (const auto& row : c.attention_windows) w.push_back(row.front());
  return w;
}

TEST(Families, UnknownModelTypeListsTheSupportedOnes) {
  const std::string e = ErrorOf(Base("falcon"));
  EXPECT_NE(e.find("\"falcon\""), std::string::npos) << e;
  for (const char* f : {"llama", "mistral", "gemma2", "gemma3_text", "gemma3", "phi3", "qwen2", "qwen3"}) {
    EXPECT_NE(e.find(f), std::string::npos) << f << " missing from: " << e;
  }
}

TEST(Families, LlamaHasNoWindowsAndReadsBiasesAndRopeScaling) {
  json j = Base("llama");
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j["sliding_window"] = 8;  // not a Llama field: ignored
  const ModelConfig c = Parse(j);
  EXPECT_EQ(LayerWindows(c), std::vector<int64_t>(6, 0));
  EXPECT_TRUE(c.arch.qkv_bias && c.arch.o_bias && c.arch.mlp_bias);
  EXPECT_EQ(c.rope(0).scaling, RopeSpec::Scaling::kLlama3);
  EXPECT_EQ(c.rope(0).theta, 500000.0);
  EXPECT_EQ(c.rope(0).rotary_dim, 16);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(Families, Llama3RopeKeepsHighFrequenciesAndStretchesLowOnes) {
  RopeSpec r;
  r.theta = 10000;
  r.rotary_dim = 16;
  r.scaling = RopeSpec::Scaling::kLlama3;
  r.factor = 8;
  r.low_freq_factor = 1;
  r.high_freq_factor = 4;
  r.original_max_position = 32;
  RopeSpec plain = r;
  plain.scaling = RopeSpec::Scaling::kNone;
  const auto scaled = RopeInvFreq(r), base = RopeInvFreq(plain);
  ASSERT_EQ(scaled.size(), 8u);
  EXPECT_EQ(scaled[0], base[0]);               // wavelength 2 pi < 32 / 4: kept
  EXPECT_DOUBLE_EQ(scaled[7], base[7] / 8);    // wavelength > 32: divided by the factor
  bool blended = false;                        // and some in between
  for (size_t i = 0; i < 8; ++i) blended |= scaled[i] < base[i] && scaled[i] > base[i] / 8;
  EXPECT_TRUE(blended);
}

TEST(Families, MistralSlidesEveryLayerUnlessTheWindowIsNull) {
  json j = Base("mistral");
  j["sliding_window"] = 4096;
  EXPECT_EQ(LayerWindows(Parse(j)), std::vector<int64_t>(6, 4096));
  j["sliding_window"] = nullptr;
  EXPECT_EQ(LayerWindows(Parse(j)), std::vector<int64_t>(6, 0));
}

TEST(Families, Gemma2AlternatesSlidingFirstWithItsSwitches) {
  json j = Base("gemma2");
  j["hidden_size"] = 72;
  j["head_dim"] = 32;
  j["torch_dtype"] = "bfloat16";
  j["sliding_window"] = 5;
  j["query_pre_attn_scalar"] = 24;
  j["attn_logit_softcapping"] = 50.0;
  j["final_logit_softcapping"] = 30.0;
  j["hidden_activation"] = "gelu_pytorch_tanh";
  const ModelConfig c = Parse(j);
  EXPECT_EQ(LayerWindows(c), (std::vector<int64_t>{5, 0, 5, 0, 5, 0}));
  EXPECT_TRUE(c.arch.norm_plus_one && c.arch.sandwich_norms && !c.arch.qk_norm);
  EXPECT_EQ(c.arch.activation, Activation::kGeluTanh);
  EXPECT_EQ(c.arch.embed_scale, 8.5);  // sqrt(72) = 8.485 rounded to bfloat16
  EXPECT_DOUBLE_EQ(c.arch.attn_scale, 1.0 / std::sqrt(24.0));
  EXPECT_EQ(c.arch.attn_softcap, 50.0);
  EXPECT_EQ(c.arch.final_softcap, 30.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  j["torch_dtype"] = "float32";
  EXPECT_FLOAT_EQ(static_cast<float>(Parse(j).arch.embed_scale), std::sqrt(72.0f));
}

TEST(Families, Gemma3LegacyPatternAndTwoRopes) {
  json j = Base("gemma3_text");
  j["head_dim"] = 32;
  j["sliding_window"] = 512;
  j["sliding_window_pattern"] = 3;
  j["rope_theta"] = 1e6;
  j["rope_local_base_freq"] = 10000.0;
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  const ModelConfig c = Parse(j);
  EXPECT_EQ(LayerWindows(c), (std::vector<int64_t>{512, 512, 0, 512, 512, 0}));
  EXPECT_TRUE(c.arch.qk_norm);
  EXPECT_EQ(c.arch.attn_softcap, 0.0);
  EXPECT_EQ(c.rope(0).theta, 10000.0);  // local: its own base, no scaling
  EXPECT_EQ(c.rope(0).scaling, RopeSpec::Scaling::kNone);
  EXPECT_EQ(c.rope(2).theta, 1e6);      // global: rope_theta with rope_scaling
  EXPECT_EQ(c.rope(2).scaling, RopeSpec::Scaling::kLinear);
  EXPECT_EQ(c.rope(2).factor, 8.0);
}

TEST(Families, Gemma3NewFormGivesTheSameModel) {
  json legacy = Base("gemma3_text");
  legacy["head_dim"] = 32;
  legacy["sliding_window"] = 4;
  legacy["sliding_window_pattern"] = 3;
  legacy["rope_theta"] = 1e6;
  legacy["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  json fresh = Base("gemma3_text");
  fresh["head_dim"] = 32;
  fresh["sliding_window"] = 4;
  fresh["layer_types"] = {"sliding_attention", "sliding_attention", "full_attention",
                          "sliding_attention", "sliding_attention", "full_attention"};
  fresh["rope_parameters"] = {
      {"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
      {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  const ModelConfig a = Parse(legacy), b = Parse(fresh);
  EXPECT_EQ(a.attention_windows, b.attention_windows);
  for (int64_t l = 0; l < 6; ++l) EXPECT_TRUE(a.rope(l) == b.rope(l)) << l;
}

TEST(Families, Gemma3MultimodalUnwrapsTextConfigAndSkipsTheVisionTower) {
  json j = {{"model_type", "gemma3"},
            {"text_config", Base("gemma3_text")},
            {"vision_config", {{"model_type", "siglip_vision_model"}}},
            {"eos_token_id", {1, 106}},
            {"tokenizer", {{"type", "bytes"}}}};
  j["text_config"].erase("eos_token_id");
  j["text_config"].erase("tokenizer");
  const ModelConfig c = Parse(j);
  EXPECT_EQ(c.arch.weight_prefix, "model.language_model.");
  EXPECT_FALSE(c.arch.skipped_prefixes.empty());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 106}));
  EXPECT_EQ(LayerWindows(c), (std::vector<int64_t>{4096, 4096, 4096, 4096, 4096, 0}));  // defaults
  json no_text = j;
  no_text.erase("text_config");
  EXPECT_NE(ErrorOf(no_text).find("text_config"), std::string::npos);
}

TEST(Families, Phi3FusedProjectionsAndPartialRotary) {
  json j = Base("phi3");
  j["partial_rotary_factor"] = 0.5;
  j["sliding_window"] = 2047;
  const ModelConfig c = Parse(j);
  EXPECT_TRUE(c.arch.fused_qkv && c.arch.fused_gate_up);
  EXPECT_EQ(c.rope(0).rotary_dim, 8);
  EXPECT_EQ(LayerWindows(c), std::vector<int64_t>(6, 2047));
  j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0}}, {"long_factor", {1.0}}};
  const std::string e = ErrorOf(j);
  EXPECT_NE(e.find("rope_scaling.rope_type"), std::string::npos) << e;
  EXPECT_NE(e.find("longrope"), std::string::npos) << e;
}

TEST(Families, Qwen2SlidesOnlyFromMaxWindowLayersAndOnlyWhenAskedTo) {
  json j = Base("qwen2");
  j["sliding_window"] = 32;
  j["max_window_layers"] = 4;
  EXPECT_EQ(LayerWindows(Parse(j)), std::vector<int64_t>(6, 0));  // use_sliding_window false
  j["use_sliding_window"] = true;
  const ModelConfig c = Parse(j);
  EXPECT_EQ(LayerWindows(c), (std::vector<int64_t>{0, 0, 0, 0, 32, 32}));
  EXPECT_TRUE(c.arch.qkv_bias);
  EXPECT_FALSE(c.arch.o_bias);
}

TEST(Families, Qwen3HasQkNormAndNoBiases) {
  const ModelConfig c = Parse(Base("qwen3"));
  EXPECT_TRUE(c.arch.qk_norm);
  EXPECT_FALSE(c.arch.norm_plus_one);
  EXPECT_FALSE(c.arch.qkv_bias);
}

TEST(Families, WhatIsNotImplementedIsRefusedNamingTheField) {
  struct Case {
    std::string type, field;
    json value;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"llama", "hidden_act", "gelu", "hidden_act"},
      {"gemma2", "hidden_activation", "gelu", "hidden_activation"},
      {"llama", "rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}, "yarn"},
      {"llama", "rope_scaling", {{"rope_type", "dynamic"}, {"factor", 4.0}}, "dynamic"},
      {"mistral", "num_local_experts", 8, "num_local_experts"},
      {"qwen2", "num_experts", 60, "num_experts"},
      {"llama", "quantization_config", {{"quant_method", "gptq"}}, "quantization_config"},
      {"gemma3_text", "use_bidirectional_attention", true, "use_bidirectional_attention"},
      {"gemma2", "layer_types", {"sliding_attention", "chunked_attention", "full_attention",
                                 "sliding_attention", "full_attention", "full_attention"},
       "layer_types[1]"},
      {"gemma2", "layer_types", {"sliding_attention"}, "layer_types"},
  };
  for (const Case& k : cases) {
    json j = Base(k.type);
    j[k.field] = k.value;
    const std::string e = ErrorOf(j);
    EXPECT_NE(e.find(k.expect), std::string::npos) << k.type << " " << k.field << ": " << e;
  }
}

TEST(Families, CountsPastAnyModelAreRefusedBeforeAnythingIsSizedByThem) {
  // 3.32e10 layers once made the parser allocate a vector of that many before validating it.
  for (const char* type : {"mswa", "llama", "mistral", "gemma2", "gemma3_text", "phi3", "qwen2"}) {
    for (const char* field : {"num_hidden_layers", "num_attention_heads", "num_key_value_heads"}) {
      for (const json& value : {json(33200000000LL), json(0), json(-3)}) {
        json j = Base(type);
        j["head_dim"] = 16;
        j[field] = value;
        const std::string e = ErrorOf(j);
        EXPECT_NE(e.find(field), std::string::npos) << type << " " << field << "=" << value << ": " << e;
      }
    }
  }
  json j = Base("llama");
  j["num_hidden_layers"] = kMaxHiddenLayers;
  j["num_attention_heads"] = 4;
  EXPECT_EQ(ErrorOf(j), "");
}

TEST(Families, ExplicitWindowsOverrideTheFamilysOwn) {
  json j = Base("mistral");
  j["sliding_window"] = 64;
  j["num_hidden_layers"] = 2;
  j["attention_windows"] = {{16, 16, 64, 64}, {32, 32, 0, 0}};
  const ModelConfig c = Parse(j);
  EXPECT_TRUE(c.windows_overridden());
  EXPECT_EQ(c.window(0, 0), 16);
  EXPECT_EQ(c.native_windows[0][0], 64);
  j["attention_windows"] = {{16, 32, 64, 64}, {32, 32, 0, 0}};  // heads 0 and 1 share KV head 0
  EXPECT_NE(ErrorOf(j).find("share a window"), std::string::npos);
}

TEST(Families, GenerationConfigEosListAndTokenizerJsonAreUsed) {
  const std::string dir = ::testing::TempDir() + "/families_dir";
  std::filesystem::create_directories(dir);
  json j = Base("llama");
  j.erase("tokenizer");
  std::ofstream(dir + "/config.json") << j.dump();
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": [2, 7, 9]})";
  std::ofstream(dir + "/tokenizer.json") << "{}";
  auto c = LoadModelConfig(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{2, 7, 9}));
  EXPECT_TRUE(c->is_eos(7));
  EXPECT_FALSE(c->is_eos(3));
  EXPECT_EQ(c->tokenizer.type, TokenizerSpec::Type::kHfJson);
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": [2, 7000]})";
  auto bad = LoadModelConfig(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("generation_config.json"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mswa
