#include "server/engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <vector>

namespace mswa {
namespace {

SchedEntry Decode(bool interactive = true) { return {interactive, true, 1}; }
SchedEntry Prompt(int64_t n) { return {true, false, n}; }
SchedEntry Scoring(int64_t n) { return {false, false, n}; }

// Tokens per entry index (0 for entries without a grant).
std::vector<int64_t> TokensOf(const std::vector<SchedGrant>& grants, size_t n) {
  std::vector<int64_t> t(n, 0);
  for (const SchedGrant& g : grants) t[g.index] += g.tokens;
  return t;
}

TEST(ShareEvenly, WaterFillsAndRotatesTheRemainder) {
  struct Case {
    std::vector<int64_t> demands;
    int64_t budget;
    size_t start;
    std::vector<int64_t> expected;
  };
  const std::vector<Case> cases = {
      {{1000}, 512, 0, {512}},
      {{1000, 1000}, 512, 0, {256, 256}},
      {{10, 1000, 1000}, 512, 0, {10, 251, 251}},
      {{1000, 1000, 1000}, 512, 0, {171, 171, 170}},
      {{1000, 1000, 1000}, 512, 1, {170, 171, 171}},
      {{1000, 1000, 1000}, 512, 2, {171, 170, 171}},
      {{5, 6, 7}, 512, 0, {5, 6, 7}},
      {{1000, 1000}, 0, 0, {0, 0}},
      {{3, 3, 3, 3}, 2, 1, {0, 1, 1, 0}},
      {{}, 512, 0, {}},
  };
  for (const Case& c : cases) {
    const std::vector<int64_t> got = ShareEvenly(c.demands, c.budget, c.start);
    EXPECT_EQ(got, c.expected) << "budget " << c.budget << " start " << c.start;
    int64_t total = std::accumulate(got.begin(), got.end(), int64_t{0});
    EXPECT_LE(total, c.budget);
  }
}

TEST(Scheduler, PlansEachStepByThePolicy) {
  struct Case {
    const char* what;
    std::vector<SchedEntry> running;
    std::vector<int64_t> expected;
  };
  const std::vector<Case> cases = {
      {"a long scoring job alone takes the whole budget", {Scoring(100000)}, {512}},
      {"scoring jobs share the budget evenly", {Scoring(100000), Scoring(100000)}, {256, 256}},
      {"decodes first, one token each", {Decode(), Decode(), Prompt(1000)}, {1, 1, 510}},
      {"a short prompt goes before scoring, which is cut to the prompt step's floor",
       {Scoring(100000), Prompt(5)}, {16, 5}},
      {"the floor is shared by the scoring jobs", {Scoring(100000), Prompt(5), Scoring(100000)},
       {8, 5, 8}},
      {"a decoding Generate keeps the step short", {Scoring(100000), Decode()}, {127, 1}},
      {"a long interactive prompt still takes what it needs", {Scoring(100000), Prompt(2000)}, {0, 512}},
      {"prompts share evenly among themselves", {Prompt(1000), Prompt(1000), Prompt(30)}, {241, 241, 30}},
      {"nothing to feed: no grant", {Scoring(0), Prompt(0), {false, true, 0}}, {0, 0, 0}},
      {"sixteen scoring jobs each get a share", std::vector<SchedEntry>(16, Scoring(100000)),
       std::vector<int64_t>(16, 32)},
  };
  for (const Case& c : cases) {
    Scheduler s({512, 128, 16});
    const std::vector<SchedGrant> grants = s.Plan(c.running);
    EXPECT_EQ(TokensOf(grants, c.running.size()), c.expected) << c.what;
    for (const SchedGrant& g : grants) EXPECT_GT(g.tokens, 0) << c.what;
  }
}

TEST(Scheduler, DecodesComeFirstInThePlan) {
  Scheduler s({512, 128});
  const auto grants = s.Plan({Prompt(50), Decode(), Scoring(1000), Decode()});
  ASSERT_EQ(grants.size(), 4u);
  EXPECT_EQ(grants[0].index, 1u);
  EXPECT_EQ(grants[1].index, 3u);
}

TEST(Scheduler, LeftoverTokensRotateSoNoJobIsAlwaysLast) {
  Scheduler s({512, 128});
  const std::vector<SchedEntry> three(3, Scoring(100000));
  std::map<size_t, int64_t> totals;
  for (int step = 0; step < 3; ++step) {
    for (const SchedGrant& g : s.Plan(three)) totals[g.index] += g.tokens;
  }
  EXPECT_EQ(totals[0], 512);
  EXPECT_EQ(totals[1], 512);
  EXPECT_EQ(totals[2], 512);
}

TEST(Scheduler, ShortGenerateWaitsAtMostOneShortStepBehindManyScoringJobs) {
  // Sixteen scoring jobs with endless text and one 5-token Generate arriving: the Generate's
  // prompt is in the very next step with only the floor of scoring tokens beside it, and every
  // step it decodes in stays within the latency budget.
  Scheduler s({512, 128});
  std::vector<SchedEntry> running(16, Scoring(1000000));
  running.push_back(Prompt(5));
  auto grants = s.Plan(running);
  std::vector<int64_t> t = TokensOf(grants, running.size());
  EXPECT_EQ(t.back(), 5);
  EXPECT_EQ(std::accumulate(t.begin(), t.end(), int64_t{0}), 5 + 16);
  running.back() = Decode();
  grants = s.Plan(running);
  t = TokensOf(grants, running.size());
  EXPECT_EQ(t.back(), 1);
  EXPECT_LE(std::accumulate(t.begin(), t.end(), int64_t{0}), 128);
}

}  // namespace
}  // namespace mswa
