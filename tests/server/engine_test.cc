// The engine against the dense reference forward: scoring, chunked prefill + decode, batching
// invariance, cancellation, admission, finish reasons and injected failures. Freed KV blocks are
// poisoned with NaN, so reading outside a window shows up as a NaN result. 16-bit KV caches and
// compute types are in engine_precision_test.cc.
#include "server/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/tokenizer/byte_tokenizer.h"
#include "model/runtime/reference_forward.h"
#include "tests/model/test_models.h"
#include "tests/server/engine_test_helpers.h"

namespace mswa {
namespace {

using mswa::testing::TinyConfig;
using mswa::testing::engine_test::Collected;
using mswa::testing::engine_test::EngineConfig;
using mswa::testing::engine_test::Greedy;
using mswa::testing::engine_test::MakeEngine;
using mswa::testing::engine_test::RunUntilIdle;
using mswa::testing::engine_test::SmallOptions;
using mswa::testing::engine_test::TextTokens;
using mswa::testing::engine_test::kReceptiveField;

// log p(tokens[i+1] | tokens[..i]) for every i, from the dense reference in overlapping
// segments (exact: no position depends on more than kReceptiveField earlier tokens).
std::vector<double> ReferenceLogprobs(const ModelWeights& w, const ModelConfig& c,
                                      const std::vector<int32_t>& tokens) {
  std::vector<double> out;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t seg = 512;
  for (int64_t first = 0; first + 1 < T; first += seg) {
    const int64_t begin = std::max<int64_t>(0, first - kReceptiveField);
    const int64_t end = std::min(T, first + seg + 1);
    std::vector<int32_t> part(tokens.begin() + begin, tokens.begin() + end);
    at::Tensor logp = at::log_softmax(ReferenceForward(w, c, part, begin).to(at::kDouble), -1);
    for (int64_t t = first; t < std::min(T - 1, first + seg); ++t) {
      out.push_back(logp[t - begin][tokens[t + 1]].item<double>());
    }
  }
  return out;
}

TEST(Engine, ScoresTwentyThousandTokensLikeTheReference) {
  const ModelConfig c = EngineConfig();
  EngineOptions o = SmallOptions();
  o.max_tokens_per_step = 256;
  auto engine = MakeEngine(c, 21, o);
  const std::vector<int32_t> text = TextTokens(20000, 1);
  Collected got;
  ScoreOptions so;
  so.per_token_logprobs = true;
  auto id = engine->SubmitScore(so, -1, [&](EngineEvent e) { got.events.push_back(std::move(e)); });
  ASSERT_TRUE(id.ok()) << id.status();
  // Fed in uneven pieces, as a client stream would.
  for (size_t i = 0; i < text.size(); i += 3001) {
    std::vector<int32_t> piece(text.begin() + i, text.begin() + std::min(text.size(), i + 3001));
    ASSERT_TRUE(engine->FeedScore(*id, piece, piece.size(), i + 3001 >= text.size()).ok());
    engine->Step();
  }
  RunUntilIdle(*engine);
  ASSERT_TRUE(got.finished());
  const ScoreTotals& totals = got.events.back().score;
  EXPECT_EQ(totals.tokens, 20000);  // BOS predicts the first, each token the next
  EXPECT_EQ(totals.bytes, 20000);

  std::vector<int32_t> with_bos = {static_cast<int32_t>(c.bos_token_id)};
  with_bos.insert(with_bos.end(), text.begin(), text.end());
  const std::vector<double> ref = ReferenceLogprobs(RandomModelWeights(c, 21), c, with_bos);
  double ref_nll = 0;
  for (double lp : ref) ref_nll -= lp;
  EXPECT_NEAR(totals.total_nll, ref_nll, 1e-4 * ref_nll);
  std::vector<float> per_token;
  for (const auto& e : got.events) per_token.insert(per_token.end(), e.token_logprobs.begin(), e.token_logprobs.end());
  ASSERT_EQ(per_token.size(), ref.size());
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(per_token[i] - ref[i]));
  EXPECT_LT(worst, 1e-3);
  // Constant memory: the engine never held more than the windows' bound.
  for (int g = 0; g < engine->kv().num_groups(); ++g) EXPECT_EQ(engine->kv().used_blocks(g), 0);
}

TEST(Engine, InfoReportsTheWindowGroupsAndTheirMemoryBound) {
  // Two window groups (4 and 8) over two layers of four heads with two KV heads each.
  const ModelConfig c = TinyConfig({{4, 4, 8, 8}, {4, 4, 8, 8}});
  const EngineOptions o = SmallOptions();
  auto engine = MakeEngine(c, 40, o);
  ASSERT_NE(engine, nullptr);
  const EngineInfo info = engine->Info();
  EXPECT_EQ(info.model_type, c.model_type);
  EXPECT_EQ(info.num_layers, 2);
  EXPECT_EQ(info.attention_windows, c.attention_windows);
  EXPECT_TRUE(info.native_windows.empty());  // not overridden
  EXPECT_EQ(info.dtype, "float32");
  EXPECT_EQ(info.product_kernel, "float32");
  EXPECT_EQ(info.kv_dtype, "float32");
  EXPECT_EQ(info.device, "cpu");
  EXPECT_EQ(info.max_sequence_length, 0);  // every window finite: no length limit
  ASSERT_EQ(info.window_groups.size(), 2u);
  int64_t bound = 0;
  for (const EngineInfo::WindowGroup& g : info.window_groups) {
    EXPECT_EQ(g.max_blocks_per_sequence,
              MaxBlocksPerSequence(g.window, o.max_tokens_per_step, o.block_size));
    EXPECT_GT(g.total_blocks, 0);
    bound += 2 * g.max_blocks_per_sequence * g.kv_heads * o.block_size * c.head_dim * 4;
  }
  EXPECT_EQ(info.kv_bytes_per_sequence_bound, bound);
  ASSERT_EQ(info.kv_bytes_at_length.size(), 3u);
  for (const EngineInfo::KvAtLength& at : info.kv_bytes_at_length) {
    EXPECT_LE(at.bytes, bound) << at.tokens;  // bounded whatever the length
    EXPECT_GT(at.full_attention_bytes, at.bytes) << at.tokens;
  }
}

TEST(Engine, ChunkedPrefillThenGreedyDecodeFollowsTheReference) {
  const ModelConfig c = EngineConfig();
  for (int64_t budget : {1, 7, 24, 64}) {
    EngineOptions o = SmallOptions();
    o.max_tokens_per_step = budget;
    auto engine = MakeEngine(c, 22, o);
    std::vector<int32_t> prompt = TextTokens(50, 2);
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_tokens = 30;
    g.ignore_eos = true;
    g.logprobs = true;
    Collected got;
    ASSERT_TRUE(engine->SubmitGenerate(prompt, g, [&](EngineEvent e) { got.events.push_back(e); }).ok());
    RunUntilIdle(*engine);
    ASSERT_TRUE(got.finished());
    EXPECT_EQ(got.events.back().finish_reason, FinishReason::kLength);
    const auto tokens = got.tokens();
    ASSERT_EQ(tokens.size(), 30u);
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), tokens.begin(), tokens.end());
    at::Tensor ref = at::log_softmax(ReferenceForward(RandomModelWeights(c, 22), c, all), -1);
    const auto lps = got.logprobs();
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int64_t row = static_cast<int64_t>(prompt.size() + i) - 1;
      EXPECT_EQ(ref[row].argmax().item<int64_t>(), tokens[i]) << "budget " << budget << " step " << i;
      EXPECT_NEAR(lps[i], ref[row][tokens[i]].item<double>(), 1e-4);
    }
  }
}

