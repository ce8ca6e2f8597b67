// The CPU paged MSWA attention against the dense oracle of paged_cache_sim.h.
#include <gtest/gtest.h>

#include "kernels/paged_attention.h"
#include "tests/kernels/paged_cache_sim.h"

namespace mswa {
namespace {

using testing::Case;
using testing::Describe;

void RunCpu(testing::Simulation&, const PagedKvParams& p, const std::vector<float>& q, const std::vector<float>& k,
            const std::vector<float>& v, std::vector<float>* out) {
  WriteKvCacheCpu(p, k.data(), v.data(), p.num_kv_heads * p.head_dim);
  PagedAttentionCpu(p, q.data(), p.num_q_heads * p.head_dim, 1.f / std::sqrt(static_cast<float>(p.head_dim)),
                    out->data());
}

double RunCase(const Case& c, uint32_t seed) { return testing::RunCase(c, seed, RunCpu); }

TEST(PagedAttentionCpu, WindowEdgesAroundTheBlockSize) {
  const int64_t B = 16;
  for (int64_t chunk : {1, 7, 16, 40}) {
    Case c{32, 8, {1, B - 1, B, B + 1}, B, {70}, {chunk}};
    EXPECT_LT(RunCase(c, 1), 2e-5) << Describe(c);
  }
}

TEST(PagedAttentionCpu, WindowEdgesAroundTheLength) {
  const int64_t T = 45;
  for (int64_t chunk : {1, 9, 45}) {
    Case c{64, 4, {T - 1, T, T + 1, 0}, 16, {T}, {chunk}};
    EXPECT_LT(RunCase(c, 2), 2e-5) << Describe(c);
  }
}

TEST(PagedAttentionCpu, ChunkSizesAroundTheWindow) {
  const int64_t W = 21;
  for (int64_t chunk : {int64_t{1}, int64_t{7}, int64_t{16}, W - 1, W, 2 * W + 3}) {
    Case c{32, 4, {W, W, 2 * W, 0}, 16, {130}, {chunk}};
    EXPECT_LT(RunCase(c, 3), 2e-5) << Describe(c);
  }
}

// Multiples of 16 take the kernel's vector path, the others its scalar one.
TEST(PagedAttentionCpu, HeadDimsAndGqaRatios) {
  for (int64_t D : {8, 24, 32, 48, 64, 96, 128, 256}) {
    for (auto [hq, windows] : std::vector<std::pair<int64_t, std::vector<int64_t>>>{
             {4, {5, 5, 33, 33}}, {8, {5, 33}}, {8, {17}}, {32, {9, 0}}}) {
      Case c{D, hq, windows, 16, {60}, {13}};
      EXPECT_LT(RunCase(c, 4), 2e-5) << Describe(c);
    }
  }
}

TEST(PagedAttentionCpu, ManySequencesOfDifferentLengthsInOneCall) {
  Case c{32, 8, {3, 8, 40, 0}, 8, {1, 17, 64, 90, 33}, {1, 5, 64, 16, 1}};
  EXPECT_LT(RunCase(c, 5), 2e-5) << Describe(c);
}

TEST(PagedAttentionCpu, OddBlockSizes) {
  for (int64_t B : {1, 3, 64}) {
    Case c{32, 4, {1, 2, 7, 0}, B, {50}, {6}};
    EXPECT_LT(RunCase(c, 6), 2e-5) << Describe(c);
  }
}

}  // namespace
}  // namespace mswa
