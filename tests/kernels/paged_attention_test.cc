// The CPU paged MSWA attention against the dense oracle of paged_cache_sim.h.
#include <gtest/gtest.h>

#include <cstring>

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

// A decode token with more than 256 keys in view has them split into parts of whole blocks,
// computed as separate work items and merged by their softmax statistics.
TEST(PagedAttentionCpu, LongDecodesSplitByKeyRangeMatchTheOracle) {
  for (const Case& c : {Case{64, 4, {0}, 16, {800}, {300}, 600},               // one KV head, as Gemma 3 270M
                        Case{256, 8, {512, 0}, 16, {600}, {128}, 520},           // head dim 256, a window and full
                        Case{32, 6, {0, 100, 300}, 3, {600}, {50}, 500},         // odd blocks
                        Case{24, 4, {0, 0}, 16, {560}, {64}, 480},               // the scalar path
                        Case{32, 4, {0, 0}, 64, {300, 900}, {300, 97}, 780}}) {   // two sequences, 64-key blocks
    EXPECT_LT(RunCase(c, 11), 2e-5) << Describe(c);
  }
}

// Past 16 parts (4,096 keys) a part holds more than the kernel's 256-key chunk of scores: its
// softmax then runs over several chunks, rescaling what the earlier ones summed.
TEST(PagedAttentionCpu, DecodesPastSixteenPartsRescaleAcrossChunks) {
  for (const Case& c : {Case{16, 4, {0}, 16, {4140}, {1024}, 4130},   // four heads to a KV head
                        Case{32, 1, {0}, 3, {4130}, {1024}, 4125},    // odd blocks
                        Case{24, 1, {0}, 16, {4130}, {1024}, 4125}}) {  // the scalar path
    EXPECT_LT(RunCase(c, 12), 2e-5) << Describe(c);
  }
}

// ---- fp16 / bf16 pools ------------------------------------------------------------------------