struct MixedRequest {
  std::vector<int32_t> prompt;
  GenerateOptions options;
  bool cancel_after_first = false;
};

std::vector<MixedRequest> MixedRequests() {
  std::vector<MixedRequest> rs;
  for (int i = 0; i < 16; ++i) {
    MixedRequest r;
    r.prompt = TextTokens(1 + (i * 13) % 70, 100 + i);  // some shorter, some longer than windows
    r.options.max_tokens = 5 + (i * 7) % 25;
    r.options.ignore_eos = true;
    r.options.logprobs = true;
    r.options.top_logprobs = 2;
    r.options.sampling.seed = 1000 + i;
    r.options.sampling.temperature = i % 3 == 0 ? 0.f : 0.8f;
    r.options.sampling.top_p = i % 4 == 1 ? 0.9f : 1.f;
    r.options.sampling.top_k = i % 5 == 2 ? 20 : 0;
    r.cancel_after_first = i % 6 == 5;
    rs.push_back(r);
  }
  return rs;
}

TEST(Engine, ConcurrentMixedRequestsEqualEachRunAlone) {
  const ModelConfig c = EngineConfig();
  const auto requests = MixedRequests();
  auto together = MakeEngine(c, 23, SmallOptions());
  std::vector<Collected> got(requests.size());
  std::vector<int64_t> ids;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto id = together->SubmitGenerate(requests[i].prompt, requests[i].options,
                                       [&, i](EngineEvent e) { got[i].events.push_back(e); });
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  for (int step = 0; step < 100000 && together->Step(); ++step) {
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].cancel_after_first && !got[i].events.empty()) together->Cancel(ids[i]);
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(got[i].finished()) << i;
    if (requests[i].cancel_after_first) {
      EXPECT_EQ(got[i].events.back().finish_reason, FinishReason::kCancelled) << i;
      continue;
    }
    auto alone = MakeEngine(c, 23, SmallOptions());
    Collected solo;
    ASSERT_TRUE(alone->SubmitGenerate(requests[i].prompt, requests[i].options,
                                      [&](EngineEvent e) { solo.events.push_back(e); }).ok());
    RunUntilIdle(*alone);
    EXPECT_EQ(got[i].tokens(), solo.tokens()) << "request " << i;
    const auto a = got[i].logprobs(), b = solo.logprobs();
    ASSERT_EQ(a.size(), b.size());
    for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-4) << i << " " << j;
  }
  for (int g = 0; g < together->kv().num_groups(); ++g) EXPECT_EQ(together->kv().used_blocks(g), 0);
}

