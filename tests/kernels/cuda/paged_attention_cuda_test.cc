// The CUDA paged MSWA kernels against the dense oracle and against the CPU kernels on identical
// inputs (paged_cache_sim.h: random ring tables, NaN-poisoned freed blocks), for fp32, fp16 and
// bf16 storage, through the decode and the prefill kernel. Skips without a CUDA device.
#include "kernels/cuda/paged_attention_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "tests/kernels/paged_cache_sim.h"

namespace mswa::cuda {
namespace {

using mswa::testing::Case;
using mswa::testing::Describe;
using mswa::testing::Simulation;

#define SKIP_WITHOUT_DEVICE()                        \
  do {                                               \
    if (DeviceCount() == 0) {                        \
      GTEST_SKIP() << "no CUDA device";              \
    }                                                \
  } while (0)

// ---- host <-> device ----------------------------------------------------------------------------

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
      EXPECT_EQ(cudaMalloc(&ptr_, bytes), cudaSuccess);
    }
  }
  DeviceBuffer(const void* host, size_t bytes) : DeviceBuffer(bytes) {
    if (bytes > 0) {
      EXPECT_EQ(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  template <typename T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.data(), host.size() * sizeof(T)) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  ~DeviceBuffer() { cudaFree(ptr_); }

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  std::vector<char> Download() const {
    std::vector<char> host(bytes_);
    if (bytes_ > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), ptr_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

size_t ElementBytes(KvDType t) { return t == KvDType::kF32 ? 4 : 2; }

// Host values in the storage type, as raw bytes; and back.
std::vector<char> Encode(KvDType t, const std::vector<float>& x) {
  std::vector<char> out(x.size() * ElementBytes(t));
  for (size_t i = 0; i < x.size(); ++i) {
    if (t == KvDType::kF32) {
      std::memcpy(out.data() + 4 * i, &x[i], 4);
    } else if (t == KvDType::kF16) {
      const __half h = __float2half_rn(x[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    } else {
      const __nv_bfloat16 b = __float2bfloat16_rn(x[i]);
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

std::vector<float> Decode(KvDType t, const std::vector<char>& bytes) {
  std::vector<float> out(bytes.size() / ElementBytes(t));
  for (size_t i = 0; i < out.size(); ++i) {
    if (t == KvDType::kF32) {
      std::memcpy(&out[i], bytes.data() + 4 * i, 4);
    } else if (t == KvDType::kF16) {
      __half h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      out[i] = __half2float(h);
    } else {
      __nv_bfloat16 b;
      std::memcpy(&b, bytes.data() + 2 * i, 2);
      out[i] = __bfloat162float(b);
    }
  }
  return out;
}

float RoundF16(float x) { return __half2float(__float2half_rn(x)); }
float RoundBF16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
using RoundFn = float (*)(float);
RoundFn Rounding(KvDType t) { return t == KvDType::kF16 ? RoundF16 : t == KvDType::kBF16 ? RoundBF16 : nullptr; }

// Output error allowed against the fp64 oracle and the CPU kernels: fp32 math with exp2f, then
// the output rounded to the storage type (|out| < 4).
double Tolerance(KvDType t) { return t == KvDType::kF32 ? 1e-4 : t == KvDType::kF16 ? 4e-3 : 3e-2; }

const char* Name(KvDType t) { return t == KvDType::kF32 ? "f32" : t == KvDType::kF16 ? "f16" : "bf16"; }

// ---- the step runner ----------------------------------------------------------------------------

enum class Path { kDecode, kPrefill };

// Mirrors the simulated cache on the device, runs the CPU kernels (on the host copy) and the
// CUDA kernels (on the device copy) on the same step, and records how they differ.
struct CudaRunner {
  KvDType dtype = KvDType::kF32;
  Path path = Path::kDecode;
  int32_t splits = 0;           // decode: 0 = PlanDecode's choice
  bool per_group_check = false; // also launch each window group alone and compare
  double max_cpu_diff = 0;      // CUDA output vs CPU output
  int64_t cache_mismatches = 0; // pool elements that differ from the CPU cache after the write
  int64_t per_group_mismatches = 0;
  std::string error;

  void operator()(Simulation& sim, const PagedKvParams& hp, const std::vector<float>& q,
                  const std::vector<float>& k, const std::vector<float>& v, std::vector<float>* out) {
    const int64_t T = hp.num_tokens, Hq = hp.num_q_heads, KV = hp.num_kv_heads, D = hp.head_dim;
    // The cache before this step's write, in the storage type.
    std::vector<DeviceBuffer> pool_k, pool_v;
    std::vector<KvPoolView> views;
    for (int32_t g = 0; g < sim.num_groups(); ++g) {
      pool_k.emplace_back(Encode(dtype, sim.storage_k(g)));
      pool_v.emplace_back(Encode(dtype, sim.storage_v(g)));
      KvPoolView view = sim.pools()[g];
      view.k = pool_k.back().get();
      view.v = pool_v.back().get();
      views.push_back(view);
    }
    DeviceBuffer d_views(views), d_heads(sim.heads()), d_tables(sim.tables()), d_offsets(sim.offsets()),
        d_rings(sim.rings());
    DeviceBuffer d_pos(hp.positions, T * sizeof(int64_t)), d_seq(hp.seq_index, T * sizeof(int32_t));
    DeviceBuffer d_q(Encode(dtype, q)), d_k(Encode(dtype, k)), d_v(Encode(dtype, v));
    DeviceBuffer d_out(T * Hq * D * ElementBytes(dtype));
    PagedKvParams dp = hp;
    dp.positions = d_pos.as<int64_t>();
    dp.seq_index = d_seq.as<int32_t>();
    dp.block_tables = d_tables.as<int32_t>();
    dp.table_offsets = d_offsets.as<int64_t>();
    dp.ring_sizes = d_rings.as<int64_t>();
    dp.kv_heads = d_heads.as<KvHeadDesc>();
    dp.pools = d_views.as<KvPoolView>();
    dp.kv_dtype = dtype;

    // CPU kernels on the host cache.
    const float scale = 1.f / std::sqrt(static_cast<float>(D));
    WriteKvCacheCpu(hp, k.data(), v.data(), KV * D);
    std::vector<float> cpu_out(T * Hq * D);
    PagedAttentionCpu(hp, q.data(), Hq * D, scale, cpu_out.data());

    // CUDA kernels on the device cache.
    Record(WriteKvCache(dp, d_k.get(), d_v.get(), KV * D, nullptr));
    Attend(dp, hp, d_q.get(), Hq * D, scale, d_out.get());
    Record(cudaDeviceSynchronize() == cudaSuccess ? "" : cudaGetErrorString(cudaGetLastError()));
    const std::vector<float> got = Decode(dtype, d_out.Download());
    for (size_t i = 0; i < got.size(); ++i) {
      (*out)[i] = got[i];
      const double diff = std::isnan(got[i]) ? 1e9 : std::abs(got[i] - cpu_out[i]);
      max_cpu_diff = std::max(max_cpu_diff, diff);
    }
    for (int32_t g = 0; g < sim.num_groups(); ++g) {  // the written cache equals the CPU's, NaNs included
      for (auto [dev, host] : {std::make_pair(&pool_k[g], &sim.storage_k(g)), std::make_pair(&pool_v[g], &sim.storage_v(g))}) {
        const std::vector<char> want = Encode(dtype, *host);
        const std::vector<char> have = dev->Download();
        for (size_t i = 0; i < want.size(); i += ElementBytes(dtype)) {
          cache_mismatches += std::memcmp(want.data() + i, have.data() + i, ElementBytes(dtype)) != 0;
        }
      }
    }
    if (per_group_check) PerGroupLaunches(dp, hp, d_q.get(), scale, got);
  }

  void Record(const std::string& e) {
    if (error.empty()) error = e;
  }

  void Attend(const PagedKvParams& dp, const PagedKvParams& hp, const void* q, int64_t q_stride, float scale,
              void* out) {
    if (path == Path::kDecode) {
      int64_t max_keys = 1;
      for (int64_t t = 0; t < hp.num_tokens; ++t) {
        for (int64_t h = 0; h < hp.num_kv_heads; ++h) {
          const int64_t w = hp.kv_heads[h].window, seen = hp.positions[t] + 1;
          max_keys = std::max(max_keys, w == 0 ? seen : std::min(w, seen));
        }
      }
      const DecodePlan plan =
          splits > 0 ? DecodePlanWithSplits(hp.num_tokens, hp.num_q_heads, hp.head_dim, splits)
                     : PlanDecode(hp.num_tokens, hp.num_q_heads, hp.num_kv_heads, hp.head_dim, max_keys, DeviceSmCount());
      DeviceBuffer workspace(plan.workspace_bytes);
      Record(PagedDecode(dp, q, q_stride, scale, out, plan, workspace.get(), nullptr));
      Record(cudaDeviceSynchronize() == cudaSuccess ? "" : "decode failed");
    } else {
      // Tokens arrive grouped by sequence: one range per run of equal seq_index.
      std::vector<int32_t> starts = {0};
      int32_t longest = 0;
      for (int64_t t = 1; t <= hp.num_tokens; ++t) {
        if (t == hp.num_tokens || hp.seq_index[t] != hp.seq_index[t - 1]) {
          longest = std::max<int32_t>(longest, static_cast<int32_t>(t) - starts.back());
          starts.push_back(static_cast<int32_t>(t));
        }
      }
      DeviceBuffer d_starts(starts);
      PrefillBatch batch{d_starts.as<int32_t>(), static_cast<int32_t>(starts.size() - 1), longest};
      Record(PagedPrefill(dp, batch, q, q_stride, scale, out, nullptr));
      Record(cudaDeviceSynchronize() == cudaSuccess ? "" : "prefill failed");
    }
  }

  // Each window group's KV heads alone (their query heads' slice of q, same row stride) must
  // give the rows the one multi-group launch gave, bit for bit. Needs each group's KV heads to be
  // contiguous, as the cases below arrange.
  void PerGroupLaunches(const PagedKvParams& dp, const PagedKvParams& hp, const void* q, float scale,
                        const std::vector<float>& all) {
    const int64_t T = dp.num_tokens, Hq = dp.num_q_heads, KV = dp.num_kv_heads, D = dp.head_dim;
    const int64_t ratio = Hq / KV;
    for (int64_t h0 = 0; h0 < KV;) {
      int64_t h1 = h0;
      while (h1 < KV && hp.kv_heads[h1].group == hp.kv_heads[h0].group) ++h1;
      PagedKvParams one = dp;
      one.num_kv_heads = h1 - h0;
      one.num_q_heads = (h1 - h0) * ratio;
      one.kv_heads = dp.kv_heads + h0;
      const char* q_slice = static_cast<const char*>(q) + h0 * ratio * D * ElementBytes(dtype);
      DeviceBuffer d_out(T * one.num_q_heads * D * ElementBytes(dtype));
      PagedKvParams host_view = hp;  // Attend reads windows and positions on the host
      host_view.num_kv_heads = one.num_kv_heads;
      host_view.num_q_heads = one.num_q_heads;
      host_view.kv_heads = hp.kv_heads + h0;
      Attend(one, host_view, q_slice, Hq * D, scale, d_out.get());
      const std::vector<float> got = Decode(dtype, d_out.Download());
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < one.num_q_heads * D; ++i) {
          const float a = got[t * one.num_q_heads * D + i], b = all[(t * Hq + h0 * ratio) * D + i];
          per_group_mismatches += std::memcmp(&a, &b, sizeof(float)) != 0;
        }
      }
      h0 = h1;
    }
  }
};

struct Result {
  double oracle_err, cpu_diff;
  int64_t cache_mismatches, per_group_mismatches;
  std::string error;
};

Result RunCuda(const Case& c, uint32_t seed, KvDType dtype, Path path, int32_t splits = 0, bool per_group = false,
           std::vector<std::vector<float>>* outputs = nullptr) {
  CudaRunner runner;
  runner.dtype = dtype;
  runner.path = path;
  runner.splits = splits;
  runner.per_group_check = per_group;
  const double err = mswa::testing::RunCase(
      c, seed,
      [&](Simulation& sim, const PagedKvParams& p, const std::vector<float>& q, const std::vector<float>& k,
          const std::vector<float>& v, std::vector<float>* out) { runner(sim, p, q, k, v, out); },
      Rounding(dtype), outputs);
  return {err, runner.max_cpu_diff, runner.cache_mismatches, runner.per_group_mismatches, runner.error};
}

void ExpectGood(const Case& c, uint32_t seed, KvDType dtype, Path path, int32_t splits = 0) {
  const Result r = RunCuda(c, seed, dtype, path, splits);
  const std::string what = Describe(c) + " " + Name(dtype) + (path == Path::kDecode ? " decode" : " prefill") +
                           " splits=" + std::to_string(splits);
  EXPECT_EQ(r.error, "") << what;
  EXPECT_LT(r.oracle_err, Tolerance(dtype)) << what;
  EXPECT_LT(r.cpu_diff, Tolerance(dtype)) << what;
  EXPECT_EQ(r.cache_mismatches, 0) << what;
}

const KvDType kTypes[] = {KvDType::kF32, KvDType::kF16, KvDType::kBF16};
const Path kPaths[] = {Path::kDecode, Path::kPrefill};

// ---- the sweep of DESIGN.md section 6 -----------------------------------------------------------

TEST(PagedAttentionCuda, WindowEdgesAroundTheBlockSize) {
  SKIP_WITHOUT_DEVICE();
  const int64_t B = 16;
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      for (int64_t chunk : {1, 7, 16, 40}) ExpectGood(Case{32, 8, {1, B - 1, B, B + 1}, B, {70}, {chunk}}, 1, t, path);
    }
  }
}

TEST(PagedAttentionCuda, WindowEdgesAroundTheLength) {
  SKIP_WITHOUT_DEVICE();
  const int64_t T = 45;
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      for (int64_t chunk : {1, 9, 45}) ExpectGood(Case{64, 4, {T - 1, T, T + 1, 0}, 16, {T}, {chunk}}, 2, t, path);
    }
  }
}

TEST(PagedAttentionCuda, ChunkSizesAroundTheWindow) {
  SKIP_WITHOUT_DEVICE();
  const int64_t W = 21;
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      for (int64_t chunk : {int64_t{1}, int64_t{7}, W - 1, W, 2 * W + 3, int64_t{130}}) {
        ExpectGood(Case{32, 4, {W, W, 2 * W, 0}, 16, {130}, {chunk}}, 3, t, path);
      }
    }
  }
}

