// The load generator behind `mswa-client bench`, in the spirit of `vllm bench serve`: Generate
// requests issued at a fixed concurrency (closed loop) and/or with Poisson arrivals (open loop),
// per-request TTFT / inter-token latency / end-to-end latency, and a summary.
//
// Everything but RunBench is a pure function (arrivals, prompts, latencies, statistics, report
// text), so the arithmetic is unit-tested without a server.
//
// Definitions (times on the client's monotonic clock, from the moment the call is started):
//   TTFT  = first message carrying text or token ids - start
//   ITL   = for consecutive token-carrying messages a, b: (t_b - t_a) / tokens(b), once per token
//           of b (so a message with 2 tokens after 30 ms contributes two 15 ms samples)
//   E2E   = final status received - start
//   output tokens = the last Usage.completion_tokens seen, else the sum of token ids streamed
// Worked example: start 0, messages at 0.1 s (1 token), 0.3 s (2 tokens), 0.4 s (1 token), end
// 0.45 s -> TTFT 100 ms, ITL {100, 100, 100} ms, E2E 450 ms, 4 output tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "mswa/v1/mswa.pb.h"

namespace mswa::client {

struct BenchOptions {
  // Most requests in flight at once; 0 = unbounded. Alone (request_rate inf): a closed loop that
  // keeps exactly this many in flight. With a finite rate: arrivals wait for a free slot.
  int32_t concurrency = 0;
  // Poisson arrivals in requests/s; infinity = all at once (bounded by concurrency).
  double request_rate = std::numeric_limits<double>::infinity();
  // Bounds; at least one must be set. The run stops issuing when either is reached, then waits
  // for the requests in flight (each bounded by the client's deadline, if any).
  int64_t num_requests = 0;     // 0 = no count bound
  double duration_seconds = 0;  // 0 = no time bound
  // Synthetic prompts of prompt_len bytes of ASCII words, unless prompts_file (one prompt per
  // line, empty lines skipped, cycled in order) is set.
  int32_t prompt_len = 128;
  std::string prompts_file;
  // max_tokens of every request; ignore_eos is set so each generates exactly this many tokens
  // (unless a server limit intervenes).
  int32_t output_len = 128;
  uint64_t seed = 0;  // arrivals, synthetic prompts and the per-request sampling seeds
  float temperature = 1.0f;

  // InvalidArgument naming the flag-level field: concurrency < 0, request_rate <= 0 or NaN,
  // num_requests < 0, duration negative or not finite, no bound at all, an infinite rate with
  // neither concurrency nor num_requests (it would start requests without limit), prompt_len < 1
  // without prompts_file, output_len < 1.
  absl::Status Validate() const;
};

// Inter-arrival gaps of a Poisson process: exponential with mean 1/rate, by inverse CDF over a
// 64-bit Mersenne Twister, so a seed gives the same gaps on every platform. rate = infinity
// gives 0 gaps. Not thread-safe.
class PoissonArrivals {
 public:
  PoissonArrivals(double rate, uint64_t seed) : rate_(rate), rng_(seed) {}
  double NextGapSeconds();

 private:
  double rate_;
  std::mt19937_64 rng_;
};

// `length` bytes of lowercase words separated by spaces (no trailing space), a pure function of
// (length, seed). length <= 0 gives "".
std::string SyntheticPrompt(int32_t length, uint64_t seed);

// The non-empty lines of a file (a trailing '\r' is dropped). NotFound when it cannot be opened,
// InvalidArgument when it has no non-empty line.
absl::StatusOr<std::vector<std::string>> LoadPrompts(const std::string& path);

// What one request did. Times in seconds from the start of the run.
struct RequestRecord {
  bool ok = false;
  grpc::StatusCode status_code = grpc::StatusCode::OK;
  std::string error;  // the status message when !ok
  double start_s = 0;
  double end_s = 0;
  struct TokenEvent {
    double time_s;
    int32_t tokens;  // token ids in the message; >= 1 (a text-only message counts as one)
  };
  std::vector<TokenEvent> events;  // token-carrying messages, in arrival order
  int64_t prompt_tokens = 0;       // from Usage, 0 when none arrived
  int64_t completion_tokens = -1;  // from Usage, -1 when none arrived
};

struct RequestLatencies {
  double ttft_s = 0;  // meaningless when !has_first_token
  bool has_first_token = false;
  std::vector<double> itl_s;
  double e2e_s = 0;
  int64_t output_tokens = 0;
};

// The definitions at the top of this file applied to one record.
RequestLatencies ComputeLatencies(const RequestRecord& record);

// Mean, median and 99th percentile in milliseconds of samples given in seconds. Percentiles
// interpolate linearly between order statistics (numpy's default): for 1..100, median 50.5 and
// p99 99.01. No samples: count 0 and NaN statistics.
struct LatencyStats {
  int64_t count = 0;
  double mean_ms = 0;
  double median_ms = 0;
  double p99_ms = 0;
};
LatencyStats SummarizeLatencies(std::vector<double> samples_s);

// q in [0, 1] of ascending `sorted` by linear interpolation; NaN when empty.
double Percentile(const std::vector<double>& sorted, double q);

struct BenchReport {
  int64_t completed = 0;
  int64_t failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;  // completed / duration
  double output_throughput = 0;   // output tokens of completed requests / duration
  LatencyStats ttft;
  LatencyStats itl;
  LatencyStats e2e;
  struct Errors {
    int64_t count = 0;
    std::string example;  // the first message seen with this code
  };
  std::map<std::string, Errors> errors;  // by status code name
};

// Failed requests count in `failed` and `errors` only; latencies and tokens come from the
// completed ones. duration_s <= 0 gives zero throughputs.
BenchReport MakeReport(const std::vector<RequestRecord>& records, double duration_s);

// The human summary (several lines, ending in a newline), vllm-style.
std::string FormatReport(const BenchReport& report);
// One JSON object (no trailing newline) with the options and the report.
std::string ReportJson(const BenchReport& report, const BenchOptions& options);

// Runs the benchmark against `client` (one Generate per request, on gRPC's callback API, so no
// thread per request); blocks until every started request has finished. InvalidArgument /
// NotFound for bad options or prompts file; RPC failures are counted in the report, not returned.
absl::StatusOr<BenchReport> RunBench(MswaClient& client, const BenchOptions& options);

// The same load over the server's OpenAI-compatible HTTP API (`http_target` HOST:PORT): each
// request is a POST /v1/completions with the same prompt, seed and lengths, "stream": true and
// stream_options.include_usage, on a thread of its own (cpp-httplib's blocking client). A
// message is one Server-Sent Events chunk carrying text (the server sends one per engine step,
// as gRPC sends one message), so TTFT and ITL compare the two protocols on one server.
// `api_key`, when set, goes in "Authorization: Bearer". Failed requests are counted by the
// status code the HTTP status maps to (INVALID_ARGUMENT for 400, RESOURCE_EXHAUSTED for 429...).
absl::StatusOr<BenchReport> RunHttpBench(const std::string& http_target, const std::string& api_key,
                                         const BenchOptions& options);

}  // namespace mswa::client