TEST(Engine, CancelledRequestsFreeTheirBlocks) {
  auto engine = MakeEngine(EngineConfig(), 24, SmallOptions());
  std::vector<int64_t> ids;
  std::vector<Collected> got(10);
  for (int i = 0; i < 10; ++i) {
    GenerateOptions g;
    g.max_tokens = 1000;
    g.ignore_eos = true;
    ids.push_back(*engine->SubmitGenerate(TextTokens(30, i), g, [&, i](EngineEvent e) { got[i].events.push_back(e); }));
  }
  for (int s = 0; s < 5; ++s) engine->Step();
  int64_t used = 0;
  for (int g = 0; g < engine->kv().num_groups(); ++g) used += engine->kv().used_blocks(g);
  EXPECT_GT(used, 0);
  for (int64_t id : ids) engine->Cancel(id);
  engine->Step();
  for (int g = 0; g < engine->kv().num_groups(); ++g) EXPECT_EQ(engine->kv().used_blocks(g), 0);
  for (const auto& c : got) {
    ASSERT_TRUE(c.finished());
    EXPECT_EQ(c.events.back().finish_reason, FinishReason::kCancelled);
  }
  EXPECT_FALSE(engine->Step());
}

TEST(Engine, AdmissionWaitsForMemoryAndLosesNothing) {
  const ModelConfig c = TinyConfig({{0, 0, 0, 0}, {0, 0, 0, 0}});  // full attention: long bound
  EngineOptions o = SmallOptions();
  o.max_model_len = 256;
  // 64 blocks of 4 tokens (2 layers x 2 KV heads x K,V x 4 x 8 x 4 bytes = 1 KiB each): room for
  // one 256-token sequence, or two of the 100 tokens requested here but not three.
  o.kv_cache_bytes = 64 * 1024;
  auto engine = MakeEngine(c, 25, o);
  std::vector<Collected> got(5);
  for (int i = 0; i < 5; ++i) {
    GenerateOptions g;
    g.max_tokens = 40;
    g.ignore_eos = true;
    ASSERT_TRUE(engine->SubmitGenerate(TextTokens(60, i), g, [&, i](EngineEvent e) { got[i].events.push_back(e); }).ok());
  }
  int64_t max_running = 0;
  for (int s = 0; s < 10000 && engine->Step(); ++s) max_running = std::max(max_running, engine->stats().running);
  EXPECT_LE(max_running, 2);
  for (const auto& r : got) {
    ASSERT_TRUE(r.finished());
    EXPECT_EQ(r.tokens().size(), 40u);
  }
}