TEST(PagedAttentionCuda, HeadDimsAndGqaRatios) {
  SKIP_WITHOUT_DEVICE();
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      for (int64_t D : {32, 64, 96, 128, 256}) {
        for (auto [hq, windows] : std::vector<std::pair<int64_t, std::vector<int64_t>>>{
                 {4, {5, 5, 33, 33}}, {8, {5, 33}}, {8, {17}}, {32, {9, 0}}}) {
          ExpectGood(Case{D, hq, windows, 16, {100}, {70}}, 4, t, path);
        }
      }
    }
  }
}

TEST(PagedAttentionCuda, ManySequencesOfDifferentLengthsInOneCall) {
  SKIP_WITHOUT_DEVICE();
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      ExpectGood(Case{32, 8, {3, 8, 40, 0}, 8, {1, 17, 64, 90, 33, 200}, {1, 5, 64, 16, 1, 130}}, 5, t, path);
    }
  }
}

TEST(PagedAttentionCuda, OddBlockSizes) {
  SKIP_WITHOUT_DEVICE();
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      for (int64_t B : {1, 3, 64}) ExpectGood(Case{32, 4, {1, 2, 7, 0}, B, {50}, {6}}, 6, t, path);
    }
  }
}

// ---- split-K, chunking and launch grouping --------------------------------------------------------

