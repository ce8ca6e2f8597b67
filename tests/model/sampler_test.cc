#include "model/runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mswa {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams Params(float temperature, uint64_t seed = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = seed;
  return p;
}

std::vector<int32_t> SampleMany(const SamplingParams& params, const std::vector<float>& logits,
                                int n, const std::vector<int32_t>& prompt = {}) {
  Sampler sampler(params, prompt);
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) {
    tokens.push_back(sampler.Sample(logits.data(), static_cast<int32_t>(logits.size()), 0).token);
  }
  return tokens;
}

std::map<int32_t, int> Counts(const std::vector<int32_t>& tokens) {
  std::map<int32_t, int> counts;
  for (const int32_t t : tokens) ++counts[t];
  return counts;
}

std::set<int32_t> Distinct(const std::vector<int32_t>& tokens) {
  return std::set<int32_t>(tokens.begin(), tokens.end());
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> LogitsFor(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (const double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<float> RandomLogits(int32_t vocab, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(gen);
  return logits;
}

int32_t Argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

TEST(Sampler, GreedyPicksArgmaxWithTiesToLowestId) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  EXPECT_EQ(SampleMany(Params(0), logits, 1)[0], 1);
  const std::vector<float> tied = {1.0f, 3.0f, -kInf, 3.0f};
  EXPECT_EQ(SampleMany(Params(0), tied, 1)[0], 1);
}

TEST(Sampler, TemperatureZeroIgnoresSeed) {
  const std::vector<float> logits = RandomLogits(100, 1, 1.0f);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    EXPECT_EQ(SampleMany(Params(0, seed), logits, 5), std::vector<int32_t>(5, Argmax(logits)));
  }
}

TEST(Sampler, SameSeedGivesSameSequenceAndDifferentSeedsDiffer) {
  const std::vector<float> logits(16, 0.0f);  // uniform: every draw matters
  const std::vector<int32_t> a = SampleMany(Params(1, 7), logits, 64);
  EXPECT_EQ(SampleMany(Params(1, 7), logits, 64), a);
  EXPECT_NE(SampleMany(Params(1, 8), logits, 64), a);
  EXPECT_GT(Distinct(a).size(), 8u);
}

// Step i depends on (seed, i, logits) only: what the sampler saw before does not matter (with no
// repetition penalty), so batching other requests cannot change a request's tokens.
TEST(Sampler, DrawDependsOnlyOnSeedStepAndLogits) {
  const std::vector<float> flat(16, 0.0f);
  const std::vector<float> other = RandomLogits(16, 3, 2.0f);
  Sampler a(Params(1, 42), {});
  Sampler b(Params(1, 42), {});
  a.Sample(flat.data(), 16, 0);
  b.Sample(other.data(), 16, 5);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a.Sample(flat.data(), 16, 0).token, b.Sample(flat.data(), 16, 0).token);
  }
}

TEST(Sampler, EmpiricalFrequenciesMatchSoftmaxAtTemperatureOne) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const int n = 20000;
  const std::map<int32_t, int> counts = Counts(SampleMany(Params(1, 123), logits, n));
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  const double expected[] = {1 / z, std::exp(1.0) / z, std::exp(2.0) / z};
  for (int32_t t = 0; t < 3; ++t) {
    // Standard error is at most 0.0035 here; 0.015 is over 4 sigma.
    EXPECT_NEAR(counts.count(t) ? counts.at(t) / double(n) : 0.0, expected[t], 0.015) << t;
  }
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = {0.0f, 1.0f};
  const int n = 10000;
  // p(1) = sigmoid(1 / T): 0.5 at T -> inf, 0.731 at T = 1, 0.881 at T = 0.5.
  const double hot = Counts(SampleMany(Params(100, 5), logits, n))[1] / double(n);
  const double cold = Counts(SampleMany(Params(0.5f, 5), logits, n))[1] / double(n);
  EXPECT_NEAR(hot, 1 / (1 + std::exp(-0.01)), 0.02);
  EXPECT_NEAR(cold, 1 / (1 + std::exp(-2.0)), 0.02);
}

