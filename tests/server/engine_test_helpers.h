// Shared by the engine tests against the reference (engine_test.cc, engine_precision_test.cc):
// the test model and options, engine construction, and collecting a request's events.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"
#include "tests/model/test_models.h"

namespace mswa::testing::engine_test {

// Windows 4/8 then 8/16: a position's logits depend on at most the (8 - 1) + (16 - 1) = 22
// tokens before it (each layer adds its widest window minus the query itself).
inline ModelConfig EngineConfig() { return TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}}); }
inline constexpr int64_t kReceptiveField = 22;

// A small cache (8 MiB, blocks of 4 tokens) whose freed blocks are poisoned with NaN.
inline EngineOptions SmallOptions() {
  EngineOptions o;
  o.kv_cache_bytes = 8 << 20;
  o.block_size = 4;
  o.max_tokens_per_step = 24;
  o.max_model_len = 4096;
  o.poison_freed_blocks = true;
  return o;
}

// An engine over random weights from `seed` with the bytes tokenizer; null (and a test failure)
// when it cannot be created.
inline std::unique_ptr<Engine> MakeEngine(const ModelConfig& c, uint64_t seed, EngineOptions o) {
  auto e = Engine::Create(c, RandomModelWeights(c, seed), std::make_unique<ByteTokenizer>(), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(e).value() : nullptr;
}

// Collects a request's events.
struct Collected {
  std::vector<EngineEvent> events;
  bool finished() const { return !events.empty() && events.back().finished; }
  std::vector<int32_t> tokens() const {
    std::vector<int32_t> t;
    for (const auto& e : events) t.insert(t.end(), e.token_ids.begin(), e.token_ids.end());
    return t;
  }
  std::vector<float> logprobs() const {
    std::vector<float> l;
    for (const auto& e : events) {
      for (const auto& s : e.logprobs) l.push_back(s.logprob);
    }
    return l;
  }
  std::string text() const {
    std::string s;
    for (const auto& e : events) s += e.text;
    return s;
  }
};

// Steps the engine until it has nothing left to do (100000 steps at most).
inline void RunUntilIdle(Engine& e) {
  for (int i = 0; i < 100000 && e.Step(); ++i) {
  }
}

// `n` random byte tokens from `seed`.
inline std::vector<int32_t> TextTokens(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int& x : t) x = static_cast<int32_t>(rng() % 256);
  return t;
}

// Greedy generation of exactly `max_tokens` tokens (EOS ignored).
inline GenerateOptions Greedy(int32_t max_tokens) {
  GenerateOptions g;
  g.max_tokens = max_tokens;
  g.ignore_eos = true;
  g.sampling.temperature = 0;
  return g;
}

}  // namespace mswa::testing::engine_test