TEST(PagedAttentionCuda, SplitKEqualsOneSplit) {
  SKIP_WITHOUT_DEVICE();
  const Case c{64, 8, {300, 1000}, 16, {1040, 400}, {64, 64}, 1000};
  for (KvDType t : kTypes) {
    std::vector<std::vector<float>> one, split;
    const Result a = RunCuda(c, 7, t, Path::kDecode, 1, false, &one);
    for (int32_t splits : {2, 3, 7, 64}) {
      const Result b = RunCuda(c, 7, t, Path::kDecode, splits, false, &split);
      EXPECT_EQ(b.error, "");
      EXPECT_LT(b.oracle_err, Tolerance(t)) << Name(t) << " splits " << splits;
      double diff = 0;
      for (size_t s = 0; s < one.size(); ++s) {
        for (size_t i = 0; i < one[s].size(); ++i) diff = std::max<double>(diff, std::abs(one[s][i] - split[s][i]));
      }
      EXPECT_LT(diff, Tolerance(t)) << Name(t) << " splits " << splits;
    }
    EXPECT_LT(a.oracle_err, Tolerance(t));
  }
}

TEST(PagedAttentionCuda, ChunkedPrefillThenDecodeEqualsOneShot) {
  SKIP_WITHOUT_DEVICE();
  for (KvDType t : kTypes) {
    std::vector<std::vector<float>> one_shot, chunked, decoded;
    RunCuda(Case{64, 8, {16, 48, 100, 0}, 16, {300}, {300}}, 8, t, Path::kPrefill, 0, false, &one_shot);
    RunCuda(Case{64, 8, {16, 48, 100, 0}, 16, {300}, {37}}, 8, t, Path::kPrefill, 0, false, &chunked);
    // The first 150 tokens in chunks of 50, then one token a step through the decode kernel.
    CudaRunner mixed;
    mixed.dtype = t;
    const Case c{64, 8, {16, 48, 100, 0}, 16, {300}, {50}, 150};
    mswa::testing::RunCase(
        c, 8,
        [&](Simulation& sim, const PagedKvParams& p, const std::vector<float>& q, const std::vector<float>& k,
            const std::vector<float>& v, std::vector<float>* out) {
          mixed.path = p.num_tokens > 1 ? Path::kPrefill : Path::kDecode;
          mixed(sim, p, q, k, v, out);
        },
        Rounding(t), &decoded);
    EXPECT_EQ(mixed.error, "");
    double d1 = 0, d2 = 0;
    for (size_t i = 0; i < one_shot[0].size(); ++i) {
      d1 = std::max<double>(d1, std::abs(one_shot[0][i] - chunked[0][i]));
      d2 = std::max<double>(d2, std::abs(one_shot[0][i] - decoded[0][i]));
    }
    EXPECT_LT(d1, Tolerance(t)) << Name(t);
    EXPECT_LT(d2, Tolerance(t)) << Name(t);
  }
}

