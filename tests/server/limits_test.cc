// Limits and failure behaviour: the request size limits (server/api/limits.h) on their own and
// through a real mswa-server, the ScoreStream idle timeout, a /metrics client that trickles its
// request, and log lines that stay valid JSON whatever a client sends.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/format/weights.h"
#include "server/api/limits.h"
#include "tests/model/test_models.h"
#include "tests/server/server_process.h"

namespace mswa {
namespace {

using mswa::testing::MetricValue;
using mswa::testing::Scrape;
using mswa::testing::ServerProcess;
using Clock = std::chrono::steady_clock;

const std::string kServer = std::string(MSWA_BINARY_DIR) + "/server/mswa-server";

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- the checks on their own ------------------------------------------------------------------

TEST(RequestLimits, EachCheckNamesTheFieldTheLimitAndItsFlag) {
  RequestLimits limits;
  limits.max_score_bytes = 2000;
  EXPECT_TRUE(CheckScoreText(limits, 2000).ok());
  const absl::Status s = CheckScoreText(limits, 2001);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "text: 2001 bytes is more than the limit of 2000 bytes (--max_score_bytes); use "
            "ScoreStream for texts of any size");
  struct Case {
    absl::Status status;
    const char* flag;
  };
  const Case cases[] = {
      {CheckTokenizeText(limits, limits.max_tokenize_bytes + 1), "--max_tokenize_bytes"},
      {CheckPromptText(limits, limits.max_prompt_bytes + 1), "--max_prompt_bytes"},
      {CheckPromptTokens(limits, limits.max_prompt_tokens + 1), "--max_prompt_tokens"},
      {CheckStreamChunk(limits, limits.max_stream_chunk_bytes + 1), "--max_stream_chunk_bytes"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_NE(c.status.message().find(c.flag), std::string::npos) << c.status.message();
    EXPECT_NE(c.status.message().find("1048576"), std::string::npos) << c.status.message();
  }
  EXPECT_TRUE(CheckTokenizeText(limits, limits.max_tokenize_bytes).ok());
  EXPECT_TRUE(CheckPromptTokens(limits, limits.max_prompt_tokens).ok());
  EXPECT_FALSE(CheckStopString(limits, "stopping.stop", 0).ok());
  EXPECT_FALSE(CheckStopString(limits, "stopping.stop", 257).ok());
  EXPECT_FALSE(CheckStopCount(limits, "stopping.stop", 17).ok());
}

TEST(RequestLimits, ReceiveSizeIsJustAboveTheLargestInput) {
  RequestLimits limits;
  limits.max_score_bytes = 2000;
  limits.max_tokenize_bytes = 1000;
  limits.max_prompt_bytes = 300;
  limits.max_prompt_tokens = 100;
  limits.max_stream_chunk_bytes = 500;
  EXPECT_EQ(limits.MaxReceiveMessageBytes(), 2000 + 65536);
  limits.max_prompt_tokens = 1000;  // 4 bytes per id on the wire
  EXPECT_EQ(limits.MaxReceiveMessageBytes(), 4000 + 65536);
  EXPECT_TRUE(limits.Validate().ok());
  limits.max_score_bytes = 0;
  EXPECT_NE(limits.Validate().message().find("--max_score_bytes"), std::string::npos);
  limits.max_score_bytes = 1;
  limits.stream_idle_timeout_seconds = -1;
  EXPECT_NE(limits.Validate().message().find("--stream_idle_timeout_seconds"), std::string::npos);
}

// ---- through the server -----------------------------------------------------------------------

std::string TempPath(const std::string& name) {
  return mswa::testing::ProcessTempPath("mswa_limits_test", "" + name);
}
const std::string& ModelDir() { return mswa::testing::TinyServerModelDir("mswa_limits_test", "model"); }

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(kServer,
                                {"--model_dir=" + ModelDir(), "--kv_cache_bytes=33554432",
                                 "--max_tokenize_bytes=1000", "--max_score_bytes=2000",
                                 "--max_prompt_bytes=300", "--max_prompt_tokens=100",
                                 "--max_stream_chunk_bytes=500", "--stream_idle_timeout_seconds=1"},
                                TempPath("limits.log"));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};
ServerProcess* LimitsTest::server_ = nullptr;

v1::GenerateRequest GenerateRequest(const std::string& prompt) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.mutable_stopping()->set_max_tokens(2);
  r.mutable_stopping()->set_ignore_eos(true);
  r.mutable_sampling()->set_seed(1);
  return r;
}