uint16_t HalfBits(float x, KvDType t) {
  if (t == KvDType::kF16) {
    const _Float16 h = static_cast<_Float16>(x);
    uint16_t bits;
    std::memcpy(&bits, &h, sizeof(bits));
    return bits;
  }
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if (std::isnan(x)) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float RoundF16(float x) { return static_cast<float>(static_cast<_Float16>(x)); }
float RoundBF16(float x) {
  const uint32_t bits = static_cast<uint32_t>(HalfBits(x, KvDType::kBF16)) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Runs each step twice on identical caches: the fp32 kernels on the simulation's fp32 pools,
// and the kernels under test on a 16-bit copy of them (freed blocks' NaN included). With inputs
// that the 16-bit type represents exactly, the two agree bit for bit on the vector path (head
// dims in 16s: the conversion on read is exact and the arithmetic is the same) and to rounding
// on the scalar one (the compiler may sum in another order). The 16-bit cache after the write
// must equal the fp32 cache rounded.
struct HalfRunner {
  KvDType dtype;
  int64_t output_mismatches = 0;
  double max_output_diff = 0;
  int64_t cache_mismatches = 0;

  void operator()(testing::Simulation& sim, const PagedKvParams& p, const std::vector<float>& q,
                  const std::vector<float>& k, const std::vector<float>& v, std::vector<float>* out) {
    std::vector<std::vector<uint16_t>> half_k, half_v;
    std::vector<KvPoolView> views;
    for (int32_t g = 0; g < sim.num_groups(); ++g) {
      for (auto [dst, src] : {std::make_pair(&half_k, &sim.storage_k(g)), std::make_pair(&half_v, &sim.storage_v(g))}) {
        dst->emplace_back();
        for (float x : *src) dst->back().push_back(HalfBits(x, dtype));
      }
      KvPoolView view = sim.pools()[g];
      view.k = half_k.back().data();
      view.v = half_v.back().data();
      views.push_back(view);
    }
    PagedKvParams hp = p;
    hp.pools = views.data();
    hp.kv_dtype = dtype;
    const float scale = 1.f / std::sqrt(static_cast<float>(p.head_dim));
    WriteKvCacheCpu(hp, k.data(), v.data(), p.num_kv_heads * p.head_dim);
    std::vector<float> half_out(out->size());
    PagedAttentionCpu(hp, q.data(), p.num_q_heads * p.head_dim, scale, half_out.data());
    RunCpu(sim, p, q, k, v, out);
    output_mismatches += std::memcmp(half_out.data(), out->data(), out->size() * sizeof(float)) != 0;
    for (size_t i = 0; i < out->size(); ++i) {
      max_output_diff = std::max<double>(max_output_diff, std::abs(half_out[i] - (*out)[i]));
    }
    for (int32_t g = 0; g < sim.num_groups(); ++g) {
      for (auto [half, full] : {std::make_pair(&half_k[g], &sim.storage_k(g)), std::make_pair(&half_v[g], &sim.storage_v(g))}) {
        for (size_t i = 0; i < full->size(); ++i) cache_mismatches += (*half)[i] != HalfBits((*full)[i], dtype);
      }
    }
  }
};

TEST(PagedAttentionCpu, HalfPoolsGiveTheFp32ResultsOnRepresentableInputs) {
  for (KvDType t : {KvDType::kF16, KvDType::kBF16}) {
    for (const Case& c : {Case{32, 8, {1, 15, 16, 0}, 16, {70, 23}, {7, 1}}, Case{24, 4, {5, 33}, 8, {60}, {13}},
                          Case{128, 32, {9, 0}, 16, {50}, {16}}, Case{64, 4, {3, 40}, 3, {45}, {5}},
                          Case{64, 4, {0, 300}, 16, {560}, {64}, 500}}) {
      HalfRunner runner{t};
      const double err = testing::RunCase(c, 7, std::ref(runner), t == KvDType::kF16 ? RoundF16 : RoundBF16);
      EXPECT_LT(err, 2e-5) << Describe(c);
      if (c.head_dim % 16 == 0) {
        EXPECT_EQ(runner.output_mismatches, 0) << Describe(c);
      } else {
        EXPECT_LT(runner.max_output_diff, 1e-6) << Describe(c);
      }
      EXPECT_EQ(runner.cache_mismatches, 0) << Describe(c);
    }
  }
}

// Writing rounds to nearest even, as CUDA's conversions do: the fp32 inputs here are not
// representable, and each pool element must be the correctly rounded value.
TEST(PagedAttentionCpu, HalfPoolsRoundToNearestEvenOnWrite) {
  for (KvDType t : {KvDType::kF16, KvDType::kBF16}) {
    Case c{32, 4, {0, 0}, 4, {9}, {9}};
    testing::Simulation sim(c, 1);
    std::vector<int64_t> positions;
    std::vector<int32_t> seqs;
    for (int64_t i = 0; i < 9; ++i) {
      sim.Allocate(0, i);
      positions.push_back(i);
      seqs.push_back(0);
    }
    PagedKvParams p = sim.Params(positions, seqs);
    std::vector<std::vector<uint16_t>> pk, pv;
    std::vector<KvPoolView> views;
    for (int32_t g = 0; g < sim.num_groups(); ++g) {
      pk.emplace_back(sim.storage_k(g).size(), 0xffff);
      pv.emplace_back(sim.storage_v(g).size(), 0xffff);
      KvPoolView view = sim.pools()[g];
      view.k = pk.back().data();
      view.v = pv.back().data();
      views.push_back(view);
    }
    p.pools = views.data();
    p.kv_dtype = t;
    std::vector<float> k(9 * 2 * 32), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = 1.f + static_cast<float>(i) * 1.3e-4f;  // between representable values
      v[i] = -3.f * k[i];
    }
    WriteKvCacheCpu(p, k.data(), v.data(), 2 * 32);
    std::vector<float> fk, fv;  // the same write into the fp32 pools, rounded by the test
    p.pools = sim.pools().data();
    p.kv_dtype = KvDType::kF32;
    WriteKvCacheCpu(p, k.data(), v.data(), 2 * 32);
    int64_t written = 0, wrong = 0;
    for (int32_t g = 0; g < sim.num_groups(); ++g) {
      for (size_t i = 0; i < pk[g].size(); ++i) {
        if (std::isnan(sim.storage_k(g)[i])) continue;  // never written
        ++written;
        wrong += pk[g][i] != HalfBits(sim.storage_k(g)[i], t);
        wrong += pv[g][i] != HalfBits(sim.storage_v(g)[i], t);
      }
    }
    EXPECT_EQ(written, 9 * 2 * 32);
    EXPECT_EQ(wrong, 0) << (t == KvDType::kF16 ? "f16" : "bf16");
  }
}

}  // namespace
}  // namespace mswa