TEST(Engine, StopStringsEosAndLength) {
  const ModelConfig c = EngineConfig();
  auto engine = MakeEngine(c, 26, SmallOptions());
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = 40;
  g.ignore_eos = true;
  Collected free_run;
  ASSERT_TRUE(engine->SubmitGenerate(TextTokens(10, 3), g, [&](EngineEvent e) { free_run.events.push_back(e); }).ok());
  RunUntilIdle(*engine);
  const auto toks = free_run.tokens();
  // Stop on the bytes of generated tokens 5..6: the text before them is returned, not the stop.
  const std::string stop = {static_cast<char>(toks[5]), static_cast<char>(toks[6])};
  std::string expected_prefix;
  for (int i = 0; i < 5; ++i) expected_prefix.push_back(static_cast<char>(toks[i]));
  if (expected_prefix.find(stop) == std::string::npos && ((toks[5] | toks[6]) & 0x80) == 0) {
    g.stop = {stop};
    Collected stopped;
    ASSERT_TRUE(engine->SubmitGenerate(TextTokens(10, 3), g, [&](EngineEvent e) { stopped.events.push_back(e); }).ok());
    RunUntilIdle(*engine);
    EXPECT_EQ(stopped.events.back().finish_reason, FinishReason::kStop);
    EXPECT_EQ(stopped.events.back().matched_stop, stop);
    EXPECT_EQ(stopped.text(), expected_prefix);
  }
  // EOS: make the model's own argmax the EOS id.
  ModelConfig eos_config = c;
  eos_config.eos_token_ids = {toks[3]};
  auto eos_engine = MakeEngine(eos_config, 26, SmallOptions());
  g.stop.clear();
  g.ignore_eos = false;
  Collected eos;
  ASSERT_TRUE(eos_engine->SubmitGenerate(TextTokens(10, 3), g, [&](EngineEvent e) { eos.events.push_back(e); }).ok());
  RunUntilIdle(*eos_engine);
  EXPECT_EQ(eos.events.back().finish_reason, FinishReason::kEos);
  EXPECT_LE(eos.tokens().size(), 4u);
  // Every id of an EOS list ends generation (generation_config.json lists several): the second
  // id of the list is the model's token 2 (unless it repeats an earlier token).
  if (toks[2] != toks[0] && toks[2] != toks[1] && toks[3] != toks[0] && toks[3] != toks[1]) {
    ModelConfig list_config = c;
    list_config.eos_token_ids = {toks[3], toks[2]};
    auto list_engine = MakeEngine(list_config, 26, SmallOptions());
    Collected listed;
    ASSERT_TRUE(list_engine->SubmitGenerate(TextTokens(10, 3), g, [&](EngineEvent e) { listed.events.push_back(e); }).ok());
    RunUntilIdle(*list_engine);
    EXPECT_EQ(listed.events.back().finish_reason, FinishReason::kEos);
    EXPECT_EQ(listed.tokens().size(), 3u);
  }
  EXPECT_EQ(free_run.events.back().finish_reason, FinishReason::kLength);
  EXPECT_EQ(free_run.events.back().completion_tokens, 40);
}

