#include "client/bench.h"
#include "client/http_bench_call.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <fstream>
#include <memory>
#include <numeric>
#include <thread>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mswa::client {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Shared by the dispatcher (RunBench) and the calls' gRPC callbacks.
struct BenchState {
  absl::Mutex mu;
  int64_t in_flight ABSL_GUARDED_BY(mu) = 0;
  std::vector<RequestRecord> records ABSL_GUARDED_BY(mu);
};

// One Generate request on the callback API; records its timeline and deletes itself in OnDone
// (the last callback gRPC makes), after handing the record over.
class BenchCall final : public grpc::ClientReadReactor<mswa::v1::GenerateResponse> {
 public:
  BenchCall(BenchState* state, Clock::time_point t0, mswa::v1::GenerateRequest request)
      : state_(state), t0_(t0), request_(std::move(request)) {}

  void Start(MswaClient& client) {
    record_.start_s = SecondsSince(t0_);
    client.StartGenerate(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // end of stream; OnDone follows
    const double now = SecondsSince(t0_);
    const int32_t tokens = response_.token_ids_size();
    if (tokens > 0 || !response_.text().empty()) {
      record_.events.push_back({now, std::max(tokens, 1)});
    }
    if (response_.has_usage()) {
      record_.prompt_tokens = response_.usage().prompt_tokens();
      record_.completion_tokens = response_.usage().completion_tokens();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.end_s = SecondsSince(t0_);
    record_.ok = status.ok();
    record_.status_code = status.error_code();
    if (!status.ok()) record_.error = status.error_message();
    // The call (its ClientContext) is destroyed before the dispatcher can see it finished: once
    // in_flight reaches 0 RunBench returns, and the caller may drop the channel and exit while a
    // context destroyed afterwards still releases references into it.
    BenchState* const state = state_;
    RequestRecord record = std::move(record_);
    delete this;
    absl::MutexLock lock(&state->mu);
    state->records.push_back(std::move(record));
    --state->in_flight;
  }

 private:
  BenchState* const state_;
  const Clock::time_point t0_;
  grpc::ClientContext context_;
  const mswa::v1::GenerateRequest request_;
  mswa::v1::GenerateResponse response_;
  RequestRecord record_;
};

}  // namespace

// ---- options, arrivals, prompts ----------------------------------------------------------------

absl::Status BenchOptions::Validate() const {
  if (concurrency < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency must be >= 0 (0 = unbounded), got ", concurrency));
  }
  if (std::isnan(request_rate) || request_rate <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_rate must be > 0 requests/s (inf = all at once), got ",
                     request_rate));
  }
  if (num_requests < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_requests must be >= 0, got ", num_requests));
  }
  if (!std::isfinite(duration_seconds) || duration_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration must be >= 0 seconds, got ", duration_seconds));
  }
  if (num_requests == 0 && duration_seconds == 0) {
    return absl::InvalidArgumentError("bench needs num_requests and/or duration");
  }
  if (std::isinf(request_rate) && concurrency == 0 && num_requests == 0) {
    return absl::InvalidArgumentError(
        "an infinite request_rate without concurrency needs num_requests (it would start "
        "requests without limit)");
  }
  if (prompts_file.empty() && prompt_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("prompt_len must be >= 1, got ", prompt_len));
  }
  if (output_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("output_len must be >= 1, got ", output_len));
  }
  return absl::OkStatus();
}

double PoissonArrivals::NextGapSeconds() {
  if (std::isinf(rate_)) return 0;
  // u in [0, 1) with 53 random bits; -ln(1 - u) / rate is exponential with mean 1 / rate.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  return -std::log1p(-u) / rate_;
}

