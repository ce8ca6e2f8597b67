// The engine with weights and KV on the GPU (--device cuda) against the same engine on the CPU:
// scores and greedy generations agree, through chunked prefill and decode, with freed blocks
// poisoned. Without a GPU and a CUDA LibTorch only the refusal is checked.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"
#include "tests/model/test_models.h"

namespace mswa {
namespace {

bool HaveCuda() { return at::hasCUDA(); }

// The CUDA kernels start at head_dim 32.
ModelConfig CudaConfig() {
  ModelConfig c = testing::TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}});
  c.head_dim = 32;
  return c;
}

EngineOptions Options(ModelDevice device) {
  EngineOptions o;
  o.device = device;
  o.kv_cache_bytes = 8 << 20;
  o.block_size = 4;
  o.max_tokens_per_step = 24;  // prompts arrive in several chunks
  o.max_model_len = 4096;
  o.poison_freed_blocks = true;
  return o;
}

std::unique_ptr<Engine> Make(const ModelConfig& c, at::ScalarType dtype, ModelDevice device) {
  auto e = Engine::Create(c, RandomModelWeights(c, 5, dtype), std::make_unique<ByteTokenizer>(), Options(device));
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(e).value() : nullptr;
}

std::vector<int32_t> Tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + 11) % 256;
  return t;
}

double ScoreNll(Engine& e, const std::vector<int32_t>& tokens) {
  double nll = -1;
  auto id = e.SubmitScore(ScoreOptions{}, static_cast<int64_t>(tokens.size()), [&](EngineEvent ev) {
    if (ev.finished) nll = ev.score.total_nll;
  });
  EXPECT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(e.FeedScore(*id, tokens, static_cast<int64_t>(tokens.size()), true).ok());
  while (e.Step()) {
  }
  return nll;
}

std::vector<int32_t> Greedy(Engine& e, const std::vector<int32_t>& prompt, int n) {
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = n;
  g.ignore_eos = true;
  std::vector<int32_t> out;
  EXPECT_TRUE(e.SubmitGenerate(prompt, g, [&](EngineEvent ev) {
                 out.insert(out.end(), ev.token_ids.begin(), ev.token_ids.end());
               }).ok());
  while (e.Step()) {
  }
  return out;
}

TEST(EngineCuda, WithoutCudaTheDeviceIsRefusedWithAClearError) {
  if (HaveCuda()) GTEST_SKIP() << "this LibTorch has CUDA";
  auto e = Engine::Create(CudaConfig(), RandomModelWeights(CudaConfig(), 5), std::make_unique<ByteTokenizer>(),
                          Options(ModelDevice::kCuda));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(e.status().message()).find("--device cpu"), std::string::npos) << e.status();
}

TEST(EngineCuda, ParsesTheDeviceName) {
  EXPECT_EQ(*ParseModelDevice("cpu"), ModelDevice::kCpu);
  EXPECT_EQ(*ParseModelDevice("cuda"), ModelDevice::kCuda);
  EXPECT_EQ(ParseModelDevice("tpu").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EngineCuda, ScoresAndGeneratesAsTheCpuEngine) {
  if (!HaveCuda()) GTEST_SKIP() << "no CUDA LibTorch / GPU";
  const ModelConfig c = CudaConfig();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const double tol = dtype == at::kFloat ? 1e-4 : 2e-2;  // relative, on the total NLL
    auto cpu = Make(c, dtype, ModelDevice::kCpu);
    auto gpu = Make(c, dtype, ModelDevice::kCuda);
    ASSERT_TRUE(cpu && gpu);
    const std::vector<int32_t> text = Tokens(300);  // far past every window: the rings wrap
    const double a = ScoreNll(*cpu, text), b = ScoreNll(*gpu, text);
    EXPECT_NEAR(b, a, tol * a) << "dtype " << dtype;
    if (dtype == at::kFloat) {
      EXPECT_EQ(Greedy(*gpu, Tokens(40), 60), Greedy(*cpu, Tokens(40), 60));
    }
  }
}

TEST(EngineCuda, ManyConcurrentRequestsAgreeWithTheCpu) {
  if (!HaveCuda()) GTEST_SKIP() << "no CUDA LibTorch / GPU";
  const ModelConfig c = CudaConfig();
  auto cpu = Make(c, at::kFloat, ModelDevice::kCpu);
  auto gpu = Make(c, at::kFloat, ModelDevice::kCuda);
  ASSERT_TRUE(cpu && gpu);
  // Decodes and prefill chunks in the same steps.
  std::vector<std::vector<int32_t>> got_cpu(6), got_gpu(6);
  for (int i = 0; i < 6; ++i) {
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_tokens = 20 + 5 * i;
    g.ignore_eos = true;
    const std::vector<int32_t> prompt(Tokens(10 + 17 * i));
    ASSERT_TRUE(cpu->SubmitGenerate(prompt, g, [&, i](EngineEvent e) {
                     got_cpu[i].insert(got_cpu[i].end(), e.token_ids.begin(), e.token_ids.end());
                   }).ok());
    ASSERT_TRUE(gpu->SubmitGenerate(prompt, g, [&, i](EngineEvent e) {
                     got_gpu[i].insert(got_gpu[i].end(), e.token_ids.begin(), e.token_ids.end());
                   }).ok());
  }
  while (cpu->Step()) {
  }
  while (gpu->Step()) {
  }
  EXPECT_EQ(got_gpu, got_cpu);
}

}  // namespace
}  // namespace mswa