TEST(PagedAttentionCuda, OneMultiGroupLaunchEqualsPerGroupLaunches) {
  SKIP_WITHOUT_DEVICE();
  const Case c{64, 8, {8, 8, 64, 64}, 16, {160, 90}, {40, 90}};
  for (KvDType t : kTypes) {
    for (Path path : kPaths) {
      const Result r = RunCuda(c, 9, t, path, /*splits=*/2, /*per_group=*/true);
      EXPECT_EQ(r.error, "");
      EXPECT_EQ(r.per_group_mismatches, 0) << Name(t);
      EXPECT_LT(r.oracle_err, Tolerance(t));
    }
  }
}

TEST(PagedAttentionCuda, RejectsUnsupportedShapes) {
  SKIP_WITHOUT_DEVICE();
  PagedKvParams p;
  p.num_tokens = 1;
  p.num_q_heads = 6;
  p.num_kv_heads = 4;
  p.head_dim = 64;
  EXPECT_NE(WriteKvCache(p, nullptr, nullptr, 256, nullptr), "");
  p.num_q_heads = 8;
  p.head_dim = 48;
  EXPECT_NE(PagedDecode(p, nullptr, 384, 1.f, nullptr, DecodePlan{}, nullptr, nullptr).find("head_dim 48"),
            std::string::npos);
  EXPECT_FALSE(SupportedHeadDim(48));
  EXPECT_TRUE(SupportedHeadDim(128));
}

TEST(PagedAttentionCudaPlan, SplitsOnlyLongWindowsOnASmallBatch) {
  // Host arithmetic: runs without a device too.
  EXPECT_EQ(PlanDecode(1, 32, 8, 128, 8192, 132).num_splits, 32);  // 8192 / 256 keys a split
  EXPECT_EQ(PlanDecode(1, 32, 8, 128, 200, 132).num_splits, 1);    // short window: no split
  EXPECT_EQ(PlanDecode(256, 32, 8, 128, 8192, 132).num_splits, 1); // the batch fills the device
  const DecodePlan p = DecodePlanWithSplits(3, 8, 64, 4);
  EXPECT_EQ(p.workspace_bytes, 3 * 8 * 4 * (64 + 2) * 4);
  EXPECT_EQ(DecodePlanWithSplits(3, 8, 64, 1).workspace_bytes, 0);
}

}  // namespace
}  // namespace mswa::cuda