// A temperature so small that 1 / T overflows a float still samples the most likely token
// (not the NaN of 0 * inf), also on a vocabulary of Gemma's size, whose mass is summed in vectors.
TEST(Sampler, TinyTemperatureSamplesTheMaximum) {
  std::vector<float> logits(262144);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 2.f);
  for (float& v : logits) v = normal(rng);
  logits[123457] = 30.f;
  for (float t : {1e-30f, 1e-40f}) {
    EXPECT_EQ(Distinct(SampleMany(Params(t, 9), logits, 20)), (std::set<int32_t>{123457})) << t;
  }
}

TEST(Sampler, NegativeInfinityTokensAreNeverSampled) {
  const std::vector<float> logits = {-kInf, 0.0f, -kInf, 0.0f};
  EXPECT_EQ(Distinct(SampleMany(Params(5, 1), logits, 2000)), (std::set<int32_t>{1, 3}));
}

TEST(Sampler, TopKOneEqualsGreedy) {
  for (uint32_t s = 0; s < 5; ++s) {
    std::vector<float> logits = RandomLogits(1000, s, 1.0f);
    logits[700] = logits[Argmax(logits)];  // a tie above the argmax: the lower id must win
    SamplingParams p = Params(1.5f, s);
    p.top_k = 1;
    EXPECT_EQ(SampleMany(p, logits, 20), SampleMany(Params(0), logits, 20));
  }
}

