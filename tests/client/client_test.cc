// What the client does without a server: option validation, request building, formatting, the
// bench arithmetic, and failing fast (UNAVAILABLE) against a port where nothing listens.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/bench.h"
#include "client/client.h"

namespace mswa::client {
namespace {

// ---- options and request building --------------------------------------------------------------

TEST(ClientOptions, ValidateNamesTheBadField) {
  EXPECT_TRUE(ClientOptions().Validate().ok());
  ClientOptions o;
  o.target = "";
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "target"));
  o = ClientOptions();
  o.deadline_seconds = -1;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "deadline"));
  o.deadline_seconds = std::nan("");
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = ClientOptions();
  o.tls_root_cert_file = "ca.pem";
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "without tls"));
  o = ClientOptions();
  o.tls_server_name = "localhost";
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MswaClient, MissingRootCertificateIsAClearError) {
  ClientOptions o;
  o.tls = true;
  o.tls_root_cert_file = "/nonexistent/dir/ca.pem";
  const absl::StatusOr<std::unique_ptr<MswaClient>> client = MswaClient::Create(o);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(client.status().message(), "/nonexistent/dir/ca.pem"));
  EXPECT_TRUE(absl::StrContains(client.status().message(), "No such file"));
}

TEST(MswaClient, RootCertificateFileWithoutPemIsRejected) {
  const std::string path = testing::TempDir() + "/not_a_cert.pem";
  std::ofstream(path) << "hello\n";
  ClientOptions o;
  o.tls = true;
  o.tls_root_cert_file = path;
  const absl::StatusOr<std::unique_ptr<MswaClient>> client = MswaClient::Create(o);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(client.status().message(), "PEM"));
}

TEST(MswaClient, ScoreChunksFitTheServersLimit) {
  using mswa::client::MswaClient;
  EXPECT_EQ(MswaClient::ScoreChunkBytesFor(0), MswaClient::kScoreChunkBytes);  // unknown
  EXPECT_EQ(MswaClient::ScoreChunkBytesFor(int64_t{1} << 20), MswaClient::kScoreChunkBytes);
  EXPECT_EQ(MswaClient::ScoreChunkBytesFor(8192), 8192u);
  EXPECT_EQ(MswaClient::ScoreChunkBytesFor(1), 1u);
}

TEST(MswaClient, CreateDoesNotConnect) {
  ClientOptions o;
  o.tls = true;  // system roots
  EXPECT_TRUE(MswaClient::Create(o).ok());
  EXPECT_TRUE(MswaClient::Create(ClientOptions()).ok());
}

TEST(GenerateOptions, ValidateUsesTheProtoRanges) {
  GenerateOptions good;
  good.prompt = "hi";
  EXPECT_TRUE(good.Validate().ok());
  const auto bad = [&](auto mutate, const char* field) {
    GenerateOptions o = good;
    mutate(o);
    const absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_TRUE(absl::StrContains(s.message(), field)) << s.message();
  };
  bad([](GenerateOptions& o) { o.prompt.clear(); }, "prompt");
  bad([](GenerateOptions& o) { o.max_tokens = 0; }, "max_tokens");
  bad([](GenerateOptions& o) { o.temperature = -0.5f; }, "temperature");
  bad([](GenerateOptions& o) { o.temperature = std::numeric_limits<float>::infinity(); },
      "temperature");
  bad([](GenerateOptions& o) { o.top_k = -1; }, "top_k");
  bad([](GenerateOptions& o) { o.top_p = 0; }, "top_p");
  bad([](GenerateOptions& o) { o.top_p = 1.5f; }, "top_p");
  bad([](GenerateOptions& o) { o.min_p = -0.1f; }, "min_p");
  bad([](GenerateOptions& o) { o.repetition_penalty = 0; }, "repetition_penalty");
  bad([](GenerateOptions& o) { o.stop = {""}; }, "stop");
  bad([](GenerateOptions& o) { o.stop = {std::string(257, 'x')}; }, "stop");
  bad([](GenerateOptions& o) { o.stop = std::vector<std::string>(17, "x"); }, "stop");
  bad([](GenerateOptions& o) { o.top_logprobs = 21; }, "top_logprobs");
}

