// The engine's 16-bit KV caches and compute types: capacity, scores against the fp32 ones, and the
// rules that choose and check the types.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"
#include "tests/server/engine_test_helpers.h"

namespace mswa {
namespace {

using mswa::testing::engine_test::Collected;
using mswa::testing::engine_test::EngineConfig;
using mswa::testing::engine_test::Greedy;
using mswa::testing::engine_test::MakeEngine;
using mswa::testing::engine_test::RunUntilIdle;
using mswa::testing::engine_test::SmallOptions;
using mswa::testing::engine_test::TextTokens;

// 16-bit KV pools: twice the blocks in the same memory, and scores that differ from the fp32
// cache's only by the rounding of keys and values.
TEST(Engine, HalfPrecisionKvCacheHoldsTwiceTheBlocksAndScoresAlike) {
  const ModelConfig c = EngineConfig();
  const std::vector<int32_t> text = TextTokens(600, 9);
  auto score = [&](Engine& e) {
    Collected got;
    ScoreOptions so;
    so.per_token_logprobs = true;
    auto id = e.SubmitScore(so, -1, [&](EngineEvent ev) { got.events.push_back(std::move(ev)); });
    EXPECT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(e.FeedScore(*id, text, static_cast<int64_t>(text.size()), true).ok());
    RunUntilIdle(e);
    EXPECT_TRUE(got.finished());
    std::vector<float> lp;
    for (const auto& ev : got.events) lp.insert(lp.end(), ev.token_logprobs.begin(), ev.token_logprobs.end());
    return lp;
  };
  auto full = MakeEngine(c, 28, SmallOptions());
  EXPECT_EQ(full->kv_dtype(), KvDType::kF32);  // auto on the CPU
  const std::vector<float> want = score(*full);
  for (KvDType t : {KvDType::kF16, KvDType::kBF16}) {
    EngineOptions o = SmallOptions();
    o.kv_cache_dtype = t;
    auto half = MakeEngine(c, 28, o);
    ASSERT_NE(half, nullptr);
    EXPECT_EQ(half->kv_dtype(), t);
    for (size_t g = 0; g < full->stats().groups.size(); ++g) {  // 2x, less the planner's rounding
      const double ratio = static_cast<double>(half->stats().groups[g].total_blocks) / full->stats().groups[g].total_blocks;
      EXPECT_NEAR(ratio, 2.0, 0.01) << "group " << g;
    }
    const std::vector<float> got = score(*half);
    ASSERT_EQ(got.size(), want.size());
    double worst = 0, mean = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double diff = std::abs(got[i] - want[i]);
      worst = std::max(worst, diff);
      mean += diff / static_cast<double>(got.size());
    }
    // Keys and values carry 11 (fp16) or 8 (bf16) significant bits.
    std::printf("%s KV: log-prob difference to fp32 KV: mean %.2e, worst %.2e\n", KvDTypeName(t), mean, worst);
    EXPECT_LT(mean, t == KvDType::kF16 ? 2e-3 : 2e-2) << KvDTypeName(t);
    EXPECT_LT(worst, t == KvDType::kF16 ? 2e-2 : 2e-1) << KvDTypeName(t);
    EXPECT_GT(worst, 0.0) << "the pools are not " << KvDTypeName(t);
    for (int g = 0; g < half->kv().num_groups(); ++g) EXPECT_EQ(half->kv().used_blocks(g), 0);
  }
}

TEST(Engine, KvCacheTypeNamesAndTheCudaRule) {
  EXPECT_FALSE(ParseKvCacheDType("auto")->has_value());
  EXPECT_EQ(**ParseKvCacheDType("float16"), KvDType::kF16);
  EXPECT_EQ(**ParseKvCacheDType("bfloat16"), KvDType::kBF16);
  EXPECT_EQ(**ParseKvCacheDType("float32"), KvDType::kF32);
  EXPECT_EQ(ParseKvCacheDType("fp8").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ResolveKvDType(ModelDevice::kCpu, at::kBFloat16, std::nullopt), KvDType::kF32);
  EXPECT_EQ(*ResolveKvDType(ModelDevice::kCpu, at::kFloat, KvDType::kBF16), KvDType::kBF16);
  EXPECT_EQ(*ResolveKvDType(ModelDevice::kCuda, at::kHalf, std::nullopt), KvDType::kF16);
  const auto mixed = ResolveKvDType(ModelDevice::kCuda, at::kFloat, KvDType::kF16);
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mixed.status().message().find("--kv_cache_dtype=auto"), std::string::npos) << mixed.status();
}