TEST(Sampler, TopKKeepsExactlyTheKMostLikelyWithTiesByLowerId) {
  SamplingParams p = Params(1, 9);
  p.top_k = 2;
  EXPECT_EQ(Distinct(SampleMany(p, {0.0f, 3.0f, 1.0f, 2.9f}, 2000)), (std::set<int32_t>{1, 3}));
  // Ranks 2 and 3 tie; id 1 takes the last place.
  EXPECT_EQ(Distinct(SampleMany(p, {2.0f, 1.0f, 1.0f, 0.0f}, 2000)), (std::set<int32_t>{0, 1}));
  p.top_k = 10;  // larger than the vocabulary: off
  EXPECT_EQ(Distinct(SampleMany(p, {0.0f, 0.0f, 0.0f}, 200)), (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, TopPKeepsTheShortestPrefixReachingP) {
  // Masses before each token: 0, 0.5, 0.8, 0.95.
  const std::vector<float> logits = LogitsFor({0.5, 0.3, 0.15, 0.05});
  SamplingParams p = Params(1, 11);
  p.top_p = 0.75f;
  EXPECT_EQ(Distinct(SampleMany(p, logits, 2000)), (std::set<int32_t>{0, 1}));
  p.top_p = 0.85f;
  EXPECT_EQ(Distinct(SampleMany(p, logits, 2000)), (std::set<int32_t>{0, 1, 2}));
  p.top_p = 0.4f;  // the first token alone already exceeds it
  EXPECT_EQ(Distinct(SampleMany(p, logits, 200)), (std::set<int32_t>{0}));
}

TEST(Sampler, TopPRenormalizesOverTopKSurvivors) {
  // After top-k = 2 the probabilities are {4/7, 3/7}: 4/7 > 0.5 already, so top_p = 0.5 keeps
  // only token 0. Over the whole vocabulary (0.4 < 0.5) it would keep two.
  const std::vector<float> logits = LogitsFor({0.4, 0.3, 0.2, 0.1});
  SamplingParams p = Params(1, 13);
  p.top_p = 0.5f;
  EXPECT_EQ(Distinct(SampleMany(p, logits, 2000)), (std::set<int32_t>{0, 1}));
  p.top_k = 2;
  EXPECT_EQ(Distinct(SampleMany(p, logits, 2000)), (std::set<int32_t>{0}));
}

TEST(Sampler, MinPDropsTokensBelowFractionOfMostLikely) {
  const std::vector<float> logits = LogitsFor({0.5, 0.3, 0.15, 0.05});
  SamplingParams p = Params(1, 17);
  p.min_p = 0.25f;  // cut at 0.125
  EXPECT_EQ(Distinct(SampleMany(p, logits, 2000)), (std::set<int32_t>{0, 1, 2}));
  p.min_p = 0.5f;  // cut at 0.25
  EXPECT_EQ(Distinct(SampleMany(p, logits, 2000)), (std::set<int32_t>{0, 1}));
  p.min_p = 1.0f;  // only the most likely (and its ties)
  EXPECT_EQ(Distinct(SampleMany(p, {1.0f, 2.0f, 2.0f, 0.0f}, 500)), (std::set<int32_t>{1, 2}));
}

TEST(Sampler, KeptTokensAreSampledInRenormalizedProportion) {
  const std::vector<float> logits = LogitsFor({0.5, 0.3, 0.15, 0.05});
  SamplingParams p = Params(1, 19);
  p.top_p = 0.75f;  // keeps {0.5, 0.3} -> {0.625, 0.375}
  const int n = 20000;
  std::map<int32_t, int> counts = Counts(SampleMany(p, logits, n));
  EXPECT_NEAR(counts[0] / double(n), 0.625, 0.015);
  EXPECT_NEAR(counts[1] / double(n), 0.375, 0.015);
}

// The reference: full sort, the same formulas. The sampler's lazy partial sort must choose the
// same token for the same draw.
int32_t ReferenceSample(const std::vector<float>& logits, const SamplingParams& p,
                        const std::set<int32_t>& seen, double u) {
  std::vector<std::pair<float, int32_t>> c;  // (penalized logit, id)
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
    float v = logits[i];
    if (seen.count(i)) v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
    if (v == -kInf) continue;
    c.push_back({v, i});
  }
  const double v_max = std::max_element(c.begin(), c.end())->first;
  const auto weight = [&](float v) { return std::exp((v - v_max) / p.temperature); };
  double total_by_id = 0;
  for (const auto& [v, id] : c) total_by_id += weight(v);
  std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  std::vector<double> w;
  for (const auto& [v, id] : c) w.push_back(weight(v));
  size_t keep = c.size();
  double total = total_by_id;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < c.size()) {
    keep = p.top_k;
    total = 0;
    for (size_t j = 0; j < keep; ++j) total += w[j];
  }
  const size_t limit = keep;
  double before = 0;
  for (size_t j = 0; j < keep; ++j) {
    if (before >= p.top_p * total) {
      keep = j;
      break;
    }
    before += w[j];
  }
  for (size_t j = 0; j < keep; ++j) {
    if (w[j] < p.min_p) {
      keep = j;
      break;
    }
  }
  double kept = total;
  if (keep != limit) {
    kept = 0;
    for (size_t j = 0; j < keep; ++j) kept += w[j];
  }
  double acc = 0;
  for (size_t j = 0; j < keep; ++j) {
    acc += w[j];
    if (acc > u * kept) return c[j].second;
  }
  return c[keep - 1].second;
}