TEST(GenerateOptions, MakeGenerateRequestFillsEveryField) {
  GenerateOptions o;
  o.prompt = "Once";
  o.max_tokens = 7;
  o.temperature = 0;
  o.stop = {"a,b", "\n"};
  o.top_logprobs = 3;
  o.add_bos = false;
  absl::StatusOr<mswa::v1::GenerateRequest> r = MakeGenerateRequest(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt(), "Once");
  EXPECT_EQ(r->stopping().max_tokens(), 7);
  ASSERT_EQ(r->stopping().stop_size(), 2);
  EXPECT_EQ(r->stopping().stop(0), "a,b");
  EXPECT_TRUE(r->has_add_bos());
  EXPECT_FALSE(r->add_bos());
  EXPECT_FALSE(r->sampling().has_seed());  // unset: the server picks
  EXPECT_EQ(r->sampling().top_p(), 1.0f);
  EXPECT_TRUE(r->logprobs());  // implied by top_logprobs
  EXPECT_EQ(r->top_logprobs(), 3);
  EXPECT_FALSE(r->skip_prefix_cache());

  o.skip_prefix_cache = true;
  r = MakeGenerateRequest(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->skip_prefix_cache());

  o.seed = 0;  // zero is a seed, not "unset"
  r = MakeGenerateRequest(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->sampling().has_seed());
  EXPECT_EQ(r->sampling().seed(), 0u);

  o.max_tokens = -1;
  EXPECT_FALSE(MakeGenerateRequest(o).ok());
}

TEST(ExtractRepeatedFlag, TakesEveryFormAndKeepsTheRest) {
  std::vector<std::string> args = {"mswa-client", "generate", "--stop", "a,b", "hi",
                                   "--stop=\n\n", "-stop", "x", "--max_tokens=3", "--", "--stop"};
  const absl::StatusOr<std::vector<std::string>> stops = ExtractRepeatedFlag(&args, "stop");
  ASSERT_TRUE(stops.ok()) << stops.status();
  EXPECT_EQ(*stops, (std::vector<std::string>{"a,b", "\n\n", "x"}));
  EXPECT_EQ(args, (std::vector<std::string>{"mswa-client", "generate", "hi", "--max_tokens=3",
                                            "--", "--stop"}));
}

TEST(ExtractRepeatedFlag, MissingValueIsAnError) {
  std::vector<std::string> args = {"mswa-client", "generate", "hi", "--stop"};
  const absl::StatusOr<std::vector<std::string>> stops = ExtractRepeatedFlag(&args, "stop");
  ASSERT_FALSE(stops.ok());
  EXPECT_TRUE(absl::StrContains(stops.status().message(), "--stop"));
  std::vector<std::string> none = {"mswa-client", "--stopper=1"};
  EXPECT_TRUE(ExtractRepeatedFlag(&none, "stop")->empty());
  EXPECT_EQ(none.size(), 2u);
}

// ---- formatting --------------------------------------------------------------------------------

TEST(Format, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1.00 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(512 * 1024), "512 KiB");
  EXPECT_EQ(FormatBytes(47395635), "45.2 MiB");
  EXPECT_EQ(FormatBytes(int64_t{1} << 30), "1.00 GiB");
}

TEST(Format, ProgressBarWithKnownSize) {
  ProgressView v;
  v.bytes_done = 512 * 1024;
  v.bytes_total = 1024 * 1024;
  v.tokens = 1000;
  v.tokens_per_second = 1234.4;
  v.total_nll = std::log(2.0) * 8 * 512 * 1024;  // 8 bits per byte
  EXPECT_EQ(FormatScoreProgress(v, 10),
            "[#####.....]  50.0%  512 KiB / 1.00 MiB  1234 tok/s  8.000 bits/byte");
  // Without a bar: the percentage stays.
  EXPECT_EQ(FormatScoreProgress(v, 0), " 50.0%  512 KiB / 1.00 MiB  1234 tok/s  8.000 bits/byte");
}