grpc::Status RunGenerate(v1::MswaService::Stub& stub, const v1::GenerateRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stub.Generate(&ctx, req);
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  return reader->Finish();
}

grpc::Status RunScore(v1::MswaService::Stub& stub, const std::string& text) {
  grpc::ClientContext ctx;
  v1::ScoreRequest req;
  req.set_text(text);
  v1::ScoreResponse resp;
  return stub.Score(&ctx, req, &resp);
}

grpc::Status RunTokenize(v1::MswaService::Stub& stub, const std::string& text) {
  grpc::ClientContext ctx;
  v1::TokenizeRequest req;
  req.set_text(text);
  v1::TokenizeResponse resp;
  return stub.Tokenize(&ctx, req, &resp);
}

// Sends `chunks` on one ScoreStream (options with `client_request_id` first), half-closes and
// returns the status.
grpc::Status RunScoreStream(v1::MswaService::Stub& stub, const std::vector<std::string>& chunks,
                            const std::string& client_request_id = "") {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub.ScoreStream(&ctx);
  for (size_t i = 0; i < chunks.size(); ++i) {
    v1::ScoreStreamRequest req;
    if (i == 0) req.mutable_options()->set_client_request_id(client_request_id);
    req.set_chunk(chunks[i]);
    if (!stream->Write(req)) break;
  }
  stream->WritesDone();
  v1::ScoreStreamResponse msg;
  while (stream->Read(&msg)) {
  }
  return stream->Finish();
}

// The status is INVALID_ARGUMENT and names the flag and the limit's value.
void ExpectOverLimit(const grpc::Status& s, const std::string& flag, const std::string& value) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << flag << ": " << s.error_message();
  EXPECT_NE(s.error_message().find("--" + flag), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("limit of " + value), std::string::npos) << s.error_message();
}

// The server's log lines, each parsed (a line that is not JSON fails the test).
std::vector<nlohmann::json> LogLines(const ServerProcess& server) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(server.Log());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      lines.push_back(nlohmann::json::parse(line));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a JSON line: " << line << " (" << e.what() << ")";
    }
  }
  return lines;
}