std::string SyntheticPrompt(int32_t length, uint64_t seed) {
  static constexpr const char* kWords[] = {
      "the",   "of",    "and",    "to",     "in",    "a",     "is",     "that",
      "for",   "it",    "as",     "was",    "with",  "be",    "by",     "on",
      "not",   "he",    "this",   "are",    "or",    "his",   "from",   "at",
      "which", "but",   "have",   "an",     "had",   "they",  "you",    "were",
      "their", "one",   "all",    "we",     "can",   "her",   "has",    "there",
      "been",  "if",    "more",   "when",   "will",  "would", "who",    "so",
      "window", "attention", "model", "token", "layer", "cache", "server", "text"};
  constexpr uint64_t kNumWords = std::size(kWords);
  if (length <= 0) return "";
  std::string prompt;
  prompt.reserve(static_cast<size_t>(length) + 16);
  uint64_t state = seed;
  while (prompt.size() < static_cast<size_t>(length)) {
    if (!prompt.empty()) prompt += ' ';
    state = SplitMix64(state);
    prompt += kWords[state % kNumWords];
  }
  prompt.resize(static_cast<size_t>(length));
  if (prompt.back() == ' ') prompt.back() = 'a';
  return prompt;
}

absl::StatusOr<std::vector<std::string>> LoadPrompts(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open prompts file '", path, "'"));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(file, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(std::move(line));
  }
  if (prompts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("prompts file '", path, "' has no prompt"));
  }
  return prompts;
}

// ---- statistics --------------------------------------------------------------------------------

