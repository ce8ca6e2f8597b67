#include "bench/model_dir_bench.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <fstream>
#include <random>
#include <sstream>

#include "bench/bench_probes.h"
#include "model/format/weights.h"
#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"

namespace mswa {

const char kDirUsage[] =
    "usage: engine_bench --model_dir DIR [--dtype auto|float32|bfloat16|int8|q4]\n"
    "                    [--activation_dtype auto|float32|bfloat16]\n"
    "                    [--kv_cache_dtype auto|float32|float16|bfloat16] [--threads N]\n"
    "                    [--batches 8,32]\n"
    "                    [--int8_kernel auto|widened|avx2|avx512vnni|amxint8]\n"
    "                    [--bf16_kernel auto|widened|avx512bf16|amxbf16]\n"
    "                    [--f32_layout auto|rows|panels48]\n"
    "                    [--tests pp512,tg128,batches,score2048] [--repetitions 3]\n"
    "                    [--depth N]\n"
    "Prefill of 512 tokens (pp512), decode of 128 tokens at batch 1 (tg128) and at each\n"
    "batch, and scoring of 2,048 tokens (score2048), in tokens/s, beside the weights' DRAM\n"
    "roofline and the matmul FLOP/s measured in the same run. Weights are the directory's;\n"
    "token ids are random. --int8_kernel forces how int8 products run (widened: exact fp32\n"
    "products of the dequantized weights); --bf16_kernel how products with bfloat16\n"
    "activations run; --f32_layout how fp32 matrices are laid out (panels48 where AVX-512\n"
    "runs). --tests runs a subset (to profile one row);\n"
    "pp512 is the best of --repetitions prompts. --depth N decodes after N tokens of context\n"
    "(llama-bench's -d; the rows are named tg128 @ dN), the prompt prefilled untimed.\n";

namespace {

// Matmul FLOP/s at the shape of `c`'s MLP for a 512-token step, best of 5.
double ModelMatmulFlops(const ModelConfig& c) {
  at::Tensor a = at::randn({512, c.hidden_size}), w = at::randn({2 * c.intermediate_size, c.hidden_size});
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; ++i) at::linear(a, w);
    const double s = Seconds(t0, Clock::now());
    best = std::max(best, 5 * 2.0 * 512 * c.hidden_size * 2 * c.intermediate_size / s);
  }
  return best;
}

}  // namespace

