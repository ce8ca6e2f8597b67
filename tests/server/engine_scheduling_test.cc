// The engine's scheduling as clients see it: cancelled waiters leave the queue wherever they
// sit, a short Generate is not stalled behind long scoring jobs, and scoring alone still fills
// every step. (The policy itself is tested in scheduler_test.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"
#include "tests/model/test_models.h"

namespace mswa {
namespace {

using mswa::testing::TinyConfig;

std::unique_ptr<Engine> Make(const ModelConfig& c, EngineOptions o) {
  auto e = Engine::Create(c, RandomModelWeights(c, 5), std::make_unique<ByteTokenizer>(), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(e).value() : nullptr;
}

TEST(EngineScheduling, CancelledWaitersLeaveTheQueueWhereverTheySit) {
  // Full attention, so a request's reservation grows with its length: one long request fills
  // the cache and the others wait behind it.
  const ModelConfig c = TinyConfig({{0, 0, 0, 0}, {0, 0, 0, 0}});
  EngineOptions o;
  o.block_size = 4;
  o.max_tokens_per_step = 16;
  o.max_model_len = 256;
  o.kv_cache_bytes = 80 << 10;  // about 1.25 sequences of max_model_len
  o.max_waiting = 3;
  auto engine = Make(c, o);
  const int64_t blocks = engine->stats().groups[0].total_blocks;
  GenerateOptions g;
  g.max_tokens = static_cast<int32_t>(blocks * 4 * 6 / 10);  // 60% of the cache
  g.ignore_eos = true;
  auto sink = [](EngineEvent) {};
  ASSERT_TRUE(engine->SubmitGenerate({1, 2}, g, sink).ok());
  engine->Step();  // admits it
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = engine->SubmitGenerate({3, 4}, g, sink);
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  engine->Step();
  EXPECT_EQ(engine->stats().waiting, 3);
  EXPECT_EQ(engine->SubmitGenerate({5}, g, sink).status().code(), absl::StatusCode::kResourceExhausted);
  // Cancel the two behind the head of the queue: they leave at the next step.
  engine->Cancel(ids[1]);
  engine->Cancel(ids[2]);
  engine->Step();
  EXPECT_EQ(engine->stats().waiting, 1);
  EXPECT_TRUE(engine->SubmitGenerate({6}, g, sink).ok());
  EXPECT_TRUE(engine->SubmitGenerate({7}, g, sink).ok());
  EXPECT_EQ(engine->SubmitGenerate({8}, g, sink).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(EngineScheduling, AShortGenerateIsNotStalledBehindLongScoringJobs) {
  const ModelConfig c = TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}});
  EngineOptions o;
  o.block_size = 4;
  o.max_tokens_per_step = 64;  // latency steps of 16 tokens
  o.kv_cache_bytes = 8 << 20;
  auto engine = Make(c, o);
  std::vector<int64_t> step_tokens;
  engine->SetStepObserver([&](double, int64_t tokens) { step_tokens.push_back(tokens); });
  // Four scoring jobs with 3000 tokens each, all fed at once.
  std::vector<int32_t> text(3000);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>((i * 7919) % 256);
  for (int j = 0; j < 4; ++j) {
    auto id = engine->SubmitScore(ScoreOptions{}, static_cast<int64_t>(text.size()), [](EngineEvent) {});
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(engine->FeedScore(*id, text, static_cast<int64_t>(text.size()), true).ok());
  }
  for (int i = 0; i < 3; ++i) engine->Step();
  EXPECT_EQ(step_tokens.back(), 64) << "scoring alone fills the step";

  GenerateOptions g;
  g.max_tokens = 3;
  g.ignore_eos = true;
  std::vector<EngineEvent> events;
  ASSERT_TRUE(engine->SubmitGenerate({10, 11, 12, 13, 14}, g, [&](EngineEvent e) { events.push_back(e); }).ok());
  const size_t before = step_tokens.size();
  for (int i = 0; i < 3; ++i) engine->Step();
  // First token after one step, every later one a step each; those steps stay short.
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().finished);
  EXPECT_EQ(events.back().completion_tokens, 3);
  for (size_t i = before; i < step_tokens.size(); ++i) EXPECT_LE(step_tokens[i], 16) << "step " << i;
  engine->Step();
  EXPECT_EQ(step_tokens.back(), 64) << "scoring takes the whole step again";
}

}  // namespace
}  // namespace mswa
