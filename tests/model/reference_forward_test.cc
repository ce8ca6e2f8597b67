#include "model/runtime/reference_forward.h"

#include <gtest/gtest.h>

#include "tests/model/test_models.h"

namespace mswa {
namespace {

using mswa::testing::SomeTokens;
using mswa::testing::TinyConfig;

double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(ReferenceForward, WindowsCoveringTheSequenceEqualPlainCausalAttention) {
  const auto tokens = SomeTokens(12);
  ModelConfig causal = TinyConfig({{0, 0, 0, 0}, {0, 0, 0, 0}});
  ModelConfig wide = TinyConfig({{12, 12, 13, 13}, {100, 100, 12, 12}});
  ModelWeights w = RandomModelWeights(causal, 11, at::kDouble);
  at::Tensor a = ReferenceForward(w, causal, tokens);
  at::Tensor b = ReferenceForward(w, wide, tokens);
  EXPECT_LT(MaxAbsDiff(a, b), 1e-12);
  // ...and one key fewer than the sequence changes the last position.
  ModelConfig narrow = TinyConfig({{11, 11, 11, 11}, {11, 11, 11, 11}});
  EXPECT_GT(MaxAbsDiff(a[11], ReferenceForward(w, narrow, tokens)[11]), 1e-6);
}

TEST(ReferenceForward, WindowOneAttendsOnlyToItself) {
  ModelConfig c = TinyConfig({{1, 1, 1, 1}, {1, 1, 1, 1}});
  ModelWeights w = RandomModelWeights(c, 12, at::kDouble);
  const auto tokens = SomeTokens(6);
  at::Tensor all = ReferenceForward(w, c, tokens);
  for (int64_t t = 0; t < 6; ++t) {
    at::Tensor alone = ReferenceForward(w, c, {tokens[t]}, /*start_pos=*/t);
    EXPECT_LT(MaxAbsDiff(all[t], alone[0]), 1e-12) << t;
  }
}

TEST(ReferenceForward, OnlyTokensInsideTheReceptiveFieldMatter) {
  // Layer windows 4 then 5 (largest per layer): the last position sees back (4-1)+(5-1) = 7.
  ModelConfig c = TinyConfig({{2, 2, 4, 4}, {3, 3, 5, 5}});
  ModelWeights w = RandomModelWeights(c, 13, at::kDouble);
  const int T = 16;
  const auto tokens = SomeTokens(T);
  const at::Tensor base = ReferenceForward(w, c, tokens)[T - 1];
  auto changed_at = [&](int pos) {
    auto t = tokens;
    t[pos] = (t[pos] + 1) % 256;
    return ReferenceForward(w, c, t)[T - 1];
  };
  EXPECT_LT(MaxAbsDiff(base, changed_at(T - 1 - 8)), 1e-12);  // outside every window
  EXPECT_LT(MaxAbsDiff(base, changed_at(0)), 1e-12);
  EXPECT_GT(MaxAbsDiff(base, changed_at(T - 1 - 7)), 1e-6);   // just inside
  EXPECT_GT(MaxAbsDiff(base, changed_at(T - 2)), 1e-6);
}

TEST(ReferenceForward, GqaEqualsMultiHeadWithRepeatedKv) {
  ModelConfig gqa = TinyConfig({{3, 3, 0, 0}, {2, 2, 5, 5}});
  ModelWeights w = RandomModelWeights(gqa, 14, at::kDouble);
  ModelConfig mha = gqa;
  mha.num_key_value_heads = 4;
  ModelWeights wm = w;
  wm.layers = w.layers;
  for (auto& l : wm.layers) {
    // [KV*D, E] -> [KV, D, E] -> repeat each KV head for its 2 query heads -> [H*D, E]
    l.k_proj = l.k_proj.view({2, 8, 32}).repeat_interleave(2, 0).reshape({32, 32});
    l.v_proj = l.v_proj.view({2, 8, 32}).repeat_interleave(2, 0).reshape({32, 32});
  }
  const auto tokens = SomeTokens(10);
  EXPECT_LT(MaxAbsDiff(ReferenceForward(w, gqa, tokens), ReferenceForward(wm, mha, tokens)),
            1e-12);
}

TEST(ReferenceForward, TiedEmbeddingsUseTheEmbeddingAsLmHead) {
  ModelConfig c = TinyConfig();
  ModelWeights w = RandomModelWeights(c, 15, at::kDouble);
  ModelConfig untied = c;
  untied.tie_word_embeddings = false;
  ModelWeights wu = w;
  wu.lm_head = w.embed.clone();
  const auto tokens = SomeTokens(5);
  EXPECT_LT(MaxAbsDiff(ReferenceForward(w, c, tokens), ReferenceForward(wu, untied, tokens)),
            1e-12);
}

// Attention sees only relative positions and nothing exists before start_pos, so shifting the
// whole sequence to position 10^7 leaves the logits unchanged (if RoPE is accurate there).
TEST(ReferenceForward, ShiftInvariantAtPositionTenMillion) {
  ModelConfig c = TinyConfig({{2, 2, 4, 4}, {0, 0, 5, 5}});
  ModelWeights w = RandomModelWeights(c, 16, at::kFloat);
  const auto tokens = SomeTokens(9);
  EXPECT_LT(MaxAbsDiff(ReferenceForward(w, c, tokens, 0),
                       ReferenceForward(w, c, tokens, 10000000)),
            1e-4);
}

TEST(WindowMask, MarksExactlyTheWindow) {
  at::Tensor m = WindowMask(5, 4, 2);  // positions 5..8, window 2
  EXPECT_TRUE(m[0][0].item<bool>());
  EXPECT_FALSE(m[0][1].item<bool>());  // future
  EXPECT_TRUE(m[3][2].item<bool>());
  EXPECT_FALSE(m[3][1].item<bool>());  // distance 2 == W: outside
  EXPECT_EQ(m.sum().item<int64_t>(), 4 + 3);
}

}  // namespace
}  // namespace mswa
