// End-to-end engine figures on this machine, each against what the hardware allows, measured in
// one run (these machines are noisy: compare ratios, not absolute numbers across runs):
//   decode tokens/s at batch 1  vs  weight bytes per step / measured read bandwidth
//   decode tokens/s at batch 32 vs  batch 1
//   scoring (prefill) tokens/s  vs  measured matmul FLOP/s / FLOPs per token
//   attention kernel: bytes inside the windows per second vs the read bandwidth
//   KV bytes per sequence vs a full-attention model of the same shape
//   RSS while one sequence generates a long text (flat once the windows are full)
//
//   build/bench/engine_bench [--long_tokens N]
//
// With --model_dir, the same figures for any model directory (any family, any size), as a
// table lined up with llama.cpp's llama-bench (pp512, tg128) plus batched decode:
//   build/bench/engine_bench --model_dir DIR [--dtype auto|float32|bfloat16|int8]
//       [--activation_dtype auto|float32|bfloat16]
//       [--kv_cache_dtype auto|float32|float16|bfloat16] [--threads N] [--batches 8,32]
//       [--depth N]
//
// MSWA_BENCH_PREFIX_CACHING=0 runs either with prefix caching off (prompts here are random, so
// the cache only costs its bookkeeping: compare the two).
#include <ATen/Parallel.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_probes.h"
#include "bench/default_shape.h"
#include "bench/model_dir_bench.h"
#include "kernels/paged_attention.h"
#include "kernels/small_linear.h"
#include "model/tokenizer/byte_tokenizer.h"
#include "model/runtime/kv_layout.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "model/format/weights.h"
#include "server/engine.h"

namespace mswa {
namespace {

// Matmul FLOP/s at the shapes a 512-token step uses ([512, 256] x [256, 1408]), best of 5.
double MatmulFlops() {
  at::Tensor a = at::randn({512, 256}), w = at::randn({1408, 256});
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 20; ++i) at::linear(a, w);
    const double s = Seconds(t0, Clock::now());
    best = std::max(best, 20 * 2.0 * 512 * 256 * 1408 / s);
  }
  return best;
}

std::unique_ptr<Engine> MakeEngine(const ModelConfig& c, int64_t budget,
                                   std::optional<at::ScalarType> dtype = std::nullopt) {
  EngineOptions o;
  o.dtype = dtype;
  o.enable_prefix_caching = PrefixCaching();
  o.kv_cache_bytes = int64_t{512} << 20;
  o.max_tokens_per_step = budget;
  o.max_new_tokens = 1 << 30;
  auto e = Engine::Create(c, RandomModelWeights(c, 0), std::make_unique<ByteTokenizer>(), o);
  if (!e.ok()) {
    std::fprintf(stderr, "engine: %s\n", std::string(e.status().message()).c_str());
    std::exit(1);
  }
  return std::move(e).value();
}

// Decode tokens/s with `batch` concurrent greedy generations (prefill excluded).
double DecodeTokensPerSecond(const ModelConfig& c, int batch, int tokens,
                             std::optional<at::ScalarType> dtype = std::nullopt) {
  auto engine = MakeEngine(c, 512, dtype);
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = tokens;
  g.ignore_eos = true;
  for (int i = 0; i < batch; ++i) {
    std::vector<int32_t> prompt(16);
    for (int j = 0; j < 16; ++j) prompt[j] = (i * 31 + j * 7) % 256;
    (void)engine->SubmitGenerate(prompt, g, [](EngineEvent) {});
  }
  engine->Step();  // admission + prefill of every prompt
  const int64_t before = engine->stats().generated_tokens;
  const auto t0 = Clock::now();
  while (engine->Step()) {
  }
  return (engine->stats().generated_tokens - before) / Seconds(t0, Clock::now());
}

double ScoreTokensPerSecond(const ModelConfig& c, int64_t n) {
  auto engine = MakeEngine(c, 512);
  std::vector<int32_t> text(n);
  for (int64_t i = 0; i < n; ++i) text[i] = static_cast<int32_t>((i * 2654435761u) >> 24) % 256;
  auto id = engine->SubmitScore(ScoreOptions{}, n, [](EngineEvent) {});
  (void)engine->FeedScore(*id, text, n, true);
  const auto t0 = Clock::now();
  while (engine->Step()) {
  }
  return engine->stats().scored_tokens / Seconds(t0, Clock::now());
}