// bfloat16 compute on the CPU equals fp32 compute with every weight rounded to bfloat16: the
// decode-sized products read the bf16 copies, prefill the fp32 ones, and both hold the same
// values. Scoring runs 128-token steps (BLAS) here, generation 1-row steps (SmallLinear).
TEST(Engine, Bf16ComputeEqualsFp32OnBf16RoundedWeights) {
  const ModelConfig c = EngineConfig();
  ModelWeights rounded = RandomModelWeights(c, 29);
  auto round = [](at::Tensor& t) { t = t.to(at::kBFloat16).to(at::kFloat); };
  round(rounded.embed);
  round(rounded.final_norm);
  round(rounded.lm_head);
  for (auto& l : rounded.layers) {
    for (at::Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.post_norm,
                          &l.gate_proj, &l.up_proj, &l.down_proj}) {
      round(*t);
    }
  }
  if (c.tie_word_embeddings) rounded.lm_head = rounded.embed;
  EngineOptions o = SmallOptions();
  o.max_tokens_per_step = 128;
  auto want_engine = Engine::Create(c, std::move(rounded), std::make_unique<ByteTokenizer>(), o);
  ASSERT_TRUE(want_engine.ok()) << want_engine.status();
  o.dtype = at::kBFloat16;
  o.activation_dtype = at::kFloat;  // the default rounds them too where AVX-512 BF16 exists
  auto bf16 = MakeEngine(c, 29, o);
  ASSERT_NE(bf16, nullptr);
  EXPECT_EQ(bf16->dtype(), at::kBFloat16);
  EXPECT_EQ(bf16->activation_dtype(), at::kFloat);
  EXPECT_EQ((*want_engine)->dtype(), at::kFloat);

  std::vector<Collected> got(2), want(2);
  for (auto [engine, out] : {std::make_pair(bf16.get(), &got), std::make_pair(want_engine->get(), &want)}) {
    ScoreOptions so;
    so.per_token_logprobs = true;
    auto id = engine->SubmitScore(so, -1, [out](EngineEvent e) { (*out)[0].events.push_back(std::move(e)); });
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(engine->FeedScore(*id, TextTokens(300, 5), 300, true).ok());
    GenerateOptions g = Greedy(40);
    ASSERT_TRUE(engine->SubmitGenerate(TextTokens(20, 6), g, [out](EngineEvent e) { (*out)[1].events.push_back(std::move(e)); }).ok());
    RunUntilIdle(*engine);
  }
  std::vector<float> got_lp, want_lp;
  for (const auto& e : got[0].events) got_lp.insert(got_lp.end(), e.token_logprobs.begin(), e.token_logprobs.end());
  for (const auto& e : want[0].events) want_lp.insert(want_lp.end(), e.token_logprobs.begin(), e.token_logprobs.end());
  ASSERT_EQ(got_lp.size(), 300u);
  ASSERT_EQ(got_lp.size(), want_lp.size());
  for (size_t i = 0; i < got_lp.size(); ++i) EXPECT_NEAR(got_lp[i], want_lp[i], 1e-4) << i;
  EXPECT_EQ(got[1].tokens(), want[1].tokens());
  EXPECT_EQ(got[1].tokens().size(), 40u);
}

TEST(Engine, ComputeTypeRules) {
  EXPECT_FALSE(ParseComputeDType("auto")->has_value());
  EXPECT_EQ(**ParseComputeDType("bfloat16"), at::kBFloat16);
  EXPECT_EQ(**ParseComputeDType("int8"), at::kChar);
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCpu, at::kBFloat16, at::kChar), at::kChar);
  EXPECT_EQ(**ParseComputeDType("q4"), at::kQUInt4x2);
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCpu, at::kBFloat16, at::kQUInt4x2), at::kQUInt4x2);
  EXPECT_FALSE(ResolveComputeDType(ModelDevice::kCuda, at::kBFloat16, at::kQUInt4x2).ok());
  EXPECT_FALSE(ResolveActivationDType(ModelDevice::kCpu, at::kQUInt4x2, at::kBFloat16).ok());
  EXPECT_EQ(ParseComputeDType("int4").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCpu, at::kFloat, std::nullopt), at::kFloat);
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCpu, at::kBFloat16, std::nullopt), at::kBFloat16);
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCpu, at::kHalf, std::nullopt), at::kFloat);
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCpu, at::kFloat, at::kBFloat16), at::kBFloat16);
  const auto half = ResolveComputeDType(ModelDevice::kCpu, at::kFloat, at::kHalf);
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("--dtype=bfloat16"), std::string::npos) << half.status();
  EXPECT_EQ(*ResolveComputeDType(ModelDevice::kCuda, at::kHalf, std::nullopt), at::kHalf);
  EXPECT_EQ(ResolveComputeDType(ModelDevice::kCuda, at::kHalf, at::kFloat).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mswa