TEST(Sampler, MatchesFullSortReferenceOnLargeVocabulary) {
  const int32_t vocab = 32000;
  struct Case {
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    float rp;
  };
  const Case cases[] = {
      {1.0f, 0, 1.0f, 0.0f, 1.0f},   {0.7f, 50, 1.0f, 0.0f, 1.0f},  {1.0f, 0, 0.9f, 0.0f, 1.0f},
      {1.3f, 0, 1.0f, 0.05f, 1.0f},  {0.8f, 40, 0.95f, 0.02f, 1.2f}, {2.0f, 0, 0.99f, 0.0f, 1.1f},
      {1.0f, 5000, 1.0f, 0.0f, 1.0f},
  };
  std::vector<std::vector<float>> steps;
  for (uint32_t step = 0; step < 10; ++step) {
    steps.push_back(RandomLogits(vocab, 1000 + step, 3.0f));
  }
  for (const Case& k : cases) {
    SamplingParams p = Params(k.temperature, 31);
    p.top_k = k.top_k;
    p.top_p = k.top_p;
    p.min_p = k.min_p;
    p.repetition_penalty = k.rp;
    const std::vector<int32_t> prompt = {5, 77, 31999, 12345};
    std::set<int32_t> seen(prompt.begin(), prompt.end());
    Sampler sampler(p, prompt);
    for (uint64_t step = 0; step < steps.size(); ++step) {
      const std::vector<float>& logits = steps[step];
      const int32_t expected = ReferenceSample(logits, p, seen, UniformDraw(p.seed, step));
      ASSERT_EQ(sampler.Sample(logits.data(), vocab, 0).token, expected)
          << "T=" << k.temperature << " k=" << k.top_k << " p=" << k.top_p << " step=" << step;
      seen.insert(expected);
    }
  }
}

TEST(Sampler, RepetitionPenaltyDividesPositiveLogits) {
  SamplingParams p = Params(0);
  p.repetition_penalty = 2.0f;
  // Seen token 0: 3.0 -> 1.5 (multiplying would give 6.0).
  EXPECT_EQ(SampleMany(p, {3.0f, 1.49f}, 1, {0})[0], 0);
  EXPECT_EQ(SampleMany(p, {3.0f, 1.51f}, 1, {0})[0], 1);
}

TEST(Sampler, RepetitionPenaltyMultipliesNegativeLogits) {
  SamplingParams p = Params(0);
  p.repetition_penalty = 2.0f;
  // Seen token 0: -1.0 -> -2.0 (dividing would give -0.5).
  EXPECT_EQ(SampleMany(p, {-1.0f, -1.99f}, 1, {0})[0], 1);
  EXPECT_EQ(SampleMany(p, {-1.0f, -2.01f}, 1, {0})[0], 0);
}

TEST(Sampler, RepetitionPenaltyAppliesToGeneratedTokens) {
  SamplingParams p = Params(0);
  p.repetition_penalty = 2.0f;
  // 0 first; then 0 is seen (1.0 < 1.5): 1; then both are seen (1.0 > 0.75): 0.
  EXPECT_EQ(SampleMany(p, {2.0f, 1.5f}, 3), (std::vector<int32_t>{0, 1, 0}));
  // Off by default, and prompt ids outside the vocabulary are ignored.
  EXPECT_EQ(SampleMany(Params(0), {2.0f, 1.5f}, 3, {0}), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(SampleMany(p, {2.0f, 1.5f}, 1, {-1, 7})[0], 0);
}

TEST(Sampler, LogprobIsRawLogSoftmaxWhateverTheSettings) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.5f, -kInf};
  SamplingParams p = Params(0.3f, 3);
  p.top_k = 2;
  p.repetition_penalty = 1.7f;
  Sampler sampler(p, {2});
  for (int i = 0; i < 20; ++i) {
    const SampleResult r = sampler.Sample(logits.data(), 5, 0);
    EXPECT_FLOAT_EQ(r.logprob, LogSoftmaxAt(logits.data(), 5, r.token));
  }
  const SampleResult greedy = Sampler(Params(0), {}).Sample(logits.data(), 5, 0);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(0.5);
  EXPECT_NEAR(greedy.logprob, 3.0 - std::log(z), 1e-6);
}

TEST(Sampler, TopListIsRawMostLikelyFirstWithTiesByLowerId) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f, -kInf};
  SamplingParams p = Params(0.5f, 1);
  p.repetition_penalty = 3.0f;  // must not affect the list
  Sampler sampler(p, {1, 2});
  const SampleResult r = sampler.Sample(logits.data(), 6, 4);
  ASSERT_EQ(r.top.size(), 4u);
  const int32_t ids[] = {1, 2, 4, 3};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.top[i].token, ids[i]);
    EXPECT_FLOAT_EQ(r.top[i].logprob, LogSoftmaxAt(logits.data(), 6, ids[i]));
  }
  // Clamped to the vocabulary; the impossible token comes last with -inf.
  const SampleResult all = sampler.Sample(logits.data(), 6, 100);
  ASSERT_EQ(all.top.size(), 6u);
  EXPECT_EQ(all.top[5].token, 5);
  EXPECT_EQ(all.top[5].logprob, -kInf);
  EXPECT_TRUE(sampler.Sample(logits.data(), 6, 0).top.empty());
}

