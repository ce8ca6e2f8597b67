// Prefix caching through the engine: a request that resumes after a cached prefix returns the
// same tokens and log-probabilities (within 1e-5) as the same request on a cold engine, for
// prefixes that end inside a block, on a block edge and beyond every window, greedy and seeded;
// scoring leaves its blocks for a Generate over the same text, and a score of a text that
// repeats a scored prefix resumes after it with the same scores; the per-request opt-out; and,
// under memory pressure with many requests sharing prefixes, every request is admitted, none
// fails and the KV manager's invariants hold after every step. Freed and evicted blocks are
// poisoned with NaN, so reading a block the cache gave back shows up as NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"
#include "tests/model/test_models.h"

namespace mswa {
namespace {

using mswa::testing::TinyConfig;

constexpr int64_t kBlock = 4;

EngineOptions Options(bool caching) {
  EngineOptions o;
  o.kv_cache_bytes = 8 << 20;
  o.block_size = kBlock;
  o.max_tokens_per_step = 24;
  o.max_model_len = 1024;
  o.poison_freed_blocks = true;
  o.enable_prefix_caching = caching;
  return o;
}

std::unique_ptr<Engine> Make(const ModelConfig& c, const EngineOptions& o) {
  auto e = Engine::Create(c, RandomModelWeights(c, 11), std::make_unique<ByteTokenizer>(), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(e).value() : nullptr;
}

struct Output {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  bool ok = false;
};

// Runs one Generate to completion on an idle engine (the engine thread is not started).
Output Generate(Engine& e, const std::vector<int32_t>& prompt, const GenerateOptions& g) {
  Output out;
  auto id = e.SubmitGenerate(prompt, g, [&out](EngineEvent ev) {
    out.tokens.insert(out.tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
    for (const SampleResult& s : ev.logprobs) {
      out.logprobs.push_back(s.logprob);
      for (const TokenLogprob& t : s.top) out.logprobs.push_back(t.logprob);
    }
    if (ev.finished) out.ok = ev.error.ok() && ev.finish_reason == FinishReason::kLength;
  });
  EXPECT_TRUE(id.ok()) << id.status();
  for (int i = 0; i < 100000 && e.Step(); ++i) {
    EXPECT_TRUE(e.kv().CheckInvariants().ok()) << e.kv().CheckInvariants();
  }
  return out;
}

std::vector<int32_t> Tokens(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % 256);
  return t;
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

GenerateOptions Greedy(int max_tokens) {
  GenerateOptions g;
  g.max_tokens = max_tokens;
  g.ignore_eos = true;
  g.sampling.temperature = 0;
  g.logprobs = true;
  g.top_logprobs = 3;
  return g;
}

void ExpectSame(const Output& cold, const Output& hit) {
  ASSERT_TRUE(cold.ok);
  ASSERT_TRUE(hit.ok);
  EXPECT_EQ(cold.tokens, hit.tokens);
  ASSERT_EQ(cold.logprobs.size(), hit.logprobs.size());
  for (size_t i = 0; i < cold.logprobs.size(); ++i) {
    ASSERT_TRUE(std::isfinite(hit.logprobs[i])) << i;
    EXPECT_NEAR(cold.logprobs[i], hit.logprobs[i], 1e-5) << i;
  }
}

// Windows per layer: 4/8 then 8/16 (every group finite; a query sees at most 16 positions), and
// the same with one unbounded group, which needs every block of the prefix.
const std::vector<ModelConfig>& Configs() {
  static const std::vector<ModelConfig> configs = {TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}}),
                                                   TinyConfig({{4, 4, 0, 0}, {8, 8, 16, 16}})};
  return configs;
}

TEST(EnginePrefixCache, HitsAreExactInsideABlockOnAnEdgeAndBeyondEveryWindow) {
  for (const ModelConfig& c : Configs()) {
    // Shared prefix lengths: inside a block, on a block edge, and far beyond every window.
    for (int shared : {10, 12, 61}) {
      SCOPED_TRACE(::testing::Message() << "shared " << shared << ", windows "
                                      << c.attention_windows[0][2]);
      const std::vector<int32_t> prefix = Tokens(shared, 1);
      // Questions that differ from their first token on (distinct fixed first bytes), so the
      // common prefix is exactly `shared` tokens.
      std::vector<int32_t> q1 = Tokens(7, 2), q2 = Tokens(9, 3);
      q1[0] = 300 % 256;
      q2[0] = 301 % 256;
      auto warm = Make(c, Options(true));
      auto cold = Make(c, Options(false));
      ASSERT_TRUE(Generate(*warm, Concat(prefix, q1), Greedy(6)).ok);
      EXPECT_EQ(warm->stats().prefix_hit_tokens, 0);
      const int64_t hits_before = warm->stats().prefix_hit_tokens;
      const Output hit = Generate(*warm, Concat(prefix, q2), Greedy(12));
      // Every full block of the shared prefix is served from the cache.
      EXPECT_EQ(warm->stats().prefix_hit_tokens - hits_before, shared / kBlock * kBlock);
      ExpectSame(Generate(*cold, Concat(prefix, q2), Greedy(12)), hit);
      EXPECT_EQ(cold->stats().prefix_hit_tokens, 0);
      EXPECT_EQ(cold->stats().prefix_queried_tokens, 0);
    }
  }
}

TEST(EnginePrefixCache, TheSamePromptAgainIsServedUpToItsLastToken) {
  for (const ModelConfig& c : Configs()) {
    const std::vector<int32_t> prompt = Tokens(40, 5);
    auto warm = Make(c, Options(true));
    auto cold = Make(c, Options(false));
    const Output first = Generate(*warm, prompt, Greedy(8));
    const Output again = Generate(*warm, prompt, Greedy(8));
    // 40 tokens: blocks 0..9 are full, but one token is always computed for its logits, so the
    // hit stops at 36.
    EXPECT_EQ(warm->stats().prefix_hit_tokens, 36);
    EXPECT_EQ(warm->stats().prefix_queried_tokens, 80);
    ExpectSame(first, again);
    ExpectSame(Generate(*cold, prompt, Greedy(8)), again);
  }
}

TEST(EnginePrefixCache, SeededSamplingIsUnchangedByAHit) {
  const ModelConfig& c = Configs()[1];
  GenerateOptions g = Greedy(16);
  g.sampling.temperature = 0.9f;
  g.sampling.top_p = 0.95f;
  g.sampling.repetition_penalty = 1.1f;
  g.sampling.seed = 1234;
  const std::vector<int32_t> prefix = Tokens(33, 7);
  auto warm = Make(c, Options(true));
  auto cold = Make(c, Options(false));
  ASSERT_TRUE(Generate(*warm, Concat(prefix, {1, 2, 3}), g).ok);
  const Output hit = Generate(*warm, Concat(prefix, {9, 8}), g);
  EXPECT_EQ(warm->stats().prefix_hit_tokens, 32);
  ExpectSame(Generate(*cold, Concat(prefix, {9, 8}), g), hit);
}

TEST(EnginePrefixCache, AContinuationOfAGeneratedAnswerHitsTheAnswerToo) {
  // A chat's next turn: the previous prompt, the model's answer, then a new question.
  const ModelConfig& c = Configs()[1];
  const std::vector<int32_t> prompt = Tokens(21, 9);
  auto warm = Make(c, Options(true));
  auto cold = Make(c, Options(false));
  const Output answer = Generate(*warm, prompt, Greedy(20));
  ASSERT_TRUE(answer.ok);
  const std::vector<int32_t> next = Concat(Concat(prompt, answer.tokens), {65, 66, 67});
  const int64_t before = warm->stats().prefix_hit_tokens;
  const Output hit = Generate(*warm, next, Greedy(5));
  // The answer's last token was sampled but never fed, so positions 0..39 have K/V: 10 full
  // blocks.
  EXPECT_EQ(warm->stats().prefix_hit_tokens - before, 40);
  ExpectSame(Generate(*cold, next, Greedy(5)), hit);
}

TEST(EnginePrefixCache, ScoringLeavesItsBlocksForAGenerateOverTheSameText) {
  const ModelConfig& c = Configs()[1];
  const std::vector<int32_t> text = Tokens(50, 13);
  auto warm = Make(c, Options(true));
  auto cold = Make(c, Options(false));
  ScoreOptions so;
  so.add_bos = true;
  bool scored = false;
  auto id = warm->SubmitScore(so, static_cast<int64_t>(text.size()), [&scored](EngineEvent ev) {
    if (ev.finished) scored = ev.error.ok();
  });
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(warm->FeedScore(*id, text, static_cast<int64_t>(text.size()), true).ok());
  for (int i = 0; i < 1000 && warm->Step(); ++i) {
  }
  ASSERT_TRUE(scored);
  // Scored positions are BOS + text[0..48] (the last token is only a target): 12 full blocks.
  // The prompt shares their first 45 tokens: 11 full blocks.
  std::vector<int32_t> prompt = Concat({static_cast<int32_t>(c.bos_token_id)}, text);
  prompt.resize(45);
  const Output hit = Generate(*warm, Concat(prompt, {70, 71}), Greedy(6));
  EXPECT_EQ(warm->stats().prefix_hit_tokens, 44);
  ExpectSame(Generate(*cold, Concat(prompt, {70, 71}), Greedy(6)), hit);
}

TEST(EnginePrefixCache, ARequestThatOptsOutNeitherReadsNorFillsTheCache) {
  const ModelConfig& c = Configs()[0];
  const std::vector<int32_t> prompt = Tokens(30, 17);
  auto e = Make(c, Options(true));
  GenerateOptions off = Greedy(4);
  off.use_prefix_cache = false;
  const Output a = Generate(*e, prompt, off);
  const Output b = Generate(*e, prompt, off);
  EXPECT_EQ(e->stats().prefix_queried_tokens, 0);
  EXPECT_EQ(e->stats().prefix_hit_tokens, 0);
  for (const EngineStats::Group& g : e->stats().groups) EXPECT_EQ(g.cached_blocks, 0);
  ExpectSame(a, b);
  // A request that uses the cache finds nothing the opted-out ones computed.
  Generate(*e, prompt, Greedy(4));
  EXPECT_EQ(e->stats().prefix_hit_tokens, 0);
  EXPECT_EQ(e->stats().prefix_queried_tokens, 30);
}

TEST(EnginePrefixCache, CachedBlocksCountAsFreeAndAreEvictedForNewWork) {
  // A pool that holds only a few sequences: cached blocks of finished requests are kept until a
  // new request needs the memory, and never hold up admission.
  const ModelConfig& c = Configs()[1];
  EngineOptions o = Options(true);
  o.max_model_len = 128;
  // Each window group is one KV head: 2 * 4 * 8 * 4 = 256 bytes per block. One sequence's bound
  // is 32 blocks (unbounded, 128 tokens) + 8 + 9 + 11 (windows 4, 8, 16 with chunks of 24):
  // 60 blocks, 15 KiB. Three sequences' worth.
  o.kv_cache_bytes = 3 * 60 * 256;
  auto e = Make(c, o);
  for (int i = 0; i < 12; ++i) {
    const Output out = Generate(*e, Tokens(90, 100 + i), Greedy(8));
    EXPECT_TRUE(out.ok) << i;
  }
  int64_t cached = 0, evicted = 0;
  for (const EngineStats::Group& g : e->stats().groups) {
    cached += g.cached_blocks;
    evicted += g.evicted_blocks;
    EXPECT_EQ(g.used_blocks, 0);
  }
  EXPECT_GT(cached, 0);
  EXPECT_GT(evicted, 0);
}

TEST(EnginePrefixCache, ManyRequestsSharingPrefixesUnderMemoryPressureAllSucceedExactly) {
  // Random prompts built from a few shared prefixes, submitted in waves into a small pool with
  // continuous batching: every request is admitted in turn and finishes, never aborted, and its
  // output equals the same request alone on a cold engine. Invariants after every step.
  const ModelConfig& c = Configs()[1];
  EngineOptions o = Options(true);
  o.max_model_len = 160;
  o.kv_cache_bytes = 40 << 10;
  auto e = Make(c, o);
  auto cold = Make(c, Options(false));
  std::mt19937 rng(42);
  const std::vector<std::vector<int32_t>> prefixes = {Tokens(23, 50), Tokens(40, 51), Tokens(8, 52)};
  struct Job {
    std::vector<int32_t> prompt;
    GenerateOptions g;
    Output out;
    bool done = false;
  };
  std::vector<Job> jobs(40);
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& j = jobs[i];
    const auto& p = prefixes[rng() % prefixes.size()];
    j.prompt.assign(p.begin(), p.begin() + 1 + rng() % p.size());
    const std::vector<int32_t> tail = Tokens(1 + static_cast<int>(rng() % 12), 1000 + static_cast<uint32_t>(i));
    j.prompt = Concat(j.prompt, tail);
    j.g = Greedy(1 + static_cast<int>(rng() % 10));
  }
  size_t next = 0;
  int steps = 0;
  while (steps < 100000) {
    for (int k = 0; k < 3 && next < jobs.size(); ++k, ++next) {
      Job& j = jobs[next];
      auto id = e->SubmitGenerate(j.prompt, j.g, [&j](EngineEvent ev) {
        j.out.tokens.insert(j.out.tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
        for (const SampleResult& s : ev.logprobs) {
          j.out.logprobs.push_back(s.logprob);
          for (const TokenLogprob& t : s.top) j.out.logprobs.push_back(t.logprob);
        }
        if (ev.finished) {
          j.done = true;
          j.out.ok = ev.error.ok() && ev.finish_reason == FinishReason::kLength;
        }
      });
      ASSERT_TRUE(id.ok()) << id.status();
    }
    const bool busy = e->Step();
    ++steps;
    ASSERT_TRUE(e->kv().CheckInvariants().ok()) << e->kv().CheckInvariants();
    if (!busy && next == jobs.size()) break;
  }
  EXPECT_GT(e->stats().prefix_hit_tokens, 0);
  for (Job& j : jobs) {
    ASSERT_TRUE(j.done);
    ExpectSame(Generate(*cold, j.prompt, j.g), j.out);
  }
}

struct Scored {
  ScoreTotals totals;
  std::vector<float> logprobs;
  bool ok = false;
};

// Scores `text` (BOS first) fed in pieces of `chunk` tokens, the first one stepped alone, to
// completion.
Scored Score(Engine& e, const std::vector<int32_t>& text, size_t chunk) {
  Scored out;
  ScoreOptions so;
  so.add_bos = true;
  so.per_token_logprobs = true;
  auto id = e.SubmitScore(so, static_cast<int64_t>(text.size()), [&out](EngineEvent ev) {
    out.logprobs.insert(out.logprobs.end(), ev.token_logprobs.begin(), ev.token_logprobs.end());
    out.totals = ev.score;
    if (ev.finished) out.ok = ev.error.ok();
  });
  EXPECT_TRUE(id.ok()) << id.status();
  for (size_t begin = 0; begin < text.size(); begin += chunk) {
    const size_t end = std::min(text.size(), begin + chunk);
    const std::vector<int32_t> piece(text.begin() + begin, text.begin() + end);
    EXPECT_TRUE(e.FeedScore(*id, piece, static_cast<int64_t>(piece.size()), end == text.size()).ok());
    if (begin == 0) e.Step();  // the first piece arrives alone, as a stream's first chunk may
  }
  for (int i = 0; i < 100000 && e.Step(); ++i) {
    EXPECT_TRUE(e.kv().CheckInvariants().ok()) << e.kv().CheckInvariants();
  }
  return out;
}

void ExpectSameScore(const Scored& cold, const Scored& hit) {
  ASSERT_TRUE(cold.ok);
  ASSERT_TRUE(hit.ok);
  EXPECT_EQ(cold.totals.tokens, hit.totals.tokens);
  EXPECT_EQ(cold.totals.bytes, hit.totals.bytes);
  EXPECT_EQ(cold.totals.bytes_scored, hit.totals.bytes_scored);
  EXPECT_NEAR(cold.totals.total_nll, hit.totals.total_nll, 1e-4);
  ASSERT_EQ(cold.logprobs.size(), hit.logprobs.size());
  for (size_t i = 0; i < cold.logprobs.size(); ++i) {
    ASSERT_TRUE(std::isfinite(hit.logprobs[i])) << i;
    EXPECT_NEAR(cold.logprobs[i], hit.logprobs[i], 1e-5) << i;
  }
}

TEST(EnginePrefixCache, ScoringATextThatRepeatsAScoredPrefixReusesItsKvAndScores) {
  for (const ModelConfig& c : Configs()) {
    SCOPED_TRACE(::testing::Message() << "windows " << c.attention_windows[0][2]);
    const std::vector<int32_t> text = Tokens(120, 21);
    std::vector<int32_t> other = text;
    for (size_t i = 70; i < other.size(); ++i) other[i] = (other[i] + 1) % 256;
    auto warm = Make(c, Options(true));
    auto cold = Make(c, Options(false));
    const Scored first = Score(*warm, text, 1000);
    EXPECT_EQ(warm->stats().prefix_hit_tokens, 0);
    // BOS + 120 tokens: every block of positions 0 .. 119 has K/V and scores. A repeat scores
    // tokens 1 .. 116 from the cache: the last block with scores (29) must also hold the token
    // after the hit, which must have its own target.
    const Scored again = Score(*warm, text, 1000);
    EXPECT_EQ(warm->stats().prefix_hit_tokens, 116);
    ExpectSameScore(first, again);
    // Sharing BOS + 70 tokens: 17 full blocks, the last of them opens after the hit (64).
    const Scored partial = Score(*warm, other, 1000);
    EXPECT_EQ(warm->stats().prefix_hit_tokens, 116 + 64);
    ExpectSameScore(Score(*cold, other, 1000), partial);
    // Fed in small pieces, the lookup sees only the first piece (here 3 blocks' worth).
    const Scored pieces = Score(*warm, text, 11);
    EXPECT_EQ(warm->stats().prefix_hit_tokens, 116 + 64 + 8);
    ExpectSameScore(first, pieces);
  }
}

TEST(EnginePrefixCache, AGenerateLeavesNoScoresSoAScoreOfItsPromptComputesAll) {
  const ModelConfig& c = Configs()[0];
  const std::vector<int32_t> text = Tokens(60, 23);
  auto e = Make(c, Options(true));
  std::vector<int32_t> prompt = Concat({static_cast<int32_t>(c.bos_token_id)}, text);
  ASSERT_TRUE(Generate(*e, prompt, Greedy(2)).ok);
  const int64_t hits = e->stats().prefix_hit_tokens;
  auto cold = Make(c, Options(false));
  ExpectSameScore(Score(*cold, text, 1000), Score(*e, text, 1000));
  EXPECT_EQ(e->stats().prefix_hit_tokens, hits);
}

TEST(EnginePrefixCache, InfoStatesIt) {
  EXPECT_TRUE(Make(Configs()[0], Options(true))->Info().prefix_caching);
  EXPECT_FALSE(Make(Configs()[0], Options(false))->Info().prefix_caching);
}

}  // namespace
}  // namespace mswa
