// Prefix caching: requests that share a long prefix (a system prompt, a document) and differ in
// a short question, with the cache and without, on one model directory. Prints, per mode:
//   - TTFT of the first request (it computes the prefix either way) and the median TTFT of the
//     requests after it, one at a time;
//   - throughput of `--concurrent` such requests submitted together (requests/s, tokens/s);
// and the KV memory a hit on the whole prefix needs per window group (windowed groups only the
// blocks their window still sees at the cut) beside the blocks the cache holds after the run.
// The engine runs on this thread (Step in a loop), so timings are the engine's own.
//
//   build/bench/prefix_cache_bench [--model_dir DIR] [--prefix 2000] [--question 50]
//                                  [--requests 5] [--concurrent 8] [--max_tokens 16]
//                                  [--dtype auto|float32|bfloat16|int8] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "model/runtime/device_options.h"
#include "server/engine.h"
#include "server/model_loader.h"

namespace mswa {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Options {
  std::string model_dir = MSWA_SOURCE_DIR "/models/mswa-books-small";
  int prefix = 2000;
  int question = 50;
  int requests = 5;
  int concurrent = 8;
  int max_tokens = 16;
  std::optional<at::ScalarType> dtype;
  int threads = 0;
};

constexpr char kUsage[] =
    "usage: prefix_cache_bench [--model_dir DIR] [--prefix N] [--question N] [--requests N]\n"
    "                          [--concurrent N] [--max_tokens N]\n"
    "                          [--dtype auto|float32|bfloat16|int8] [--threads N]\n"
    "TTFT and throughput of requests sharing an N-token prefix, with and without prefix\n"
    "caching (default: the shipped model, a 2000-token prefix and 50-token questions).\n";

struct Figures {
  double first_ttft = 0, median_ttft = 0, requests_per_s = 0, tokens_per_s = 0;
  int64_t hit_tokens = 0;
  std::vector<int64_t> cached_blocks;
};

// Random token ids below the vocabulary, excluding special ids (BOS/EOS at the top of a
// byte vocabulary; any id of a larger one).
std::vector<int32_t> RandomTokens(int n, int64_t vocab, std::mt19937& rng) {
  std::vector<int32_t> t(n);
  const int64_t range = std::min<int64_t>(vocab, 256);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % range);
  return t;
}

// Submits `prompts` at once and steps the engine until all finish; returns each one's TTFT.
std::vector<double> RunBatch(Engine& e, const std::vector<std::vector<int32_t>>& prompts,
                             int max_tokens, int64_t* generated) {
  std::vector<double> ttft(prompts.size(), -1);
  size_t done = 0;
  const Clock::time_point t0 = Clock::now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateOptions g;
    g.max_tokens = max_tokens;
    g.ignore_eos = true;
    g.sampling.temperature = 0;
    auto id = e.SubmitGenerate(prompts[i], g, [&, i](EngineEvent ev) {
      if (ttft[i] < 0 && (!ev.token_ids.empty() || ev.finished)) ttft[i] = Seconds(t0, Clock::now());
      *generated += static_cast<int64_t>(ev.token_ids.size());
      if (ev.finished) {
        if (!ev.error.ok()) {
          std::fprintf(stderr, "prefix_cache_bench: %s\n", std::string(ev.error.message()).c_str());
          std::exit(1);
        }
        ++done;
      }
    });
    if (!id.ok()) {
      std::fprintf(stderr, "prefix_cache_bench: %s\n", std::string(id.status().message()).c_str());
      std::exit(1);
    }
  }
  while (done < prompts.size()) e.Step();
  return ttft;
}