// The request log line whose client_request_id is `id` (waits up to 5 s for it); null if none.
nlohmann::json RequestLine(const ServerProcess& server, const std::string& id) {
  for (int i = 0; i < 100; ++i) {
    for (const nlohmann::json& l : LogLines(server)) {
      if (l.value("event", "") == "request" && l.value("client_request_id", "") == id) return l;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return nullptr;
}

double KvBlocksUsed(int metrics_port) {
  const std::string m = Scrape(metrics_port);
  double used = 0;
  for (const char* w : {"4", "8", "16"}) {
    used += MetricValue(m, std::string("mswa_kv_blocks_used{window=\"") + w + "\"}");
  }
  return used;
}

TEST_F(LimitsTest, EveryLimitRefusesJustOverItAndNamesItself) {
  v1::MswaService::Stub& stub = server_->stub();
  ExpectOverLimit(RunTokenize(stub, std::string(1001, 't')), "max_tokenize_bytes", "1000");
  EXPECT_TRUE(RunTokenize(stub, std::string(1000, 't')).ok());

  ExpectOverLimit(RunScore(stub, std::string(2001, 's')), "max_score_bytes", "2000");
  EXPECT_TRUE(RunScore(stub, std::string(2000, 's')).ok());

  ExpectOverLimit(RunGenerate(stub, GenerateRequest(std::string(301, 'p'))), "max_prompt_bytes", "300");
  EXPECT_TRUE(RunGenerate(stub, GenerateRequest(std::string(300, 'p'))).ok());

  v1::GenerateRequest ids = GenerateRequest("");
  for (int i = 0; i < 101; ++i) ids.add_prompt_token_ids(65 + i % 26);
  ExpectOverLimit(RunGenerate(stub, ids), "max_prompt_tokens", "100");
  ids.mutable_prompt_token_ids()->RemoveLast();
  EXPECT_TRUE(RunGenerate(stub, ids).ok());

  // A chunk over the limit ends the stream before it is counted, tokenized or fed: the log line
  // shows only the first chunk's bytes.
  ExpectOverLimit(RunScoreStream(stub, {std::string(400, 'a'), std::string(501, 'b')}, "big-chunk"),
                  "max_stream_chunk_bytes", "500");
  const nlohmann::json line = RequestLine(*server_, "big-chunk");
  ASSERT_FALSE(line.is_null());
  EXPECT_EQ(line["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(line["bytes"], 400);
  EXPECT_TRUE(RunScoreStream(stub, {std::string(500, 'a'), std::string(500, 'b')}).ok());

  // Far past every limit (the receive size is 2000 + 64 KiB): gRPC refuses the message itself.
  const grpc::Status huge = RunScore(stub, std::string(100000, 'h'));
  EXPECT_EQ(huge.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << huge.error_message();

  // The limits are published, and the server goes on serving.
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub.GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.max_tokenize_bytes(), 1000);
  EXPECT_EQ(info.max_score_bytes(), 2000);
  EXPECT_EQ(info.max_prompt_bytes(), 300);
  EXPECT_EQ(info.max_prompt_tokens(), 100);
  EXPECT_EQ(info.max_stream_chunk_bytes(), 500);
  EXPECT_EQ(info.stream_idle_timeout_seconds(), 1);
  EXPECT_TRUE(RunGenerate(stub, GenerateRequest("still serving")).ok());
}

TEST_F(LimitsTest, AQuietStreamEndsAtTheIdleTimeoutAndFreesItsKvBlocks) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = server_->stub().ScoreStream(&ctx);
  v1::ScoreStreamRequest req;
  req.mutable_options()->set_client_request_id("quiet");
  req.set_chunk(std::string(400, 'q'));
  ASSERT_TRUE(stream->Write(req));
  const Clock::time_point sent = Clock::now();
  // Scored and holding its window's blocks while it waits for more text.
  double used = 0;
  for (int i = 0; i < 40 && used == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    used = KvBlocksUsed(server_->metrics_port());
  }
  EXPECT_GT(used, 0);
  v1::ScoreStreamResponse msg;
  while (stream->Read(&msg)) {
  }
  const grpc::Status s = stream->Finish();
  const double waited = SecondsSince(sent);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_NE(s.error_message().find("--stream_idle_timeout_seconds"), std::string::npos) << s.error_message();
  EXPECT_GE(waited, 0.9);
  EXPECT_LT(waited, 5);
  for (int i = 0; i < 100 && used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    used = KvBlocksUsed(server_->metrics_port());
  }
  EXPECT_EQ(used, 0);
  const nlohmann::json line = RequestLine(*server_, "quiet");
  ASSERT_FALSE(line.is_null());
  EXPECT_EQ(line["code"], "DEADLINE_EXCEEDED");

  // A stream that never sends anything ends the same way.
  grpc::ClientContext silent_ctx;
  auto silent = server_->stub().ScoreStream(&silent_ctx);
  while (silent->Read(&msg)) {
  }
  EXPECT_EQ(silent->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// Responses the client does not take count as waiting on the client too: the stream is
// cancelled (no status could reach it) and logged as DEADLINE_EXCEEDED, its KV blocks freed.
TEST_F(LimitsTest, AStreamWhoseClientReadsNothingIsEndedToo) {
  // A client that buffers little: a 64 KiB HTTP/2 window that does not grow.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 65536);
  auto stub = v1::MswaService::NewStub(
      grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->ScoreStream(&ctx);
  // 300 KB with per-token values: about 2 MB of responses, which the client never reads.
  for (int i = 0; i < 600; ++i) {
    v1::ScoreStreamRequest req;
    if (i == 0) {
      req.mutable_options()->set_per_token_logprobs(true);
      req.mutable_options()->set_client_request_id("not-reading");
    }
    req.set_chunk(std::string(500, static_cast<char>('a' + i % 26)));
    if (!stream->Write(req)) break;
  }
  stream->WritesDone();
  nlohmann::json line;
  for (int i = 0; i < 6 && line.is_null(); ++i) line = RequestLine(*server_, "not-reading");
  ASSERT_FALSE(line.is_null());
  EXPECT_EQ(line["code"], "DEADLINE_EXCEEDED");
  EXPECT_NE(line["error"].get<std::string>().find("read nothing"), std::string::npos) << line.dump();
  v1::ScoreStreamResponse msg;
  while (stream->Read(&msg)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  double used = 1;
  for (int i = 0; i < 100 && used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    used = KvBlocksUsed(server_->metrics_port());
  }
  EXPECT_EQ(used, 0);
}

// A client that goes away before sending anything is a cancelled stream, not an empty text
// scored OK.
TEST_F(LimitsTest, AStreamCancelledBeforeItsFirstChunkIsLoggedAsCancelled) {
  auto count = [&](const std::string& code) {
    int n = 0;
    for (const nlohmann::json& l : LogLines(*server_)) {
      if (l.value("rpc", "") == "ScoreStream" && l.value("code", "") == code) ++n;
    }
    return n;
  };
  const int before = count("CANCELLED");
  {
    grpc::ClientContext ctx;
    auto stream = server_->stub().ScoreStream(&ctx);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ctx.TryCancel();
    v1::ScoreStreamResponse msg;
    while (stream->Read(&msg)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  int after = before;
  for (int i = 0; i < 100 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = count("CANCELLED");
  }
  EXPECT_EQ(after, before + 1);
  for (const nlohmann::json& l : LogLines(*server_)) {
    if (l.value("rpc", "") == "ScoreStream" && l.value("code", "") == "OK") {
      EXPECT_GT(l.value("bytes", 0), 0) << l.dump();
    }
  }
}

TEST_F(LimitsTest, LogLinesAreJsonWhateverTheClientSends) {
  v1::MswaService::Stub& stub = server_->stub();
  // Quotes, backslashes, control characters and 1000 bytes in the model name: refused, logged.
  v1::GenerateRequest odd = GenerateRequest("x");
  const std::string odd_model = "a \"quoted\" \\ model\nwith\ttabs " + std::string(1000, 'm');
  odd.set_model(odd_model);
  odd.set_client_request_id("odd-model");
  const grpc::Status refused = RunGenerate(stub, odd);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(refused.error_message().size(), 400u);  // the name is quoted cut
  // Not UTF-8: the request cannot even be parsed (proto3 strings), and the server says so in
  // a JSON line too.
  v1::GenerateRequest binary = GenerateRequest("x");
  binary.set_model(std::string("bad \xff\xfe utf-8"));
  EXPECT_FALSE(RunGenerate(stub, binary).ok());
  // client_request_id is logged, cut to 256 bytes.
  v1::GenerateRequest tagged = GenerateRequest("tagged");
  const std::string id = "id \"7\"\nsecond line";
  tagged.set_client_request_id(id);
  ASSERT_TRUE(RunGenerate(stub, tagged).ok());
  v1::GenerateRequest long_id = GenerateRequest("long id");
  long_id.set_client_request_id(std::string(300, 'L'));
  ASSERT_TRUE(RunGenerate(stub, long_id).ok());
  grpc::ClientContext sctx;
  v1::ScoreRequest score;
  score.set_text("scored");
  score.mutable_options()->set_client_request_id("score-id");
  v1::ScoreResponse resp;
  ASSERT_TRUE(stub.Score(&sctx, score, &resp).ok());

  const nlohmann::json odd_line = RequestLine(*server_, "odd-model");
  ASSERT_FALSE(odd_line.is_null());
  EXPECT_EQ(odd_line["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(odd_line["model"], odd_model.substr(0, 256));
  EXPECT_NE(odd_line["error"].get<std::string>().find("is not served here"), std::string::npos);
  const nlohmann::json tagged_line = RequestLine(*server_, id);
  ASSERT_FALSE(tagged_line.is_null());
  EXPECT_EQ(tagged_line["rpc"], "Generate");
  EXPECT_EQ(tagged_line["code"], "OK");
  EXPECT_EQ(tagged_line["completion_tokens"], 2);
  EXPECT_FALSE(RequestLine(*server_, std::string(256, 'L')).is_null());
  const nlohmann::json score_line = RequestLine(*server_, "score-id");
  ASSERT_FALSE(score_line.is_null());
  EXPECT_EQ(score_line["rpc"], "Score");
  EXPECT_EQ(score_line["bytes"], 6);
  // Every line of stderr parses (LogLines fails the test otherwise), the library's own
  // message about the unparsable request among them.
  bool library_line = false;
  for (const nlohmann::json& l : LogLines(*server_)) {
    EXPECT_TRUE(l.contains("time") && l.contains("event")) << l.dump();
    if (l.value("event", "") == "library_log") library_line = true;
  }
  EXPECT_TRUE(library_line);
}

// ---- /metrics -----------------------------------------------------------------------------------

// A TCP client that sends `request` one byte per second; `closed_after` is set (seconds since
// connecting) when the server closes the connection.
class TricklingClient {
 public:
  TricklingClient(int port, std::string request) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    const Clock::time_point start = Clock::now();
    thread_ = std::thread([this, start, request = std::move(request)] {
      for (size_t i = 0; !stop_; i = (i + 1) % request.size()) {
        if (send(fd_, &request[i], 1, MSG_NOSIGNAL) != 1) break;
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 1000) > 0) {
          char buf[256];
          if (recv(fd_, buf, sizeof(buf), 0) <= 0) break;
        }
      }
      closed_after_ = SecondsSince(start);
    });
  }
  ~TricklingClient() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  bool connected() const { return connected_; }
  double closed_after() const { return closed_after_; }  // -1 while open

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<double> closed_after_{-1};
  std::thread thread_;
};

TEST_F(LimitsTest, ATricklingMetricsClientDoesNotBlockScrapesAndIsCutOff) {
  TricklingClient slow(server_->metrics_port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n");
  ASSERT_TRUE(slow.connected());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < 3; ++i) {
    const Clock::time_point start = Clock::now();
    const std::string m = Scrape(server_->metrics_port());
    EXPECT_LT(SecondsSince(start), 1.5);
    EXPECT_GT(MetricValue(m, "mswa_kv_blocks_capacity{window=\"16\"}"), 0);
  }
  // The request deadline (5 s) ends the trickling connection.
  for (int i = 0; i < 100 && slow.closed_after() < 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(slow.closed_after(), 4);
  EXPECT_LT(slow.closed_after(), 8);
}

TEST(LimitsLifecycle, ABadLimitFlagIsRefusedNamingIt) {
  const std::string log = TempPath("bad_limit.log");
  const int rc = std::system((kServer + " --model_dir=" + ModelDir() +
                              " --max_score_bytes=0 --listen=127.0.0.1:0 > " + log + " 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  std::ifstream in(log);
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(out.find("--max_score_bytes must be >= 1"), std::string::npos) << out;
}

TEST(LimitsLifecycle, SigtermExitsPromptlyWhileAMetricsClientTrickles) {
  ServerProcess server(kServer, {"--model_dir=" + ModelDir(), "--drain_grace_seconds=20"},
                       TempPath("trickle_sigterm.log"));
  ASSERT_EQ(server.Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  TricklingClient slow(server.metrics_port(), "GET /metrics HTTP/1.1\r\n");
  ASSERT_TRUE(slow.connected());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_LT(slow.closed_after(), 0);  // still connected
  const Clock::time_point start = Clock::now();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(10), 0);
  // Well before the connection's own 5 s deadline: shutdown does not wait for the client.
  EXPECT_LT(SecondsSince(start), 4);
  EXPECT_NE(server.Log().find("\"event\":\"stopped\""), std::string::npos);
}

}  // namespace
}  // namespace mswa