TEST(Format, ProgressBarClampsAndHandlesUnknownSize) {
  ProgressView v;
  v.bytes_done = 2048;
  v.bytes_total = 1024;  // more than announced (the file grew)
  EXPECT_EQ(FormatScoreProgress(v, 4), "[####] 100.0%  2.00 KiB / 1.00 KiB  0 tok/s  - bits/byte");
  v.bytes_total = -1;  // a pipe
  EXPECT_EQ(FormatScoreProgress(v, 4), "2.00 KiB  0 tok/s  - bits/byte");
  v.bytes_done = 0;
  v.bytes_total = 0;  // an empty file is complete
  EXPECT_EQ(FormatScoreProgress(v, 2), "[##] 100.0%  0 B / 0 B  0 tok/s  - bits/byte");
}

TEST(Format, Json) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(JsonQuote("é"), "\"é\"");
  EXPECT_EQ(JsonNumber(0.1), "0.1");
  EXPECT_EQ(JsonNumber(3), "3");
  EXPECT_EQ(JsonNumber(std::nan("")), "null");
  EXPECT_EQ(JsonNumber(std::numeric_limits<double>::infinity()), "null");
}

TEST(Format, StatusCodeName) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAVAILABLE), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
}

// ---- bench arithmetic --------------------------------------------------------------------------

TEST(BenchStats, MeanMedianP99OfKnownSamples) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i / 1000.0);  // 1..100 ms, unsorted
  const LatencyStats s = SummarizeLatencies(samples);
  EXPECT_EQ(s.count, 100);
  EXPECT_NEAR(s.mean_ms, 50.5, 1e-9);
  EXPECT_NEAR(s.median_ms, 50.5, 1e-9);
  EXPECT_NEAR(s.p99_ms, 99.01, 1e-9);

  const LatencyStats odd = SummarizeLatencies({0.003, 0.001, 0.002});
  EXPECT_NEAR(odd.median_ms, 2, 1e-12);
  EXPECT_NEAR(odd.p99_ms, 2.98, 1e-12);
  const LatencyStats one = SummarizeLatencies({0.007});
  EXPECT_NEAR(one.median_ms, 7, 1e-12);
  EXPECT_NEAR(one.p99_ms, 7, 1e-12);
  const LatencyStats none = SummarizeLatencies({});
  EXPECT_EQ(none.count, 0);
  EXPECT_TRUE(std::isnan(none.mean_ms));
  EXPECT_TRUE(std::isnan(Percentile({}, 0.5)));
}

TEST(BenchStats, LatenciesOfTheWorkedExample) {
  RequestRecord r;
  r.ok = true;
  r.start_s = 1.0;
  r.events = {{1.1, 1}, {1.3, 2}, {1.4, 1}};
  r.end_s = 1.45;
  RequestLatencies l = ComputeLatencies(r);
  ASSERT_TRUE(l.has_first_token);
  EXPECT_NEAR(l.ttft_s, 0.1, 1e-12);
  ASSERT_EQ(l.itl_s.size(), 3u);
  for (double itl : l.itl_s) EXPECT_NEAR(itl, 0.1, 1e-12);
  EXPECT_NEAR(l.e2e_s, 0.45, 1e-12);
  EXPECT_EQ(l.output_tokens, 4);  // streamed ids, no usage
  r.completion_tokens = 5;        // usage wins when present
  EXPECT_EQ(ComputeLatencies(r).output_tokens, 5);
  r.events.clear();
  EXPECT_FALSE(ComputeLatencies(r).has_first_token);
}