Figures Measure(const Options& opt, bool caching) {
  EngineOptions o;
  o.enable_prefix_caching = caching;
  o.dtype = opt.dtype;
  o.num_threads = opt.threads;
  o.max_model_len = std::max<int64_t>(4096, opt.prefix + opt.question + opt.max_tokens + 16);
  o.kv_cache_bytes = int64_t{2} << 30;
  auto engine = LoadEngine(opt.model_dir, o);
  if (!engine.ok()) {
    std::fprintf(stderr, "prefix_cache_bench: %s\n", std::string(engine.status().message()).c_str());
    std::exit(1);
  }
  Engine& e = **engine;
  std::mt19937 rng(7);
  const int64_t vocab = e.config().vocab_size;
  const std::vector<int32_t> prefix = RandomTokens(opt.prefix, vocab, rng);
  auto prompt = [&]() {
    std::vector<int32_t> p = prefix;
    const std::vector<int32_t> q = RandomTokens(opt.question, vocab, rng);
    p.insert(p.end(), q.begin(), q.end());
    return p;
  };
  Figures f;
  int64_t generated = 0;
  f.first_ttft = RunBatch(e, {prompt()}, opt.max_tokens, &generated)[0];
  std::vector<double> ttfts;
  for (int i = 0; i < opt.requests; ++i) {
    ttfts.push_back(RunBatch(e, {prompt()}, opt.max_tokens, &generated)[0]);
  }
  std::sort(ttfts.begin(), ttfts.end());
  f.median_ttft = ttfts.empty() ? 0 : ttfts[ttfts.size() / 2];
  std::vector<std::vector<int32_t>> batch;
  for (int i = 0; i < opt.concurrent; ++i) batch.push_back(prompt());
  generated = 0;
  const Clock::time_point t0 = Clock::now();
  RunBatch(e, batch, opt.max_tokens, &generated);
  const double s = Seconds(t0, Clock::now());
  f.requests_per_s = opt.concurrent / s;
  f.tokens_per_s = static_cast<double>(generated) / s;
  const EngineStats stats = e.stats();
  f.hit_tokens = stats.prefix_hit_tokens;
  for (const EngineStats::Group& g : stats.groups) f.cached_blocks.push_back(g.cached_blocks);
  if (caching) {
    // What a hit on the whole prefix needs per group, beside what the cache holds now.
    const EngineInfo info = e.Info();
    const int64_t block = info.kv_block_size;
    const int64_t elem = KvDTypeBytes(e.kv_dtype());
    std::printf("KV a hit on the %d-token prefix needs, per window group (block %lld tokens):\n",
                opt.prefix, static_cast<long long>(block));
    std::printf("  %-9s %8s %12s %12s %14s\n", "window", "kv_heads", "needed", "needed MiB",
                "cached blocks");
    for (int g = 0; g < e.kv().num_groups(); ++g) {
      const int64_t cut = opt.prefix / block * block;
      const LogicalBlockRange need = e.kv().group(g).NeededBlocks(cut);
      const EngineInfo::WindowGroup& wg = info.window_groups[g];
      const double mib = static_cast<double>(need.size()) * 2 * wg.kv_heads * block *
                         e.config().head_dim * elem / (1 << 20);
      std::printf("  %-9s %8lld %12lld %12.2f %14lld\n",
                  wg.window == 0 ? "full" : std::to_string(wg.window).c_str(),
                  static_cast<long long>(wg.kv_heads), static_cast<long long>(need.size()), mib,
                  static_cast<long long>(f.cached_blocks[g]));
    }
    std::printf("\n");
  }
  return f;
}

bool ParseInt(const char* arg, const char* name, int* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = std::atoi(arg + n + 1);
  return true;
}

}  // namespace
}  // namespace mswa

int main(int argc, char** argv) {
  using namespace mswa;
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    // "--flag value" as well as "--flag=value".
    if (a.find('=') == std::string::npos && a != "--help" && i + 1 < argc) a += "=" + std::string(argv[++i]);
    const char* s = a.c_str();
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a.rfind("--model_dir=", 0) == 0) {
      opt.model_dir = a.substr(12);
    } else if (a.rfind("--dtype=", 0) == 0) {
      auto d = ParseComputeDType(a.substr(8));
      if (!d.ok()) {
        std::fprintf(stderr, "prefix_cache_bench: %s\n", std::string(d.status().message()).c_str());
        return 1;
      }
      opt.dtype = *d;  // unset for "auto"
    } else if (!ParseInt(s, "--prefix", &opt.prefix) && !ParseInt(s, "--question", &opt.question) &&
               !ParseInt(s, "--requests", &opt.requests) &&
               !ParseInt(s, "--concurrent", &opt.concurrent) &&
               !ParseInt(s, "--max_tokens", &opt.max_tokens) && !ParseInt(s, "--threads", &opt.threads)) {
      std::fprintf(stderr, "prefix_cache_bench: unknown argument %s\n%s", argv[i], kUsage);
      return 1;
    }
  }
  if (opt.prefix < 1 || opt.question < 1 || opt.requests < 1 || opt.concurrent < 1 || opt.max_tokens < 1) {
    std::fprintf(stderr, "prefix_cache_bench: sizes must be >= 1\n%s", kUsage);
    return 1;
  }
  std::printf("model %s: prefix %d tokens + question %d tokens, %d tokens generated each\n\n",
              opt.model_dir.c_str(), opt.prefix, opt.question, opt.max_tokens);
  const Figures off = Measure(opt, false);
  const Figures on = Measure(opt, true);
  std::printf("| %-8s | %14s | %16s | %12s | %12s | %12s |\n", "cache", "first TTFT ms",
              "median TTFT ms", "requests/s", "tokens/s", "hit tokens");
  std::printf("|----------|----------------|------------------|--------------|--------------|--------------|\n");
  for (const auto& [name, f] : {std::pair<const char*, const Figures&>{"off", off}, {"on", on}}) {
    std::printf("| %-8s | %14.1f | %16.1f | %12.2f | %12.1f | %12lld |\n", name, f.first_ttft * 1e3,
                f.median_ttft * 1e3, f.requests_per_s, f.tokens_per_s,
                static_cast<long long>(f.hit_tokens));
  }
  std::printf("\nTTFT %.1fx lower with the cache (median), throughput %.1fx\n",
              off.median_ttft / std::max(on.median_ttft, 1e-9),
              on.requests_per_s / std::max(off.requests_per_s, 1e-9));
  return 0;
}