TEST(Sampler, UndefinedDistributionsFallBackToTokenZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::vector<float>> bad = {
      {-kInf, -kInf, -kInf}, {1.0f, nan, 2.0f}, {1.0f, kInf, 2.0f}};
  for (const std::vector<float>& logits : bad) {
    for (const float t : {0.0f, 1.0f}) {
      Sampler sampler(Params(t, 1), {});
      const SampleResult r = sampler.Sample(logits.data(), 3, 2);
      EXPECT_EQ(r.token, 0);
      EXPECT_EQ(r.logprob, -kInf);
      EXPECT_TRUE(r.top.empty());
    }
  }
  EXPECT_EQ(Sampler(Params(1), {}).Sample(nullptr, 0, 3).token, 0);
}

TEST(Sampler, ValidateRejectsEachBadFieldByName) {
  EXPECT_TRUE(SamplingParams().Validate().ok());
  SamplingParams edge;
  edge.temperature = 0;
  edge.top_p = 1;
  edge.min_p = 1;
  edge.top_k = 0;
  EXPECT_TRUE(edge.Validate().ok());

  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::pair<std::string, std::function<void(SamplingParams&)>>> bad = {
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1f; }},
      {"temperature", [&](SamplingParams& p) { p.temperature = nan; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kInf; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -1; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"top_p", [&](SamplingParams& p) { p.top_p = nan; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.01f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = -1; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = kInf; }},
  };
  for (const auto& [field, mutate] : bad) {
    SamplingParams p;
    mutate(p);
    const absl::Status s = p.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(std::string(s.message()).find(field), std::string::npos) << s.message();
  }
}

TEST(Sampler, InvalidParamsDoNotCrashSampling) {
  const std::vector<float> logits = RandomLogits(50, 2, 1.0f);
  SamplingParams p;
  p.temperature = std::numeric_limits<float>::quiet_NaN();  // treated as greedy
  p.top_p = -1;
  p.min_p = 2;
  p.top_k = -5;
  p.repetition_penalty = 0;
  EXPECT_EQ(SampleMany(p, logits, 3, {1, 2}), std::vector<int32_t>(3, Argmax(logits)));
  p.temperature = 1;
  EXPECT_EQ(SampleMany(p, logits, 3), std::vector<int32_t>(3, Argmax(logits)));
}

TEST(Sampler, LogSoftmaxAtIsStableForHugeLogits) {
  const std::vector<float> logits = {1e4f, 1e4f - 1, -1e4f};
  const double log_norm = std::log(1 + std::exp(-1.0));
  EXPECT_NEAR(LogSoftmaxAt(logits.data(), 3, 0), -log_norm, 1e-6);
  EXPECT_NEAR(LogSoftmaxAt(logits.data(), 3, 1), -1 - log_norm, 1e-6);
  EXPECT_NEAR(LogSoftmaxAt(logits.data(), 3, 2), -2e4 - log_norm, 1e-2);
  const std::vector<float> with_impossible = {0.0f, -kInf};
  EXPECT_EQ(LogSoftmaxAt(with_impossible.data(), 2, 1), -kInf);
  EXPECT_TRUE(std::isnan(LogSoftmaxAt(logits.data(), 3, 3)));
  const std::vector<float> all_impossible = {-kInf, -kInf};
  EXPECT_TRUE(std::isnan(LogSoftmaxAt(all_impossible.data(), 2, 0)));
}