TEST(BenchStats, ReportCountsFailuresApartFromLatencies) {
  RequestRecord ok;
  ok.ok = true;
  ok.start_s = 0;
  ok.events = {{0.1, 1}, {0.2, 1}};
  ok.end_s = 0.2;
  ok.prompt_tokens = 10;
  ok.completion_tokens = 2;
  RequestRecord busy;
  busy.status_code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  busy.error = "queue full";
  busy.end_s = 5;  // failures do not count in E2E
  const BenchReport report = MakeReport({ok, ok, busy, busy}, 2.0);
  EXPECT_EQ(report.completed, 2);
  EXPECT_EQ(report.failed, 2);
  EXPECT_EQ(report.total_input_tokens, 20);
  EXPECT_EQ(report.total_output_tokens, 4);
  EXPECT_DOUBLE_EQ(report.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(report.output_throughput, 2.0);
  EXPECT_NEAR(report.ttft.mean_ms, 100, 1e-9);
  EXPECT_EQ(report.itl.count, 2);
  EXPECT_NEAR(report.e2e.p99_ms, 200, 1e-9);
  ASSERT_EQ(report.errors.count("RESOURCE_EXHAUSTED"), 1u);
  EXPECT_EQ(report.errors.at("RESOURCE_EXHAUSTED").count, 2);
  EXPECT_EQ(report.errors.at("RESOURCE_EXHAUSTED").example, "queue full");

  const std::string text = FormatReport(report);
  EXPECT_TRUE(absl::StrContains(text, "Successful requests:")) << text;
  EXPECT_TRUE(absl::StrContains(text, "Mean TTFT (ms):")) << text;
  EXPECT_TRUE(absl::StrContains(text, "Errors RESOURCE_EXHAUSTED: 2 (e.g. queue full)")) << text;
  const std::string json = ReportJson(report, BenchOptions());
  EXPECT_TRUE(absl::StrContains(json, "\"completed\":2,\"failed\":2")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"request_rate\":\"inf\"")) << json;
  EXPECT_EQ(MakeReport({}, 0).request_throughput, 0);
}

TEST(PoissonArrivals, MeanGapIsOneOverRateAndSeeded) {
  constexpr double kRate = 4.0;
  constexpr int kN = 200000;
  PoissonArrivals arrivals(kRate, 42);
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < kN; ++i) {
    const double gap = arrivals.NextGapSeconds();
    ASSERT_GE(gap, 0);
    sum += gap;
    sum_sq += gap * gap;
  }
  const double mean = sum / kN;
  // Exponential: sd = mean, so the sample mean's sd is 0.25 / sqrt(2e5) ~ 5.6e-4.
  EXPECT_NEAR(mean, 1 / kRate, 0.003);
  EXPECT_NEAR(sum_sq / kN - mean * mean, 1 / (kRate * kRate), 0.003);  // variance 1/rate^2

  PoissonArrivals a(kRate, 7), b(kRate, 7), c(kRate, 8);
  const double first = a.NextGapSeconds();
  EXPECT_EQ(first, b.NextGapSeconds());
  EXPECT_NE(first, c.NextGapSeconds());
  PoissonArrivals burst(std::numeric_limits<double>::infinity(), 1);
  EXPECT_EQ(burst.NextGapSeconds(), 0);
}

TEST(BenchOptions, Validate) {
  BenchOptions o;
  EXPECT_FALSE(o.Validate().ok());  // no bound
  o.num_requests = 10;
  EXPECT_TRUE(o.Validate().ok());
  o.num_requests = 0;
  o.duration_seconds = 5;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "num_requests"));  // inf rate, unbounded
  o.concurrency = 4;
  EXPECT_TRUE(o.Validate().ok());
  o.concurrency = 0;
  o.request_rate = 10;
  EXPECT_TRUE(o.Validate().ok());
  o.request_rate = 0;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "request_rate"));
  o.request_rate = 10;
  o.concurrency = -1;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "concurrency"));
  o.concurrency = 0;
  o.output_len = 0;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "output_len"));
  o.output_len = 1;
  o.prompt_len = 0;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "prompt_len"));
  o.prompts_file = "prompts.txt";  // prompt_len is unused then
  EXPECT_TRUE(o.Validate().ok());
  o.duration_seconds = -1;
  EXPECT_TRUE(absl::StrContains(o.Validate().message(), "duration"));
}