// The attention kernel alone: `batch` decode queries, each sequence with every window full,
// pools of `dtype`. Returns the seconds of one call per layer for all layers (best of 5) and
// sets `bytes` to the K and V bytes inside the windows that it reads.
double AttentionSeconds(const ModelConfig& c, int batch, KvDType dtype, double* bytes) {
  const KvLayout layout = BuildKvLayout(c);
  const int64_t B = 16, D = c.head_dim, H = c.num_attention_heads, KV = c.num_key_value_heads;
  const int64_t pos = 4096;  // every window is full
  const int64_t element = dtype == KvDType::kF32 ? 4 : 2;
  // Pool storage as bytes; the values do not matter to the timing (the bytes 0x24 are about
  // 1.4e-16 as fp32, 0.015 as fp16 and 3.6e-17 as bf16: finite everywhere).
  std::vector<AlignedBytes> k, v;
  std::vector<KvPoolView> pools;
  std::vector<int64_t> offsets, rings;
  int64_t stride = 0;
  for (const WindowGroup& g : layout.groups) {
    const int64_t ring = MaxBlocksPerSequence(g.window, 1, B);
    rings.push_back(ring);
    offsets.push_back(stride);
    stride += ring;
    const int64_t blocks = ring * batch;
    k.push_back(AllocateAligned(blocks * g.num_heads * B * D * element, 0x24));
    v.push_back(AllocateAligned(blocks * g.num_heads * B * D * element, 0x24));
    pools.push_back({k.back().get(), v.back().get(), blocks, g.num_heads});
  }
  std::vector<int32_t> tables(batch * stride);
  for (int s = 0; s < batch; ++s) {
    for (size_t g = 0; g < rings.size(); ++g) {
      for (int64_t r = 0; r < rings[g]; ++r) tables[s * stride + offsets[g] + r] = static_cast<int32_t>(s * rings[g] + r);
    }
  }
  std::vector<int64_t> positions(batch, pos);
  std::vector<int32_t> seqs(batch);
  for (int s = 0; s < batch; ++s) seqs[s] = s;
  std::vector<float> q(batch * H * D, 0.1f), out(batch * H * D);
  *bytes = 0;
  const int64_t layers = c.num_hidden_layers;
  std::vector<std::vector<KvHeadDesc>> heads(layers);
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t h = 0; h < KV; ++h) {
      heads[l].push_back({c.kv_window(l, h), static_cast<int32_t>(layout.group_of[l][h]),
                          static_cast<int32_t>(layout.head_offset[l][h])});
      *bytes += 2.0 * batch * c.kv_window(l, h) * D * element;
    }
  }
  PagedKvParams p;
  p.num_tokens = batch;
  p.num_q_heads = H;
  p.num_kv_heads = KV;
  p.head_dim = D;
  p.block_size = B;
  p.positions = positions.data();
  p.seq_index = seqs.data();
  p.block_tables = tables.data();
  p.table_stride = stride;
  p.table_offsets = offsets.data();
  p.ring_sizes = rings.data();
  p.pools = pools.data();
  p.num_groups = static_cast<int32_t>(pools.size());
  p.kv_dtype = dtype;
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    for (int64_t l = 0; l < layers; ++l) {
      p.kv_heads = heads[l].data();
      PagedAttentionCpu(p, q.data(), H * D, 0.17f, out.data());
    }
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  return best;
}