RequestLatencies ComputeLatencies(const RequestRecord& record) {
  RequestLatencies out;
  out.e2e_s = record.end_s - record.start_s;
  int64_t streamed = 0;
  for (size_t i = 0; i < record.events.size(); ++i) {
    const RequestRecord::TokenEvent& event = record.events[i];
    streamed += event.tokens;
    if (i == 0) {
      out.ttft_s = event.time_s - record.start_s;
      out.has_first_token = true;
      continue;
    }
    const double per_token = (event.time_s - record.events[i - 1].time_s) / event.tokens;
    out.itl_s.insert(out.itl_s.end(), static_cast<size_t>(event.tokens), per_token);
  }
  out.output_tokens = record.completion_tokens >= 0 ? record.completion_tokens : streamed;
  return out;
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const double position = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

LatencyStats SummarizeLatencies(std::vector<double> samples_s) {
  LatencyStats stats;
  stats.count = static_cast<int64_t>(samples_s.size());
  if (samples_s.empty()) {
    stats.mean_ms = stats.median_ms = stats.p99_ms = std::nan("");
    return stats;
  }
  std::sort(samples_s.begin(), samples_s.end());
  const double sum = std::accumulate(samples_s.begin(), samples_s.end(), 0.0);
  stats.mean_ms = 1000 * sum / static_cast<double>(samples_s.size());
  stats.median_ms = 1000 * Percentile(samples_s, 0.5);
  stats.p99_ms = 1000 * Percentile(samples_s, 0.99);
  return stats;
}

BenchReport MakeReport(const std::vector<RequestRecord>& records, double duration_s) {
  BenchReport report;
  report.duration_s = duration_s;
  std::vector<double> ttft, itl, e2e;
  for (const RequestRecord& record : records) {
    if (!record.ok) {
      ++report.failed;
      BenchReport::Errors& errors = report.errors[StatusCodeName(record.status_code)];
      if (errors.count++ == 0) errors.example = record.error;
      continue;
    }
    ++report.completed;
    const RequestLatencies latencies = ComputeLatencies(record);
    if (latencies.has_first_token) ttft.push_back(latencies.ttft_s);
    itl.insert(itl.end(), latencies.itl_s.begin(), latencies.itl_s.end());
    e2e.push_back(latencies.e2e_s);
    report.total_input_tokens += record.prompt_tokens;
    report.total_output_tokens += latencies.output_tokens;
  }
  if (duration_s > 0) {
    report.request_throughput = static_cast<double>(report.completed) / duration_s;
    report.output_throughput = static_cast<double>(report.total_output_tokens) / duration_s;
  }
  report.ttft = SummarizeLatencies(std::move(ttft));
  report.itl = SummarizeLatencies(std::move(itl));
  report.e2e = SummarizeLatencies(std::move(e2e));
  return report;
}

// ---- report text -------------------------------------------------------------------------------

std::string FormatReport(const BenchReport& report) {
  const auto row = [](const std::string& label, const std::string& value) {
    return absl::StrFormat("%-40s %s\n", label, value);
  };
  const auto num = [](double v, int decimals) {
    return std::isfinite(v) ? absl::StrFormat("%.*f", decimals, v) : std::string("-");
  };
  const auto section = [](const std::string& title) {
    const std::string padded = " " + title + " ";
    const size_t left = (50 - std::min<size_t>(padded.size(), 50)) / 2;
    const size_t right = 50 - std::min<size_t>(padded.size(), 50) - left;
    return absl::StrCat(std::string(left, '-'), padded, std::string(right, '-'), "\n");
  };
  const auto latency = [&](const std::string& name, const std::string& title,
                           const LatencyStats& stats) {
    return absl::StrCat(section(title), row("Mean " + name + " (ms):", num(stats.mean_ms, 2)),
                        row("Median " + name + " (ms):", num(stats.median_ms, 2)),
                        row("P99 " + name + " (ms):", num(stats.p99_ms, 2)));
  };
  std::string out = absl::StrCat(
      std::string(12, '='), " Serving Benchmark Result ", std::string(12, '='), "\n",
      row("Successful requests:", absl::StrCat(report.completed)),
      row("Failed requests:", absl::StrCat(report.failed)),
      row("Benchmark duration (s):", num(report.duration_s, 2)),
      row("Total input tokens:", absl::StrCat(report.total_input_tokens)),
      row("Total generated tokens:", absl::StrCat(report.total_output_tokens)),
      row("Request throughput (req/s):", num(report.request_throughput, 2)),
      row("Output token throughput (tok/s):", num(report.output_throughput, 2)),
      latency("TTFT", "Time to First Token", report.ttft),
      latency("ITL", "Inter-token Latency", report.itl),
      latency("E2E", "End-to-end Latency", report.e2e));
  for (const auto& [code, errors] : report.errors) {
    absl::StrAppend(&out, "Errors ", code, ": ", errors.count, " (e.g. ", errors.example, ")\n");
  }
  absl::StrAppend(&out, std::string(50, '='), "\n");
  return out;
}

std::string ReportJson(const BenchReport& report, const BenchOptions& options) {
  const auto stats = [](const LatencyStats& s) {
    return absl::StrCat("{\"count\":", s.count, ",\"mean_ms\":", JsonNumber(s.mean_ms),
                        ",\"median_ms\":", JsonNumber(s.median_ms),
                        ",\"p99_ms\":", JsonNumber(s.p99_ms), "}");
  };
  std::string errors = "{";
  for (const auto& [code, e] : report.errors) {
    if (errors.size() > 1) errors += ',';
    absl::StrAppend(&errors, JsonQuote(code), ":{\"count\":", e.count,
                    ",\"example\":", JsonQuote(e.example), "}");
  }
  errors += '}';
  return absl::StrCat(
      "{\"options\":{\"concurrency\":", options.concurrency,
      ",\"request_rate\":", std::isinf(options.request_rate) ? "\"inf\"" : JsonNumber(options.request_rate),
      ",\"num_requests\":", options.num_requests,
      ",\"duration_seconds\":", JsonNumber(options.duration_seconds),
      ",\"prompt_len\":", options.prompt_len, ",\"prompts_file\":", JsonQuote(options.prompts_file),
      ",\"output_len\":", options.output_len, ",\"seed\":", options.seed,
      ",\"temperature\":", JsonNumber(options.temperature), "}",
      ",\"completed\":", report.completed, ",\"failed\":", report.failed,
      ",\"duration_s\":", JsonNumber(report.duration_s),
      ",\"total_input_tokens\":", report.total_input_tokens,
      ",\"total_output_tokens\":", report.total_output_tokens,
      ",\"request_throughput\":", JsonNumber(report.request_throughput),
      ",\"output_throughput\":", JsonNumber(report.output_throughput),
      ",\"ttft\":", stats(report.ttft), ",\"itl\":", stats(report.itl),
      ",\"e2e\":", stats(report.e2e), ",\"errors\":", errors, "}");
}

// ---- the run -----------------------------------------------------------------------------------

namespace {

// Issues the run's requests (arrivals, concurrency, duration) with `start`, which must hand its
// record to `state` and decrement in_flight when the request ends; returns once all have.
using StartFn = std::function<void(mswa::v1::GenerateRequest, BenchState*, Clock::time_point)>;

absl::StatusOr<BenchReport> Dispatch(const BenchOptions& options, const StartFn& start) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  std::vector<std::string> prompts;
  if (!options.prompts_file.empty()) {
    absl::StatusOr<std::vector<std::string>> loaded = LoadPrompts(options.prompts_file);
    if (!loaded.ok()) return loaded.status();
    prompts = *std::move(loaded);
  }
  const auto make_request = [&](int64_t i) {
    mswa::v1::GenerateRequest request;
    const uint64_t request_seed = SplitMix64(options.seed ^ SplitMix64(static_cast<uint64_t>(i)));
    request.set_prompt(prompts.empty()
                           ? SyntheticPrompt(options.prompt_len, request_seed)
                           : prompts[static_cast<size_t>(i) % prompts.size()]);
    request.mutable_sampling()->set_temperature(options.temperature);
    request.mutable_sampling()->set_seed(request_seed);
    request.mutable_stopping()->set_max_tokens(options.output_len);
    request.mutable_stopping()->set_ignore_eos(true);
    request.set_client_request_id(absl::StrCat("bench-", i));
    return request;
  };

  const int64_t cap = options.concurrency > 0 ? options.concurrency
                                              : std::numeric_limits<int64_t>::max();
  const bool timed = options.duration_seconds > 0;
  BenchState state;
  PoissonArrivals arrivals(options.request_rate, options.seed);
  const Clock::time_point t0 = Clock::now();
  const absl::Time end_of_issue = timed ? absl::Now() + absl::Seconds(options.duration_seconds)
                                        : absl::InfiniteFuture();
  double next_arrival_s = 0;
  for (int64_t i = 0; options.num_requests == 0 || i < options.num_requests; ++i) {
    next_arrival_s += arrivals.NextGapSeconds();
    if (timed && next_arrival_s >= options.duration_seconds) break;
    std::this_thread::sleep_until(
        t0 + std::chrono::duration_cast<Clock::duration>(
                 std::chrono::duration<double>(next_arrival_s)));
    {
      const auto slot_free = [&state, cap]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return state.in_flight < cap;
      };
      if (!state.mu.LockWhenWithDeadline(absl::Condition(&slot_free), end_of_issue)) {
        state.mu.Unlock();
        break;  // the duration ran out while every slot was busy
      }
      ++state.in_flight;
      state.mu.Unlock();
    }
    start(make_request(i), &state, t0);
  }

  const auto all_done = [&state]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return state.in_flight == 0;
  };
  absl::MutexLock lock(&state.mu);
  state.mu.Await(absl::Condition(&all_done));
  return MakeReport(state.records, SecondsSince(t0));
}

}  // namespace

absl::StatusOr<BenchReport> RunBench(MswaClient& client, const BenchOptions& options) {
  return Dispatch(options, [&client](mswa::v1::GenerateRequest request, BenchState* state,
                                     Clock::time_point t0) {
    (new BenchCall(state, t0, std::move(request)))->Start(client);
  });
}

absl::StatusOr<BenchReport> RunHttpBench(const std::string& http_target, const std::string& api_key,
                                         const BenchOptions& options) {
  const size_t colon = http_target.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(http_target.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_target must be HOST:PORT, got \"", http_target, "\""));
  }
  const std::string host = http_target.substr(0, colon);
  return Dispatch(options, [host, port, api_key](mswa::v1::GenerateRequest request,
                                                  BenchState* state, Clock::time_point t0) {
    // A thread per request in flight: the blocking client reads the stream as it comes.
    std::thread([host, port, api_key, request = std::move(request), state, t0] {
      RequestRecord record = RunHttpCompletion(host, port, api_key, request, t0);
      absl::MutexLock lock(&state->mu);
      state->records.push_back(std::move(record));
      --state->in_flight;
    }).detach();
  });
}

}  // namespace mswa::client
