// Time to first token of short Generate requests while long scoring jobs run, against the same
// requests on an idle engine: what the scheduler's fairness buys (server/engine/scheduler.h).
// The engine runs on its own thread as in the server; the default model's shape with random
// weights.
//
//   build/bench/fairness_bench [--samples N] [--jobs 1,4,16]
//   MSWA_BENCH_STEP, MSWA_BENCH_INTERACTIVE_STEP, MSWA_BENCH_PROMPT_STEP_BULK: the engine's
//   max_tokens_per_step, interactive_step_tokens and prompt_step_bulk_tokens
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "bench/default_shape.h"
#include "model/tokenizer/byte_tokenizer.h"
#include "server/engine.h"

namespace mswa {
namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  double p50 = 0, p99 = 0, step_ms = 0;
};

// `samples` short Generates (16-token prompt, 4 tokens), one after another, while `jobs`
// scoring requests of `job_tokens` tokens each run.
Figures Measure(Engine& engine, int jobs, int samples) {
  std::vector<int32_t> text(1 << 20);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>((i * 2654435761u) >> 24) % 256;
  std::vector<int64_t> ids;
  for (int j = 0; j < jobs; ++j) {
    auto id = engine.SubmitScore(ScoreOptions{}, static_cast<int64_t>(text.size()), [](EngineEvent) {});
    if (!id.ok() || !engine.FeedScore(*id, text, static_cast<int64_t>(text.size()), true).ok()) {
      std::fprintf(stderr, "fairness_bench: cannot start a scoring job\n");
      std::exit(1);
    }
    ids.push_back(*id);
  }
  if (jobs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));  // jobs under way
  std::vector<double> ttft;
  std::mt19937 rng(jobs * 7919 + 1);
  for (int s = 0; s < samples; ++s) {
    GenerateOptions g;
    g.max_tokens = 4;
    g.ignore_eos = true;
    std::vector<int32_t> prompt(16);
    for (int i = 0; i < 16; ++i) prompt[i] = (s * 13 + i * 7) % 256;
    absl::Notification first, done;
    Clock::time_point t0 = Clock::now(), t1;
    bool got_first = false;
    auto id = engine.SubmitGenerate(prompt, g, [&](EngineEvent e) {
      if (!got_first && (!e.token_ids.empty() || e.finished)) {
        got_first = true;
        t1 = Clock::now();
        first.Notify();
      }
      if (e.finished) done.Notify();
    });
    if (!id.ok()) std::exit(1);
    done.WaitForNotification();
    ttft.push_back(std::chrono::duration<double>(t1 - t0).count());
    // The next arrival at a random phase of the engine's steps (0-100 ms later).
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100000));
  }
  for (int64_t id : ids) engine.Cancel(id);
  while (engine.stats().running > 0 || engine.stats().waiting > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::sort(ttft.begin(), ttft.end());
  Figures f;
  f.p50 = ttft[ttft.size() / 2] * 1e3;
  f.p99 = ttft[std::min(ttft.size() - 1, static_cast<size_t>(ttft.size() * 0.99))] * 1e3;
  return f;
}

}  // namespace
}  // namespace mswa

int main(int argc, char** argv) {
  using namespace mswa;
  int samples = 100;
  std::vector<int> jobs = {1, 4, 16};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--samples") == 0) samples = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--jobs") == 0) {
      jobs.clear();
      for (const char* p = argv[i + 1]; *p;) {
        jobs.push_back(std::atoi(p));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    }
  }
  const ModelConfig c = DefaultShapeConfig();
  EngineOptions o;
  o.kv_cache_bytes = int64_t{512} << 20;
  if (const char* v = std::getenv("MSWA_BENCH_INTERACTIVE_STEP")) o.interactive_step_tokens = std::atoi(v);
  if (const char* v = std::getenv("MSWA_BENCH_STEP")) o.max_tokens_per_step = std::atoi(v);
  if (const char* v = std::getenv("MSWA_BENCH_PROMPT_STEP_BULK")) o.prompt_step_bulk_tokens = std::atoi(v);
  double step_seconds_max = 0;
  int64_t full_steps = 0;
  double full_step_seconds = 0;
  auto engine = Engine::Create(c, RandomModelWeights(c, 0), std::make_unique<ByteTokenizer>(), o);
  if (!engine.ok()) return 1;
  (*engine)->SetStepObserver([&](double s, int64_t tokens) {
    step_seconds_max = std::max(step_seconds_max, s);
    if (tokens == o.max_tokens_per_step) {
      ++full_steps;
      full_step_seconds += s;
    }
  });
  (*engine)->Start();
  const Figures idle = Measure(**engine, 0, samples);
  std::printf("idle: TTFT p50 %.2f ms, p99 %.2f ms (%d short Generates: 16-token prompt, 4 tokens)\n",
              idle.p50, idle.p99, samples);
  for (int j : jobs) {
    full_steps = 0;
    full_step_seconds = 0;
    const Figures busy = Measure(**engine, j, samples);
    const double step_ms = full_steps > 0 ? full_step_seconds / full_steps * 1e3 : 0;
    std::printf("%2d scoring jobs: TTFT p50 %.2f ms, p99 %.2f ms; full %ld-token step %.1f ms; "
                "p99 / (3 x idle p50 + one step) = %.2f\n",
                j, busy.p50, busy.p99, static_cast<long>(o.max_tokens_per_step), step_ms,
                busy.p99 / (3 * idle.p50 + step_ms));
  }
  (*engine)->Shutdown();
  return 0;
}