// SmallLinear against BLAS (LibTorch's mm) on the default model's projection shapes, at the
// row counts of decode batches (best of 5 runs of 100 calls each).
void PrintSmallLinearFigures(const ModelConfig& c) {
  const int64_t E = c.hidden_size, F = c.intermediate_size;
  const int64_t qkv = (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim;
  for (int64_t rows : {1, 8, 16, 32, 64}) {
    double small_total = 0, blas_total = 0;
    for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{{E, qkv}, {E, 2 * F}, {F, E}, {E, c.vocab_size}}) {
      at::Tensor x = at::randn({rows, in}), w = at::randn({out, in}), w_t = w.t().contiguous();
      at::Tensor y = at::empty({rows, out});
      auto best = [](auto&& f) {
        double b = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
          const auto t0 = Clock::now();
          for (int i = 0; i < 100; ++i) f();
          b = std::min(b, Seconds(t0, Clock::now()) / 100);
        }
        return b;
      };
      small_total += best([&] {
        SmallLinear(x.data_ptr<float>(), rows, in, w.data_ptr<float>(), out, y.data_ptr<float>(), out, false);
      });
      blas_total += best([&] { at::mm_out(y, x, w_t); });
    }
    std::printf("projections of one layer + LM head at %2ld rows: SmallLinear %.1f us, BLAS %.1f us (%.2fx)\n",
                static_cast<long>(rows), small_total * 1e6, blas_total * 1e6, blas_total / small_total);
  }
}

void PrintAttentionFigures(const ModelConfig& c, double read_bandwidth) {
  for (int batch : {1, 32}) {
    double bytes = 0;
    const double f32 = AttentionSeconds(c, batch, KvDType::kF32, &bytes);
    std::printf("attention kernel, decode batch %d, windows full: %.1f GB/s in-window K/V; %.2f of read bandwidth\n",
                batch, bytes / f32 / 1e9, bytes / f32 / read_bandwidth);
    for (KvDType t : {KvDType::kF16, KvDType::kBF16}) {
      const double half = AttentionSeconds(c, batch, t, &bytes);
      std::printf("  %s KV: %.1f GB/s; %.2fx the fp32 kernel's speed\n", t == KvDType::kF16 ? "fp16" : "bf16",
                  bytes / half / 1e9, f32 / half);
    }
  }
}

int64_t RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

}  // namespace
}  // namespace mswa

