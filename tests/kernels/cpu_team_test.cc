// The team contract of kernels/cpu_team.h: a kernel called by every thread of a parallel region
// (as the CPU model's decode steps call them) computes exactly the bits it computes called
// alone, for any team size, including teams with more threads than work.
#include "kernels/cpu_team.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/gated_activation.h"
#include "kernels/paged_attention.h"
#include "kernels/small_linear.h"
#include "tests/kernels/paged_cache_sim.h"

namespace mswa {
namespace {

std::vector<float> Normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Same bits: NaN-safe and without tolerance.
void ExpectSameBits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
}

// Runs f() alone and on teams of 2 and 3 threads, each from the same starting output; the
// outputs must match the lone call's bit for bit.
template <typename F>
void ExpectTeamsMatchAlone(std::vector<float>& y, F f, const std::string& what) {
  const std::vector<float> start = y;
  f();
  const std::vector<float> alone = y;
  for (int threads : {2, 3}) {
    y = start;
    int team_size = 0;
#pragma omp parallel num_threads(threads)
    {
#pragma omp single
      team_size = omp_get_num_threads();
      f();
    }
    if (team_size < 2) GTEST_SKIP() << "OpenMP gave a team of one thread";
    ExpectSameBits(alone, y, what + " team of " + std::to_string(threads));
  }
}

TEST(CpuTeam, FloatProductsMatchTheLoneCall) {
  for (int64_t rows : {1, 3, 8, 32}) {
    for (int64_t in : {24, 256}) {
      for (int64_t out : {8, 200, 768}) {
        for (bool accumulate : {false, true}) {
          const std::vector<float> x = Normal(rows * in, 1), w = Normal(out * in, 2);
          std::vector<float> y = Normal(rows * out, 3);
          ExpectTeamsMatchAlone(
              y, [&] { SmallLinear(x.data(), rows, in, w.data(), out, y.data(), out, accumulate); },
              "f32 rows " + std::to_string(rows) + " in " + std::to_string(in) + " out " + std::to_string(out));
        }
      }
    }
  }
}

TEST(CpuTeam, BfloatProductsMatchTheLoneCall) {
  for (Bf16DotKernel kernel : {Bf16DotKernel::kWidened, Bf16DotKernel::kAvx512Bf16, Bf16DotKernel::kAmx}) {
    if (!SetBf16DotKernel(kernel)) continue;
    for (int64_t rows : {1, 5, 32}) {
      const int64_t in = 128, out = 272;
      const std::vector<float> x = Normal(rows * in, 4), wf = Normal(out * in, 5);
      std::vector<Bf16> w(wf.size());
      for (size_t i = 0; i < w.size(); ++i) w[i] = RoundToBf16(wf[i]);
      std::vector<float> y(rows * out, 0.f);
      ExpectTeamsMatchAlone(
          y, [&] { SmallLinearBf16Dot(x.data(), rows, in, w.data(), out, y.data(), out, false); },
          std::string("bf16 dot ") + Bf16DotKernelName(kernel) + " rows " + std::to_string(rows));
      ExpectTeamsMatchAlone(
          y, [&] { SmallLinear(x.data(), rows, in, w.data(), out, y.data(), out, true); },
          "bf16 weights rows " + std::to_string(rows));
    }
  }
  SetBf16DotKernel(Bf16DotKernel::kAuto);
}

TEST(CpuTeam, Int8ProductsMatchTheLoneCallOnEveryKernel) {
  const int64_t in = 256, out = 320;
  const std::vector<float> wf = Normal(out * in, 6);
  std::vector<int8_t> q(out * in);
  std::vector<float> scales(out * Int8Groups(in));
  QuantizeInt8(wf.data(), out, in, q.data(), scales.data());
  std::vector<int8_t> tiles(Int8TilesBytes(out, in));
  PackInt8Tiles(q.data(), scales.data(), out, in, tiles.data());
  const Int8Matrix rows_layout{q.data(), scales.data(), out, Int8Layout::kRows};
  const Int8Matrix tiles_layout{tiles.data(), nullptr, out, Int8Layout::kTiles16};
  for (Int8Kernel kernel : {Int8Kernel::kWidened, Int8Kernel::kAvx2, Int8Kernel::kAvx512Vnni, Int8Kernel::kAmx}) {
    if (!SetInt8Kernel(kernel)) continue;
    for (const Int8Matrix* w : {&rows_layout, &tiles_layout}) {
      for (int64_t rows : {1, 7, 32}) {
        const std::vector<float> x = Normal(rows * in, 7);
        std::vector<float> y(rows * out, 0.f);
        ExpectTeamsMatchAlone(
            y, [&] { SmallLinear(x.data(), rows, in, *w, y.data(), out, false); },
            std::string("int8 ") + Int8KernelName(kernel) + (w == &tiles_layout ? " tiles" : " rows") +
                " rows " + std::to_string(rows));
      }
    }
  }
  SetInt8Kernel(Int8Kernel::kAuto);
}

TEST(CpuTeam, GatedActivationMatchesTheLoneCall) {
  for (int64_t rows : {1, 3}) {
    for (int64_t n : {20, 688, 1000}) {
      const std::vector<float> gate_up = Normal(rows * 2 * n, 8);
      std::vector<float> out(rows * n, 0.f);
      for (GatedKind kind : {GatedKind::kSilu, GatedKind::kGeluTanh}) {
        ExpectTeamsMatchAlone(
            out,
            [&] { GatedActivationRows(gate_up.data(), gate_up.data() + n, rows, n, 2 * n, kind, out.data(), n); },
            "rows " + std::to_string(rows) + " n " + std::to_string(n));
      }
    }
  }
}

// Decode and chunked prefill through a paged cache: the KV writes and the attention on a team
// give the lone calls' outputs, including decode tokens whose keys are split into parts (more
// than 256 keys: parts computed as separate items, then merged, possibly on other threads).
TEST(CpuTeam, KvWritesAndAttentionMatchTheLoneCalls) {
  const std::vector<testing::Case> cases = {
      {32, 8, {0, 16, 0, 5}, 16, {300, 40}, {64, 7}, 30},  // decode from token 30 on
      {64, 4, {0}, 16, {20, 33}, {20, 5}},                 // prompt tiles, GQA 4
      {32, 2, {0, 0}, 8, {600}, {1}},                      // one KV head pair, long decode
  };
  for (const testing::Case& c : cases) {
    std::vector<std::vector<float>> alone, team;
    const auto lone_run = [](testing::Simulation&, const PagedKvParams& p, const std::vector<float>& q,
                             const std::vector<float>& k, const std::vector<float>& v, std::vector<float>* out) {
      WriteKvCacheCpu(p, k.data(), v.data(), p.num_kv_heads * p.head_dim);
      PagedAttentionCpu(p, q.data(), p.num_q_heads * p.head_dim, 0.125f, out->data());
    };
    const auto team_run = [](testing::Simulation&, const PagedKvParams& p, const std::vector<float>& q,
                             const std::vector<float>& k, const std::vector<float>& v, std::vector<float>* out) {
#pragma omp parallel num_threads(3)
      {
        WriteKvCacheCpu(p, k.data(), v.data(), p.num_kv_heads * p.head_dim);
        PagedAttentionCpu(p, q.data(), p.num_q_heads * p.head_dim, 0.125f, out->data());
      }
    };
    testing::RunCase(c, 11, lone_run, nullptr, &alone);
    testing::RunCase(c, 11, team_run, nullptr, &team);
    ASSERT_EQ(alone.size(), team.size());
    for (size_t s = 0; s < alone.size(); ++s) ExpectSameBits(alone[s], team[s], testing::Describe(c));
  }
}

}  // namespace
}  // namespace mswa
