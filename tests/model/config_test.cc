#include "model/format/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using json = nlohmann::json;

json ValidConfig() {
  return json{{"model_type", "mswa"},
              {"vocab_size", 258},
              {"hidden_size", 64},
              {"intermediate_size", 128},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"head_dim", 16},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", true},
              {"bos_token_id", 256},
              {"eos_token_id", 257},
              {"attention_windows", {{4, 4, 8, 8}, {8, 8, 0, 0}}},
              {"tokenizer", {{"type", "bytes"}}}};
}

// Parses `j` and returns the error message ("" when it parses).
std::string ErrorOf(const json& j) {
  auto c = ParseModelConfig(j.dump());
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(ModelConfig, ParsesAValidConfig) {
  auto c = ParseModelConfig(ValidConfig().dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->gqa_group(), 2);
  EXPECT_EQ(c->window(0, 1), 4);
  EXPECT_EQ(c->kv_window(1, 1), 0);
  EXPECT_FALSE(c->all_windows_finite());
  EXPECT_EQ(c->max_window(), 8);
  EXPECT_EQ(c->tokenizer.type, TokenizerSpec::Type::kBytes);
}

TEST(ModelConfig, RoundTripsThroughJson) {
  auto c = ParseModelConfig(ValidConfig().dump());
  ASSERT_TRUE(c.ok());
  auto again = ParseModelConfig(ModelConfigToJson(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->attention_windows, c->attention_windows);
  EXPECT_EQ(again->rms_norm_eps, c->rms_norm_eps);
  EXPECT_EQ(again->tie_word_embeddings, c->tie_word_embeddings);
  EXPECT_EQ(again->head_dim, c->head_dim);
}

TEST(ModelConfig, MissingFieldIsNamed) {
  json j = ValidConfig();
  j.erase("hidden_size");
  EXPECT_NE(ErrorOf(j).find("\"hidden_size\" is missing"), std::string::npos) << ErrorOf(j);
}

TEST(ModelConfig, WrongTypeIsNamed) {
  json j = ValidConfig();
  j["num_hidden_layers"] = "two";
  EXPECT_NE(ErrorOf(j).find("\"num_hidden_layers\" must be an integer"), std::string::npos);
  j = ValidConfig();
  j["tie_word_embeddings"] = 1;
  EXPECT_NE(ErrorOf(j).find("tie_word_embeddings"), std::string::npos);
  j = ValidConfig();
  j["rope_theta"] = "big";
  EXPECT_NE(ErrorOf(j).find("rope_theta"), std::string::npos);
}

TEST(ModelConfig, NotJsonOrNotAnObject) {
  EXPECT_FALSE(ParseModelConfig("{not json").ok());
  EXPECT_FALSE(ParseModelConfig("[1, 2]").ok());
  EXPECT_NE(std::string(ParseModelConfig("{not json", "x/config.json").status().message())
                .find("x/config.json"),
            std::string::npos);
}

TEST(ModelConfig, HeadsThatDoNotDivide) {
  json j = ValidConfig();
  j["num_key_value_heads"] = 3;
  j["attention_windows"] = {{4, 4, 4, 4}, {8, 8, 8, 8}};
  EXPECT_NE(ErrorOf(j).find("must be a multiple of \"num_key_value_heads\""), std::string::npos);
}

TEST(ModelConfig, WindowsOfTheWrongShape) {
  json j = ValidConfig();
  j["attention_windows"] = {{4, 4, 8, 8}};
  EXPECT_NE(ErrorOf(j).find("one list per layer"), std::string::npos);
  j["attention_windows"] = {{4, 4, 8, 8}, {8, 8, 0}};
  EXPECT_NE(ErrorOf(j).find("attention_windows[1]"), std::string::npos);
  j["attention_windows"] = {{4, 4, 8, 8}, 8};
  EXPECT_NE(ErrorOf(j).find("attention_windows[1]"), std::string::npos);
  j["attention_windows"] = {{4, 4, 8, 8}, {8, 8, 0, "x"}};
  EXPECT_NE(ErrorOf(j).find("attention_windows[1][3]"), std::string::npos);
  j.erase("attention_windows");
  EXPECT_NE(ErrorOf(j).find("\"attention_windows\" is missing"), std::string::npos);
}

TEST(ModelConfig, HeadsSharingAKvHeadMustShareAWindow) {
  json j = ValidConfig();
  j["attention_windows"] = {{4, 5, 8, 8}, {8, 8, 0, 0}};
  const std::string e = ErrorOf(j);
  EXPECT_NE(e.find("share KV head 0"), std::string::npos) << e;
}

TEST(ModelConfig, NegativeWindow) {
  json j = ValidConfig();
  j["attention_windows"] = {{4, 4, -8, -8}, {8, 8, 0, 0}};
  EXPECT_NE(ErrorOf(j).find("attention_windows[0][2]\" must be >= 0"), std::string::npos);
}

TEST(ModelConfig, OutOfRangeValues) {
  for (const char* field : {"vocab_size", "hidden_size", "num_attention_heads", "head_dim"}) {
    json j = ValidConfig();
    j[field] = 0;
    EXPECT_NE(ErrorOf(j).find(field), std::string::npos) << field;
  }
  json j = ValidConfig();
  j["eos_token_id"] = 258;
  EXPECT_NE(ErrorOf(j).find("eos_token_id"), std::string::npos);
  j = ValidConfig();
  j["head_dim"] = 15;
  EXPECT_NE(ErrorOf(j).find("head_dim"), std::string::npos);
}

TEST(ModelConfig, UnknownModelTypeAndTokenizer) {
  json j = ValidConfig();
  j["model_type"] = "gpt2";
  EXPECT_NE(ErrorOf(j).find("gpt2"), std::string::npos);
  j = ValidConfig();
  j["tokenizer"] = {{"type", "wordpiece"}};
  EXPECT_NE(ErrorOf(j).find("tokenizer.type"), std::string::npos);
}

TEST(ModelConfig, LlamaConfigGetsDefaultsAndSlidingWindow) {
  json j = {{"model_type", "mistral"},   {"vocab_size", 1000},  {"hidden_size", 64},
            {"intermediate_size", 128},  {"num_hidden_layers", 3},
            {"num_attention_heads", 4},  {"sliding_window", 32}};
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->num_key_value_heads, 4);
  ASSERT_EQ(c->attention_windows.size(), 3u);
  EXPECT_EQ(c->attention_windows[2], (std::vector<int64_t>{32, 32, 32, 32}));
  j["sliding_window"] = nullptr;
  j["model_type"] = "llama";
  c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->attention_windows[0][0], 0);
  EXPECT_EQ(c->tokenizer.type, TokenizerSpec::Type::kSentencePiece);
}

TEST(ModelConfig, LoadNamesTheMissingDirectoryAndTokenizer) {
  auto missing = LoadModelConfig("/nonexistent/model");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("/nonexistent/model"),
            std::string::npos);

  const std::string dir = ::testing::TempDir();
  json j = ValidConfig();
  j.erase("tokenizer");
  std::ofstream(dir + "/config.json") << j.dump();
  auto no_tokenizer = LoadModelConfig(dir);
  ASSERT_FALSE(no_tokenizer.ok());
  EXPECT_NE(std::string(no_tokenizer.status().message()).find("tokenizer.model"),
            std::string::npos);
  std::ofstream(dir + "/config.json") << ValidConfig().dump();
  EXPECT_TRUE(LoadModelConfig(dir).ok());
}

}  // namespace
}  // namespace mswa