int main(int argc, char** argv) {
  using namespace mswa;
  int64_t long_tokens = 20000;
  DirBenchOptions dir;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s\nwithout --model_dir: the default model's shape with random weights "
                  "[--long_tokens N]\n", kDirUsage);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n%s", flag.c_str(), kDirUsage);
      return 2;
    }
    const std::string value = argv[++i];
    bool ok = true;
    if (flag == "--long_tokens") {
      long_tokens = std::atoll(value.c_str());
    } else if (flag == "--model_dir") {
      dir.model_dir = value;
    } else if (flag == "--dtype") {
      auto t = ParseComputeDType(value);
      ok = t.ok();
      if (ok) dir.dtype = *t;
    } else if (flag == "--activation_dtype") {
      auto t = ParseActivationDType(value);
      ok = t.ok();
      if (ok) dir.activation_dtype = *t;
    } else if (flag == "--kv_cache_dtype") {
      auto t = ParseKvCacheDType(value);
      ok = t.ok();
      if (ok) dir.kv_dtype = *t;
    } else if (flag == "--int8_kernel") {
      ok = false;
      for (Int8Kernel k : {Int8Kernel::kAuto, Int8Kernel::kWidened, Int8Kernel::kAvx2, Int8Kernel::kAvx512Vnni,
                           Int8Kernel::kAmx}) {
        if (value == Int8KernelName(k)) {
          dir.int8_kernel = k;
          ok = true;
        }
      }
    } else if (flag == "--bf16_kernel") {
      ok = false;
      for (Bf16DotKernel k : {Bf16DotKernel::kAuto, Bf16DotKernel::kWidened, Bf16DotKernel::kAvx512Bf16,
                              Bf16DotKernel::kAmx}) {
        if (value == Bf16DotKernelName(k)) {
          dir.bf16_kernel = k;
          ok = true;
        }
      }
    } else if (flag == "--f32_layout") {
      ok = false;
      for (F32Layout l : {F32Layout::kAuto, F32Layout::kRows, F32Layout::kPanels48}) {
        if (value == F32LayoutName(l)) {
          dir.f32_layout = l;
          ok = true;
        }
      }
    } else if (flag == "--tests") {
      dir.tests.clear();
      for (absl::string_view t : absl::StrSplit(value, ',')) {
        ok = ok && (t == "pp512" || t == "tg128" || t == "batches" || t == "score2048");
        dir.tests.emplace_back(t);
      }
    } else if (flag == "--depth") {
      ok = absl::SimpleAtoi(value, &dir.depth) && dir.depth >= 0 && dir.depth <= (1 << 20);
    } else if (flag == "--repetitions") {
      ok = absl::SimpleAtoi(value, &dir.repetitions) && dir.repetitions > 0;
    } else if (flag == "--threads") {
      ok = absl::SimpleAtoi(value, &dir.threads) && dir.threads >= 0;
    } else if (flag == "--batches") {
      dir.batches.clear();
      for (absl::string_view b : absl::StrSplit(value, ',')) {
        int n = 0;
        ok = ok && absl::SimpleAtoi(b, &n) && n > 0;
        dir.batches.push_back(n);
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n%s", flag.c_str(), kDirUsage);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "bad value for %s: %s\n%s", flag.c_str(), value.c_str(), kDirUsage);
      return 2;
    }
  }
  if (!dir.model_dir.empty()) {
    if (!SetInt8Kernel(dir.int8_kernel)) {
      std::fprintf(stderr, "this CPU cannot run --int8_kernel %s\n", Int8KernelName(dir.int8_kernel));
      return 2;
    }
    if (!SetBf16DotKernel(dir.bf16_kernel)) {
      std::fprintf(stderr, "this CPU cannot run --bf16_kernel %s\n", Bf16DotKernelName(dir.bf16_kernel));
      return 2;
    }
    if (!SetF32Layout(dir.f32_layout)) {
      std::fprintf(stderr, "this CPU cannot run --f32_layout %s\n", F32LayoutName(dir.f32_layout));
      return 2;
    }
    if (dir.threads > 0) at::set_num_threads(dir.threads);
    else at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
    return RunModelDir(dir);
  }
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  const ModelConfig c = DefaultShapeConfig();
  const int64_t params = RandomModelWeights(c, 0).num_parameters();
  std::printf("model: hidden %ld, %ld layers, %ld heads, vocab %ld, %ld parameters; %d threads\n",
              static_cast<long>(c.hidden_size), static_cast<long>(c.num_hidden_layers),
              static_cast<long>(c.num_attention_heads), static_cast<long>(c.vocab_size),
              static_cast<long>(params), omp_get_max_threads());

  // Before the bandwidth probes, so that a profile shows only the decode.
  if (const char* only = std::getenv("MSWA_BENCH_DECODE_BATCH")) {  // for profiling one case
    const int batch = std::atoi(only);
    const char* dtype = std::getenv("MSWA_BENCH_DTYPE");
    const bool bf16 = dtype != nullptr && std::string(dtype) == "bfloat16";
    std::printf("decode batch %d%s: %.0f tokens/s\n", batch, bf16 ? " (bfloat16)" : "",
                DecodeTokensPerSecond(c, batch, 256, bf16 ? std::optional<at::ScalarType>(at::kBFloat16) : std::nullopt));
    return 0;
  }
  const double weight_bytes = static_cast<double>(params) * sizeof(float);
  const double bw = ReadBandwidth(size_t{512} << 20);
  const double bw_weights = ReadBandwidth(static_cast<size_t>(weight_bytes));
  const double flops = MatmulFlops();
  std::printf("read bandwidth %.1f GB/s (512 MiB), %.1f GB/s (a weights-sized %.1f MiB buffer); matmul %.1f GFLOP/s\n",
              bw / 1e9, bw_weights / 1e9, weight_bytes / (1 << 20), flops / 1e9);

  // Decode reads every weight once per step (the tied embedding/LM head once).
  const double roofline = bw / weight_bytes;
  const double roofline_cached = bw_weights / weight_bytes;
  if (std::getenv("MSWA_BENCH_ATTENTION")) {  // the attention kernel's figures alone
    PrintAttentionFigures(c, bw);
    return 0;
  }
  if (std::getenv("MSWA_BENCH_SCORE")) {  // scoring alone
    std::printf("score (prefill, 512-token steps): %.0f tokens/s\n", ScoreTokensPerSecond(c, 32768));
    return 0;
  }
  if (std::getenv("MSWA_BENCH_LINEAR")) {  // the matrix products' figures alone
    PrintSmallLinearFigures(c);
    return 0;
  }
  const double d1 = DecodeTokensPerSecond(c, 1, 256);
  std::printf("decode batch 1: %.0f tokens/s (%.3f ms/token); roofline %.0f tokens/s from DRAM "
              "(ratio %.2f), %.0f from a weights-sized buffer (ratio %.2f)\n",
              d1, 1e3 / d1, roofline, d1 / roofline, roofline_cached, d1 / roofline_cached);
  const double d1_bf16 = DecodeTokensPerSecond(c, 1, 256, at::kBFloat16);
  std::printf("decode batch 1, --dtype=bfloat16: %.0f tokens/s (%.2fx fp32); roofline %.0f tokens/s from DRAM (ratio %.2f)\n",
              d1_bf16, d1_bf16 / d1, 2 * roofline, d1_bf16 / (2 * roofline));
  const double d32 = DecodeTokensPerSecond(c, 32, 64);
  std::printf("decode batch 32: %.0f tokens/s; %.1fx batch 1\n", d32, d32 / d1);

  // FLOPs per scored token: 2 per weight (tied embedding counted once, as the LM head) plus
  // attention (QK and PV: 4 * window * head_dim per head).
  double attn_flops = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (int64_t h = 0; h < c.num_attention_heads; ++h) attn_flops += 4.0 * c.window(l, h) * c.head_dim;
  }
  const double flops_per_token = 2.0 * params + attn_flops;
  const double score = ScoreTokensPerSecond(c, 32768);
  std::printf("score (prefill, 512-token steps): %.0f tokens/s; matmul bound %.0f tokens/s; ratio %.2f\n",
              score, flops / flops_per_token, score / (flops / flops_per_token));

  PrintAttentionFigures(c, bw);
  PrintSmallLinearFigures(c);

  const KvLayout layout = BuildKvLayout(c);
  KvMemoryOptions kv{16, 512, 4};
  for (int64_t len : {4096, 32768, 131072}) {
    const double ours = KvBytesPerSequence(layout, c.head_dim, kv, len);
    const double full = FullAttentionKvBytes(c, 4, len);
    std::printf("KV bytes per sequence at %6ld tokens (fp32): %.2f MiB vs full attention %.1f MiB (%.0fx less)\n",
                static_cast<long>(len), ours / (1 << 20), full / (1 << 20), full / ours);
  }

  // One long generation: RSS must stay flat once the windows are full.
  auto engine = MakeEngine(c, 512);
  GenerateOptions g;
  g.max_tokens = static_cast<int32_t>(long_tokens);
  g.ignore_eos = true;
  g.sampling.seed = 1;
  (void)engine->SubmitGenerate({1, 2, 3}, g, [](EngineEvent) {});
  // Live blocks wobble with where the windows fall against block edges, so compare the peak
  // over tokens 2000..4000 (every window long full) with the peak over the whole run.
  int64_t rss_early = 0, peak_early = 0, peak_all = 0;
  while (engine->Step()) {
    const auto st = engine->stats();
    int64_t live = 0;
    for (const auto& grp : st.groups) live += grp.used_blocks;
    if (st.generated_tokens == 2000) rss_early = RssKiB();
    if (st.generated_tokens >= 2000 && st.generated_tokens <= 4000) peak_early = std::max(peak_early, live);
    if (st.generated_tokens < long_tokens) peak_all = std::max(peak_all, live);
  }
  std::printf("long generation of %ld tokens: RSS %.1f MiB after 2000 tokens, %.1f MiB at the end; "
              "peak live KV blocks %ld (tokens 2000-4000) vs %ld (whole run)\n",
              static_cast<long>(long_tokens), rss_early / 1024.0, RssKiB() / 1024.0,
              static_cast<long>(peak_early), static_cast<long>(peak_all));
  return 0;
}