TEST(Engine, RejectsBadRequestsWithClearErrors) {
  EngineOptions o = SmallOptions();
  o.max_waiting = 2;
  auto engine = MakeEngine(EngineConfig(), 27, o);
  GenerateOptions g;
  auto sink = [](EngineEvent) {};
  EXPECT_EQ(engine->SubmitGenerate({}, g, sink).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitGenerate({300}, g, sink).status().code(), absl::StatusCode::kInvalidArgument);
  g.max_tokens = 0;
  EXPECT_NE(std::string(engine->SubmitGenerate({1}, g, sink).status().message()).find("max_tokens"), std::string::npos);
  g.max_tokens = 5;
  g.sampling.temperature = -1;
  EXPECT_NE(std::string(engine->SubmitGenerate({1}, g, sink).status().message()).find("temperature"), std::string::npos);
  g.sampling.temperature = 1;
  EXPECT_TRUE(engine->SubmitGenerate({1}, g, sink).ok());
  EXPECT_TRUE(engine->SubmitGenerate({1}, g, sink).ok());
  EXPECT_EQ(engine->SubmitGenerate({1}, g, sink).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(engine->FeedScore(12345, {1}, 1, true).code(), absl::StatusCode::kNotFound);
}

TEST(Engine, FullAttentionModelsRejectTextBeyondTheirLimit) {
  const ModelConfig c = TinyConfig({{0, 0, 4, 4}, {8, 8, 0, 0}});
  EngineOptions o = SmallOptions();
  o.max_model_len = 1000;
  auto engine = MakeEngine(c, 28, o);
  auto sink = [](EngineEvent) {};
  EXPECT_EQ(engine->SubmitScore({}, 5000, sink).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitScore({}, -1, sink).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(engine->SubmitScore({}, 900, sink).ok());
}


// The engine's model with a fault injected: the `fail_at`-th forward throws, as an out-of-memory
// (recoverable) or a GPU fault (`fatal`) would.
class FaultyModel : public PagedModel {
 public:
  FaultyModel(std::unique_ptr<PagedModel> inner, int fail_at, bool fatal)
      : PagedModel(*inner), inner_(std::move(inner)), fail_at_(fail_at), fatal_(fatal) {}
  at::Tensor Forward(const StepInput& input) override {
    if (++calls_ == fail_at_) throw std::runtime_error("injected fault");
    return inner_->Forward(input);
  }
  void PoisonBlock(int g, int32_t block) override { inner_->PoisonBlock(g, block); }
  int64_t kv_bytes() const override { return inner_->kv_bytes(); }
  bool FailureIsFatal() const override { return fatal_; }

 private:
  std::unique_ptr<PagedModel> inner_;
  int fail_at_;
  bool fatal_;
  int calls_ = 0;
};

EngineOptions FaultyOptions(int fail_at, bool fatal) {
  EngineOptions o = SmallOptions();
  o.wrap_model_for_testing = [fail_at, fatal](std::unique_ptr<PagedModel> m) -> std::unique_ptr<PagedModel> {
    return std::make_unique<FaultyModel>(std::move(m), fail_at, fatal);
  };
  return o;
}

TEST(EngineFailure, AFailedStepAbortsItsRequestsAndTheEngineGoesOn) {
  // Forward 1 prefills A; forward 2 (A's first decode, B's prefill) fails.
  auto engine = MakeEngine(EngineConfig(), 26, FaultyOptions(2, false));
  std::vector<std::pair<std::string, bool>> reported;
  engine->SetFailureObserver([&](const absl::Status& s, bool fatal) { reported.push_back({std::string(s.message()), fatal}); });
  Collected a, b, c;
  ASSERT_TRUE(engine->SubmitGenerate(TextTokens(10, 1), Greedy(8), [&](EngineEvent e) { a.events.push_back(e); }).ok());
  engine->Step();
  ASSERT_TRUE(engine->SubmitGenerate(TextTokens(10, 2), Greedy(8), [&](EngineEvent e) { b.events.push_back(e); }).ok());
  engine->Step();
  for (const Collected* r : {&a, &b}) {
    ASSERT_TRUE(r->finished());
    EXPECT_EQ(r->events.back().finish_reason, FinishReason::kAborted);
    EXPECT_EQ(r->events.back().error.code(), absl::StatusCode::kInternal);
    EXPECT_NE(r->events.back().error.message().find("injected fault"), std::string::npos);
  }
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_FALSE(reported[0].second);
  EXPECT_EQ(engine->stats().failed_steps, 1);
  for (int g = 0; g < engine->kv().num_groups(); ++g) EXPECT_EQ(engine->kv().used_blocks(g), 0);

  // The engine goes on: a new request gives what an engine that never failed gives.
  ASSERT_TRUE(engine->SubmitGenerate(TextTokens(10, 3), Greedy(8), [&](EngineEvent e) { c.events.push_back(e); }).ok());
  RunUntilIdle(*engine);
  auto clean = MakeEngine(EngineConfig(), 26, SmallOptions());
  Collected expected;
  ASSERT_TRUE(clean->SubmitGenerate(TextTokens(10, 3), Greedy(8), [&](EngineEvent e) { expected.events.push_back(e); }).ok());
  RunUntilIdle(*clean);
  ASSERT_TRUE(c.finished());
  EXPECT_EQ(c.events.back().finish_reason, FinishReason::kLength);
  EXPECT_EQ(c.tokens(), expected.tokens());
}

TEST(EngineFailure, AFatalFailureAbortsEverythingAndRefusesNewRequests) {
  EngineOptions o = FaultyOptions(3, true);
  o.max_tokens_per_step = 12;  // one 10-token prefill a step: C waits while A and B run
  auto engine = MakeEngine(EngineConfig(), 27, o);
  int fatal_reports = 0;
  engine->SetFailureObserver([&](const absl::Status& s, bool fatal) {
    fatal_reports += fatal;
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  });
  std::vector<Collected> got(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(engine->SubmitGenerate(TextTokens(10, 10 + i), Greedy(50), [&, i](EngineEvent e) { got[i].events.push_back(e); }).ok());
  }
  for (int s = 0; s < 3; ++s) engine->Step();
  EXPECT_EQ(fatal_reports, 1);
  for (const Collected& r : got) {
    ASSERT_TRUE(r.finished());
    EXPECT_EQ(r.events.back().finish_reason, FinishReason::kAborted);
    EXPECT_FALSE(r.events.back().error.ok());
  }
  auto refused = engine->SubmitGenerate(TextTokens(10, 4), Greedy(8), [](EngineEvent) {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("must be restarted"), std::string::npos) << refused.status();
  EXPECT_FALSE(engine->Step());
  for (int g = 0; g < engine->kv().num_groups(); ++g) EXPECT_EQ(engine->kv().used_blocks(g), 0);
}


}  // namespace
}  // namespace mswa