int RunModelDir(const DirBenchOptions& opt) {
  auto config = LoadModelConfig(opt.model_dir);
  if (!config.ok()) {
    // Directories without tokenizer files benchmark as well: parse config.json alone.
    std::ifstream in(opt.model_dir + "/config.json");
    std::stringstream text;
    text << in.rdbuf();
    config = ParseModelConfig(text.str(), opt.model_dir + "/config.json");
  }
  if (!config.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  const ModelConfig& c = *config;
  auto weights = LoadModelWeights(opt.model_dir, c, std::nullopt);
  if (!weights.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", std::string(weights.status().message()).c_str());
    return 1;
  }
  const int64_t params = weights->num_parameters();
  const at::ScalarType stored = weights->dtype();
  EngineOptions o;
  o.enable_prefix_caching = PrefixCaching();
  o.dtype = opt.dtype;
  o.activation_dtype = opt.activation_dtype;
  o.kv_cache_dtype = opt.kv_dtype;
  o.num_threads = opt.threads;
  o.max_tokens_per_step = 512;
  // The 2,048 scored tokens with a full-attention layer, and the decode rows' context.
  const int64_t context = std::max(16, opt.depth) + 129;
  o.max_model_len = std::max<int64_t>(4096, context);
  o.max_new_tokens = 1 << 20;
  const int max_batch = *std::max_element(opt.batches.begin(), opt.batches.end());
  // Room for the largest batch at 512 + 128 tokens each, and for one sequence of max_model_len
  // plus a step (the engine's own minimum), in the largest KV type.
  const int64_t token_bytes = int64_t{2} * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4;
  o.kv_cache_bytes = std::max({int64_t{64} << 20, static_cast<int64_t>(max_batch + 1) * (context + 576) * token_bytes,
                               (o.max_model_len + o.max_tokens_per_step) * token_bytes});
  auto engine = Engine::Create(c, std::move(*weights), std::make_unique<ByteTokenizer>(), o);
  if (!engine.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  Engine& e = **engine;
  const at::ScalarType compute = e.dtype();
  // What a step reads and multiplies: the embedding is only looked up, so an untied one is not
  // read as a matrix; the LM head is multiplied for every decoded token but, in a prompt, only
  // for its last one.
  const double embed = static_cast<double>(c.vocab_size) * c.hidden_size;
  const double decode_params = params - (c.tie_word_embeddings ? 0 : embed);
  const double prefill_params = decode_params - embed;
  // q4: the layers' matrices at half a byte a weight, the LM head (and a tied embedding) int8.
  const double int8_bytes = 1 + 4.0 / kInt8Group, q4_bytes = 0.5 + 4.0 / kInt8Group;
  const double weight_bytes =
      compute == at::kQUInt4x2 ? (decode_params - embed) * q4_bytes + embed * int8_bytes
                               : decode_params * (compute == at::kFloat  ? 4
                                                  : compute == at::kChar ? int8_bytes
                                                                         : 2);
  // The matmul probe once before and once after the bandwidth probe, the better of the two: on
  // a shared machine one probe in a few read half the usual figure.
  const double flops_first = ModelMatmulFlops(c);
  const double bw = ReadBandwidth(size_t{512} << 20);
  const double flops = std::max(flops_first, ModelMatmulFlops(c));
  const bool bf16_activations = e.activation_dtype() == at::kBFloat16;
  const bool int8_kernel = compute == at::kChar || compute == at::kQUInt4x2;
  // "bf16a": bfloat16 weights and activations.
  const char* dtype_name = bf16_activations          ? "bf16a"
                           : compute == at::kBFloat16 ? "bf16"
                           : compute == at::kChar     ? "int8"
                           : compute == at::kQUInt4x2 ? "q4"
                                                      : "f32";
  std::printf("model %s: %s, %.1f M parameters (%s stored), %s compute%s%s, %s KV, %d threads\n",
              opt.model_dir.c_str(), c.model_type.c_str(), params / 1e6,
              stored == at::kBFloat16 ? "bf16" : stored == at::kHalf ? "f16" : "f32", dtype_name,
              int8_kernel        ? " with the int8 kernel "
              : bf16_activations ? " (bf16 activations) with the kernel "
              : compute == at::kFloat ? " with matrices in layout "
                                 : "",
              int8_kernel        ? Int8KernelName(Int8KernelFor(1, c.hidden_size))
              : bf16_activations ? Bf16DotKernelName(Bf16DotKernelNow())
              : compute == at::kFloat ? F32LayoutName(F32LayoutNow())
                                 : "",
              KvDTypeName(e.kv_dtype()), omp_get_max_threads());
  std::printf("read bandwidth %.1f GB/s (512 MiB); matmul %.1f GFLOP/s at the MLP's shape\n\n",
              bw / 1e9, flops / 1e9);

  std::mt19937 rng(1);
  auto prompt = [&](int n) {
    std::vector<int32_t> p(n);
    for (int32_t& t : p) t = static_cast<int32_t>(rng() % c.vocab_size);
    return p;
  };
  auto run = [&]() {
    while (e.Step()) {
    }
  };
  // pp512: one 512-token prompt in one step (best of 3).
  double pp = 0;
  for (int rep = 0; rep < (opt.Runs("pp512") ? opt.repetitions : 0); ++rep) {
    GenerateOptions g;
    g.max_tokens = 1;
    g.ignore_eos = true;
    (void)e.SubmitGenerate(prompt(512), g, [](EngineEvent) {});
    const auto t0 = Clock::now();
    run();
    pp = std::max(pp, 512 / Seconds(t0, Clock::now()));
  }
  // tg128 at each batch: prompts of 16 tokens (or --depth) prefilled first, then 128 decode
  // steps timed.
  const int prompt_tokens = opt.depth > 0 ? opt.depth : 16;
  auto decode = [&](int batch, int tokens = 128) {
    GenerateOptions g;
    g.max_tokens = tokens + 1;
    g.ignore_eos = true;
    g.sampling.temperature = 0;
    for (int i = 0; i < batch; ++i) (void)e.SubmitGenerate(prompt(prompt_tokens), g, [](EngineEvent) {});
    // Admission, prefill and each request's first token: until every request has its first.
    const int64_t first = e.stats().generated_tokens;
    while (e.stats().generated_tokens < first + batch && e.Step()) {
    }
    const int64_t before = e.stats().generated_tokens;
    const auto t0 = Clock::now();
    run();
    return (e.stats().generated_tokens - before) / Seconds(t0, Clock::now());
  };
  // A short decode first, untimed (as llama-bench warms up): the first decode steps of a
  // process ran up to 1.9x slower than later ones (lazy symbol binding, the OpenMP workers'
  // first wake-ups, first-touched pages), which tg128 measured as the engine's speed.
  if (opt.Runs("tg128") || opt.Runs("batches")) (void)decode(1, 16);
  const double tg1 = opt.Runs("tg128") || opt.Runs("batches") ? decode(1) : 0;
  const double flops_per_token = 2.0 * decode_params;
  const double roofline = bw / weight_bytes;
  std::printf("| %-14s | %8s | %6s | %-18s | %10s | %-26s |\n", "model", "params", "type", "test", "t/s",
              "vs bound");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(16, '-').c_str(), std::string(10, '-').c_str(),
              std::string(8, '-').c_str(), std::string(20, '-').c_str(), std::string(12, '-').c_str(),
              std::string(28, '-').c_str());
  auto row = [&](const char* test, double tps, const std::string& bound) {
    std::printf("| %-14s | %7.1fM | %6s | %-18s | %10.1f | %-26s |\n", c.model_type.c_str(), params / 1e6,
                dtype_name, test, tps, bound.c_str());
  };
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.2f of matmul FLOP/s", pp * 2.0 * prefill_params / flops);
  if (opt.Runs("pp512")) row("pp512", pp, buf);
  std::snprintf(buf, sizeof buf, "%.2f of DRAM roofline", tg1 / roofline);
  const std::string at_depth = opt.depth > 0 ? " @ d" + std::to_string(opt.depth) : "";
  if (opt.Runs("tg128")) row(("tg128" + at_depth).c_str(), tg1, buf);
  for (int batch : opt.Runs("batches") ? opt.batches : std::vector<int>{}) {
    const double tb = decode(batch);
    std::snprintf(buf, sizeof buf, "%.1fx b1; %.2f of FLOP/s", tb / tg1, tb * flops_per_token / flops);
    const std::string name = "tg128 b" + std::to_string(batch) + at_depth;
    row(name.c_str(), tb, buf);
  }
  // Scoring: 2,048 tokens in 512-token steps, logits and a log-softmax over the whole
  // vocabulary for every token (the Score RPC's work), against the same FLOP/s.
  if (opt.Runs("score2048")) {
    const int64_t n = 2048;
    auto id = e.SubmitScore(ScoreOptions{}, n, [](EngineEvent) {});
    if (id.ok() && e.FeedScore(*id, prompt(n), n, true).ok()) {
      const int64_t before = e.stats().scored_tokens;
      const auto t0 = Clock::now();
      run();
      const double st = (e.stats().scored_tokens - before) / Seconds(t0, Clock::now());
      std::snprintf(buf, sizeof buf, "%.2f of matmul FLOP/s", st * flops_per_token / flops);
      row("score2048", st, buf);
    } else {
      std::fprintf(stderr, "engine_bench: scoring refused: %s\n", std::string(id.status().message()).c_str());
    }
  }
  return 0;
}

}  // namespace mswa