TEST(Sampler, UniformDrawIsInUnitIntervalAndSeedSensitive) {
  double sum = 0;
  for (uint64_t step = 0; step < 10000; ++step) {
    const double u = UniformDraw(99, step);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
  EXPECT_NE(UniformDraw(0, 0), UniformDraw(1, 0));
  EXPECT_EQ(UniformDraw(5, 3), UniformDraw(5, 3));
}

// A step's draws run together (in parallel when there are several): each request gets what its
// sampler alone would give, whatever the other requests of the step, over several steps.
TEST(Sampler, SampleAllGivesEachSamplerItsOwnDraws) {
  constexpr int32_t kVocab = 5000;
  constexpr int kRequests = 9, kSteps = 6;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 2.f);
  std::vector<SamplingParams> params;
  for (int i = 0; i < kRequests; ++i) {
    SamplingParams p = Params(i % 3 == 0 ? 0.f : 0.7f + 0.1f * i, 100 + i);
    if (i % 4 == 1) p.top_k = 40;
    if (i % 4 == 2) p.top_p = 0.9f;
    if (i % 5 == 3) p.repetition_penalty = 1.3f;
    params.push_back(p);
  }
  const std::vector<int32_t> prompt = {1, 2, 3, 4000};
  std::vector<std::unique_ptr<Sampler>> together, alone;
  for (const SamplingParams& p : params) {
    together.push_back(std::make_unique<Sampler>(p, prompt));
    alone.push_back(std::make_unique<Sampler>(p, prompt));
  }
  for (int step = 0; step < kSteps; ++step) {
    std::vector<float> logits(static_cast<size_t>(kRequests) * kVocab);
    for (float& v : logits) v = normal(rng);
    std::vector<SampleJob> jobs;
    for (int i = 0; i < kRequests; ++i) jobs.push_back({together[i].get(), logits.data() + i * kVocab, i % 3});
    const std::vector<SampleResult> results = SampleAll(jobs, kVocab);
    ASSERT_EQ(results.size(), jobs.size());
    for (int i = 0; i < kRequests; ++i) {
      const SampleResult want = alone[i]->Sample(logits.data() + i * kVocab, kVocab, i % 3);
      EXPECT_EQ(results[i].token, want.token) << "request " << i << " step " << step;
      EXPECT_EQ(results[i].logprob, want.logprob) << "request " << i << " step " << step;
      ASSERT_EQ(results[i].top.size(), want.top.size());
      for (size_t j = 0; j < want.top.size(); ++j) EXPECT_EQ(results[i].top[j].token, want.top[j].token);
    }
  }
  EXPECT_TRUE(SampleAll({}, kVocab).empty());
}

TEST(Sampler, LogSoftmaxAtRowsMatchesEachRowAlone) {
  constexpr int32_t kVocab = 3000;
  constexpr int kRows = 37;
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<float> logits(static_cast<size_t>(kRows) * kVocab);
  for (float& v : logits) v = normal(rng);
  logits[5 * kVocab + 7] = std::numeric_limits<float>::quiet_NaN();  // row 5: undefined
  // Rows in any order, some twice, targets anywhere (one out of range: NaN).
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  for (int i = 0; i < 50; ++i) {
    rows.push_back((i * 7) % kRows);
    targets.push_back(i == 9 ? kVocab : (i * 131) % kVocab);
  }
  std::vector<float> out(rows.size());
  LogSoftmaxAtRows(logits.data(), kVocab, rows.data(), targets.data(), static_cast<int64_t>(rows.size()), out.data());
  for (size_t i = 0; i < rows.size(); ++i) {
    const float want = LogSoftmaxAt(logits.data() + rows[i] * kVocab, kVocab, targets[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(out[i])) << i;
    } else {
      EXPECT_EQ(out[i], want) << i;
    }
  }
  EXPECT_TRUE(std::isnan(out[9]));
  EXPECT_TRUE(std::isnan(out[std::find(rows.begin(), rows.end(), 5) - rows.begin()]));
}

}  // namespace
}  // namespace mswa