TEST(BenchPrompts, SyntheticPromptsAreExactLengthAsciiAndSeeded) {
  for (int len : {1, 2, 7, 128, 1000}) {
    const std::string p = SyntheticPrompt(len, 3);
    ASSERT_EQ(p.size(), static_cast<size_t>(len));
    EXPECT_NE(p.back(), ' ');
    for (char c : p) EXPECT_TRUE(c == ' ' || (c >= 'a' && c <= 'z')) << p;
  }
  EXPECT_EQ(SyntheticPrompt(64, 5), SyntheticPrompt(64, 5));
  EXPECT_NE(SyntheticPrompt(64, 5), SyntheticPrompt(64, 6));
  EXPECT_EQ(SyntheticPrompt(0, 5), "");
}

TEST(BenchPrompts, LoadPromptsSkipsEmptyLines) {
  const std::string path = testing::TempDir() + "/prompts.txt";
  std::ofstream(path) << "first\r\n\nsecond, with comma\n";
  const absl::StatusOr<std::vector<std::string>> prompts = LoadPrompts(path);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  EXPECT_EQ(*prompts, (std::vector<std::string>{"first", "second, with comma"}));
  EXPECT_EQ(LoadPrompts(path + ".missing").status().code(), absl::StatusCode::kNotFound);
  const std::string empty = testing::TempDir() + "/empty_prompts.txt";
  std::ofstream(empty) << "\n\n";
  EXPECT_EQ(LoadPrompts(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- no server ---------------------------------------------------------------------------------

// A loopback port that was free a moment ago and has nothing listening now.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

class NoServer : public testing::Test {
 protected:
  void SetUp() override {
    ClientOptions o;
    o.target = absl::StrCat("127.0.0.1:", ClosedPort());
    o.deadline_seconds = 20;  // far above the bound checked below: failing must not wait for it
    absl::StatusOr<std::unique_ptr<MswaClient>> client = MswaClient::Create(o);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    start_ = std::chrono::steady_clock::now();
  }
  void ExpectFastUnavailable(const grpc::Status& status) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_FALSE(status.error_message().empty());
    EXPECT_LT(seconds, 5.0);
  }
  std::unique_ptr<MswaClient> client_;
  std::chrono::steady_clock::time_point start_;
};

TEST_F(NoServer, UnaryCallsFailFastWithUnavailable) {
  mswa::v1::GetModelInfoResponse info;
  ExpectFastUnavailable(client_->GetModelInfo(&info));
  grpc::health::v1::HealthCheckResponse::ServingStatus serving =
      grpc::health::v1::HealthCheckResponse::SERVING;
  ExpectFastUnavailable(client_->Health("", &serving));
  EXPECT_EQ(serving, grpc::health::v1::HealthCheckResponse::SERVING);  // untouched on failure
}

TEST_F(NoServer, GenerateFailsFastWithoutMessages) {
  mswa::v1::GenerateRequest request;
  request.set_prompt("hello");
  int messages = 0;
  ExpectFastUnavailable(
      client_->Generate(request, [&](const mswa::v1::GenerateResponse&) { ++messages; }));
  EXPECT_EQ(messages, 0);
}

TEST_F(NoServer, ScoreStreamFailsFastAndDoesNotHang) {
  // Several chunks, so the writer thread is mid-upload when the call fails.
  std::istringstream in(std::string(3 * MswaClient::kScoreChunkBytes + 5, 'a'));
  mswa::v1::ScoreResult result;
  ExpectFastUnavailable(client_->ScoreStream(in, mswa::v1::ScoreOptions(), nullptr, &result));
}

TEST_F(NoServer, BenchCountsEveryRequestAsFailed) {
  BenchOptions o;
  o.num_requests = 6;
  o.concurrency = 2;
  o.prompt_len = 16;
  o.output_len = 4;
  const absl::StatusOr<BenchReport> report = RunBench(*client_, o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->completed, 0);
  EXPECT_EQ(report->failed, 6);
  ASSERT_EQ(report->errors.count("UNAVAILABLE"), 1u);
  EXPECT_FALSE(report->errors.at("UNAVAILABLE").example.empty());
  EXPECT_EQ(report->e2e.count, 0);
}

}  // namespace
}  // namespace mswa::client
