// Integration tests: the real mswa-server binary on 127.0.0.1 (one server shared by the suite),
// driven over gRPC. Servers of their own (refused flags, KV dtype, queue full, draining) are in
// server_lifecycle_test.cc.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/model_loader.h"
#include "tests/server/server_process.h"
#include "tests/server/server_test_helpers.h"

namespace mswa {
namespace {

using mswa::testing::MetricValue;
using mswa::testing::Scrape;
using mswa::testing::ServerProcess;
using mswa::testing::server_test::GenerateRequest;
using mswa::testing::server_test::kServer;
using mswa::testing::server_test::ModelDir;
using mswa::testing::server_test::RunGenerate;
using mswa::testing::server_test::TempPath;

const std::string kClient = std::string(MSWA_BINARY_DIR) + "/client/mswa-client";

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(kServer,
                                {"--model_dir=" + ModelDir(), "--kv_cache_bytes=33554432",
                                 "--max_tokens_per_step=2048",
                                 "--max_new_tokens=100000", "--drain_grace_seconds=5"},
                                TempPath("shared.log"));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};
ServerProcess* ServerTest::server_ = nullptr;

TEST_F(ServerTest, HealthIsServingForTheServerAndTheService) {
  EXPECT_EQ(server_->Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(server_->Health("mswa.v1.MswaService"), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(ServerTest, GenerateStreamsTokensAsTheyAreSampled) {
  std::vector<v1::GenerateResponse> msgs;
  ASSERT_TRUE(RunGenerate(server_->stub(), GenerateRequest("Hello", 20), &msgs).ok());
  ASSERT_GE(msgs.size(), 2u);  // one message per step, not one at the end
  int tokens = 0;
  for (size_t i = 0; i + 1 < msgs.size(); ++i) {
    EXPECT_FALSE(msgs[i].finished());
    tokens += msgs[i].token_ids_size();
  }
  const v1::GenerateResponse& last = msgs.back();
  tokens += last.token_ids_size();
  EXPECT_TRUE(last.finished());
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(tokens, 20);
  EXPECT_EQ(last.usage().completion_tokens(), 20);
  EXPECT_EQ(last.usage().prompt_tokens(), 6);  // BOS + 5 bytes
  EXPECT_GT(last.timings().total_seconds(), 0);
  // Same seed, same text.
  std::vector<v1::GenerateResponse> again;
  ASSERT_TRUE(RunGenerate(server_->stub(), GenerateRequest("Hello", 20), &again).ok());
  std::string a, b;
  for (const auto& m : msgs) a += m.text();
  for (const auto& m : again) b += m.text();
  EXPECT_EQ(a, b);
}

TEST_F(ServerTest, ScoreEqualsTheEnginesScore) {
  const std::string text = "The quick brown fox jumps over the lazy dog. 0123456789 naïve café";
  v1::ScoreRequest req;
  req.set_text(text);
  v1::ScoreResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(server_->stub().Score(&ctx, req, &resp).ok());

  EngineOptions o;
  o.kv_cache_bytes = 8 << 20;
  auto engine = LoadEngine(ModelDir(), o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ScoreTotals totals;
  auto tokens = (*engine)->tokenizer().Encode(text);
  auto id = (*engine)->SubmitScore(ScoreOptions{}, tokens.size(), [&](EngineEvent e) {
    if (e.finished) totals = e.score;
  });
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE((*engine)->FeedScore(*id, tokens, text.size(), true).ok());
  while ((*engine)->Step()) {
  }
  EXPECT_EQ(resp.result().tokens(), static_cast<int64_t>(text.size()));
  EXPECT_EQ(resp.result().bytes(), static_cast<int64_t>(text.size()));
  EXPECT_NEAR(resp.result().total_nll(), totals.total_nll, 1e-6 * totals.total_nll);
  EXPECT_NEAR(resp.result().bits_per_byte(), totals.bits_per_byte(), 1e-9);
  EXPECT_NEAR(resp.result().perplexity(), std::exp(totals.total_nll / totals.tokens), 1e-6);
}

TEST_F(ServerTest, ScoreStreamOfFiveMegabytesMatchesAndReportsProgress) {
  std::mt19937 rng(3);
  std::string text(5 << 20, ' ');
  for (char& ch : text) ch = static_cast<char>('a' + rng() % 26);
  grpc::ClientContext ctx;
  auto stream = server_->stub().ScoreStream(&ctx);
  std::thread writer([&] {
    for (size_t i = 0; i < text.size(); i += 65536) {
      v1::ScoreStreamRequest req;
      req.set_chunk(text.substr(i, 65536));
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  v1::ScoreStreamResponse msg;
  int progress = 0;
  int64_t most_ahead = 0;  // bytes received but not yet scored (one byte, one token)
  v1::ScoreResult result;
  while (stream->Read(&msg)) {
    if (msg.has_progress()) {
      ++progress;
      most_ahead = std::max(most_ahead, msg.progress().bytes_received() - msg.progress().tokens_scored());
    }
    if (msg.has_result()) result = msg.result();
  }
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(result.tokens(), static_cast<int64_t>(text.size()));
  EXPECT_EQ(result.bytes(), static_cast<int64_t>(text.size()));
  EXPECT_GT(progress, 0);
  EXPECT_GT(result.bits_per_byte(), 0);
  // Flow control: reading pauses once the backlog passes 2^18 tokens, so the server is never
  // more than that plus one chunk ahead of the engine.
  EXPECT_LE(most_ahead, (int64_t{1} << 18) + 65536);

  // The stream's result for a prefix equals the unary Score of the same text.
  const std::string prefix = text.substr(0, 3000);
  grpc::ClientContext c2, c3;
  auto s2 = server_->stub().ScoreStream(&c2);
  v1::ScoreStreamRequest first;
  first.set_chunk(prefix.substr(0, 1234));
  s2->Write(first);
  v1::ScoreStreamRequest second;
  second.set_chunk(prefix.substr(1234));
  s2->Write(second);
  s2->WritesDone();
  v1::ScoreResult streamed;
  while (s2->Read(&msg)) {
    if (msg.has_result()) streamed = msg.result();
  }
  ASSERT_TRUE(s2->Finish().ok());
  v1::ScoreRequest unary;
  unary.set_text(prefix);
  v1::ScoreResponse resp;
  ASSERT_TRUE(server_->stub().Score(&c3, unary, &resp).ok());
  EXPECT_NEAR(streamed.total_nll(), resp.result().total_nll(), 1e-6 * resp.result().total_nll());
}

TEST_F(ServerTest, ScoreReturnsPerTokenLogprobs) {
  const std::string text = "Per-token log-probabilities, one per byte of this text.";
  v1::ScoreRequest req;
  req.set_text(text);
  req.mutable_options()->set_per_token_logprobs(true);
  v1::ScoreResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(server_->stub().Score(&ctx, req, &resp).ok());
  const v1::ScoreResult& r = resp.result();
  ASSERT_EQ(r.token_logprobs_size(), static_cast<int>(text.size()));  // BOS first: every byte scored
  ASSERT_EQ(r.token_ids_size(), static_cast<int>(text.size()));
  double nll = 0;
  for (int i = 0; i < r.token_ids_size(); ++i) {
    EXPECT_EQ(r.token_ids(i), static_cast<unsigned char>(text[i]));
    EXPECT_LE(r.token_logprobs(i), 0);
    nll -= r.token_logprobs(i);
  }
  EXPECT_NEAR(nll, r.total_nll(), 1e-4 * r.total_nll());

  // Without BOS the first token has no context: one value fewer, the ids still all of them.
  req.mutable_options()->set_add_bos(false);
  grpc::ClientContext c2;
  ASSERT_TRUE(server_->stub().Score(&c2, req, &resp).ok());
  EXPECT_EQ(resp.result().token_logprobs_size(), static_cast<int>(text.size()) - 1);
  EXPECT_EQ(resp.result().token_ids_size(), static_cast<int>(text.size()));
}

// Per-token values of a long stream arrive in bounded pieces inside progress messages, never
// all at the end, and together equal the unary Score's.
TEST_F(ServerTest, ScoreStreamSendsPerTokenLogprobsInBoundedPieces) {
  std::mt19937 rng(11);
  std::string text(40000, ' ');
  for (char& ch : text) ch = static_cast<char>('a' + rng() % 26);
  v1::ScoreRequest unary_req;
  unary_req.set_text(text);
  unary_req.mutable_options()->set_per_token_logprobs(true);
  v1::ScoreResponse unary;
  grpc::ClientContext uctx;
  ASSERT_TRUE(server_->stub().Score(&uctx, unary_req, &unary).ok());
  ASSERT_EQ(unary.result().token_logprobs_size(), static_cast<int>(text.size()));

  grpc::ClientContext ctx;
  auto stream = server_->stub().ScoreStream(&ctx);
  std::thread writer([&] {
    for (size_t i = 0; i < text.size(); i += 3000) {
      v1::ScoreStreamRequest req;
      if (i == 0) req.mutable_options()->set_per_token_logprobs(true);
      req.set_chunk(text.substr(i, 3000));
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  std::vector<float> logprobs;
  std::vector<int32_t> ids;
  int pieces = 0;
  v1::ScoreResult result;
  v1::ScoreStreamResponse msg;
  while (stream->Read(&msg)) {
    if (msg.has_result()) result = msg.result();
    if (!msg.has_progress() || msg.progress().token_logprobs_size() == 0) continue;
    const v1::ScoreProgress& p = msg.progress();
    ++pieces;
    EXPECT_LE(p.token_logprobs_size(), 4096);
    EXPECT_EQ(p.token_ids_size(), p.token_logprobs_size());
    EXPECT_EQ(p.first_token_index(), static_cast<int64_t>(logprobs.size()));
    logprobs.insert(logprobs.end(), p.token_logprobs().begin(), p.token_logprobs().end());
    ids.insert(ids.end(), p.token_ids().begin(), p.token_ids().end());
  }
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_GE(pieces, 10);  // 40000 values, at most 4096 per message
  EXPECT_EQ(result.token_logprobs_size(), 0);  // nothing held back for the end
  EXPECT_EQ(result.tokens(), static_cast<int64_t>(text.size()));
  ASSERT_EQ(logprobs.size(), text.size());
  for (size_t i = 0; i < logprobs.size(); ++i) {
    ASSERT_EQ(ids[i], unary.result().token_ids(static_cast<int>(i))) << i;
    ASSERT_NEAR(logprobs[i], unary.result().token_logprobs(static_cast<int>(i)), 1e-4) << i;
  }

  // The client library gathers the pieces into the result, as the CLI's --per_token prints them.
  client::ClientOptions options;
  options.target = server_->address();
  auto client = client::MswaClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  std::istringstream in(text);
  v1::ScoreOptions score_options;
  score_options.set_per_token_logprobs(true);
  v1::ScoreResult gathered;
  ASSERT_TRUE((*client)->ScoreStream(in, score_options, nullptr, &gathered).ok());
  EXPECT_EQ(gathered.token_logprobs_size(), static_cast<int>(text.size()));
  EXPECT_EQ(gathered.token_ids_size(), static_cast<int>(text.size()));
}

TEST_F(ServerTest, ClientLibraryDrivesEveryRpc) {
  client::ClientOptions options;
  options.target = server_->address();
  options.deadline_seconds = 60;
  auto client = client::MswaClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  grpc::health::v1::HealthCheckResponse::ServingStatus health;
  ASSERT_TRUE((*client)->Health("", &health).ok());
  EXPECT_EQ(health, grpc::health::v1::HealthCheckResponse::SERVING);

  std::string text;
  int messages = 0;
  ASSERT_TRUE((*client)->Generate(GenerateRequest("library", 12), [&](const v1::GenerateResponse& m) {
    text += m.text();
    ++messages;
  }).ok());
  EXPECT_GE(messages, 2);

  const std::string doc = "Scoring through the client library, in 64 KiB chunks.\n";
  std::istringstream in(doc);
  v1::ScoreResult streamed;
  ASSERT_TRUE((*client)->ScoreStream(in, v1::ScoreOptions(), [](const v1::ScoreProgress&) {}, &streamed).ok());
  v1::ScoreRequest req;
  req.set_text(doc);
  v1::ScoreResponse unary;
  ASSERT_TRUE((*client)->Score(req, &unary).ok());
  EXPECT_EQ(streamed.tokens(), unary.result().tokens());
  EXPECT_NEAR(streamed.total_nll(), unary.result().total_nll(), 1e-6 * unary.result().total_nll());

  v1::GetModelInfoResponse info;
  ASSERT_TRUE((*client)->GetModelInfo(&info).ok());
  EXPECT_EQ(info.model_name(), "server_test_model");
}

TEST_F(ServerTest, ReflectionListsTheService) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(server_->channel());
  grpc::ClientContext ctx;
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "mswa.v1.MswaService"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
  // ...and describes it, so generic tools can build requests.
  req.set_file_containing_symbol("mswa.v1.MswaService");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, HundredCancelledStreamsLeaveTheKvPoolEmpty) {
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext ctx;
    auto reader = server_->stub().Generate(&ctx, GenerateRequest("cancel me " + std::to_string(i), 100000));
    v1::GenerateResponse msg;
    ASSERT_TRUE(reader->Read(&msg));
    ctx.TryCancel();
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The engine frees a cancelled request's blocks at its next step.
  double used = 1;
  for (int i = 0; i < 100 && used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string m = Scrape(server_->metrics_port());
    used = 0;
    for (const char* w : {"4", "8", "16"}) used += MetricValue(m, std::string("mswa_kv_blocks_used{window=\"") + w + "\"}");
  }
  EXPECT_EQ(used, 0);
  EXPECT_EQ(MetricValue(Scrape(server_->metrics_port()), "mswa_requests_running"), 0);
}

TEST_F(ServerTest, DeadlineEndsALongGeneration) {
  std::vector<v1::GenerateResponse> msgs;
  const grpc::Status s = RunGenerate(server_->stub(), GenerateRequest("slow", 100000), &msgs, 0.3);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(ServerTest, BadInputsAreInvalidArgumentNamingTheField) {
  struct Case {
    std::string name;
    v1::GenerateRequest req;
    std::string expect;
  };
  std::vector<Case> cases;
  {
    Case c{"empty prompt", GenerateRequest("", 5), "prompt"};
    cases.push_back(c);
  }
  {
    Case c{"max_tokens 0", GenerateRequest("x", 0), "max_tokens"};
    cases.push_back(c);
  }
  {
    Case c{"max_tokens absurd", GenerateRequest("x", 2000000000), "max_tokens"};
    cases.push_back(c);
  }
  {
    Case c{"negative temperature", GenerateRequest("x", 5), "temperature"};
    c.req.mutable_sampling()->set_temperature(-0.5f);
    cases.push_back(c);
  }
  {
    Case c{"top_p above 1", GenerateRequest("x", 5), "top_p"};
    c.req.mutable_sampling()->set_top_p(1.5f);
    cases.push_back(c);
  }
  {
    Case c{"too many stops", GenerateRequest("x", 5), "stop"};
    for (int i = 0; i < 17; ++i) c.req.mutable_stopping()->add_stop("s" + std::to_string(i));
    cases.push_back(c);
  }
  {
    Case c{"empty stop", GenerateRequest("x", 5), "stop"};
    c.req.mutable_stopping()->add_stop("");
    cases.push_back(c);
  }
  {
    Case c{"unknown model", GenerateRequest("x", 5), "model"};
    c.req.set_model("gpt-17");
    cases.push_back(c);
  }
  {
    Case c{"token id outside the vocabulary", GenerateRequest("", 5), "vocabulary"};
    c.req.add_prompt_token_ids(100000);
    cases.push_back(c);
  }
  {
    Case c{"too many top logprobs", GenerateRequest("x", 5), "top_logprobs"};
    c.req.set_top_logprobs(21);
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    std::vector<v1::GenerateResponse> msgs;
    const grpc::Status s = RunGenerate(server_->stub(), c.req, &msgs);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.expect), std::string::npos) << c.name << ": " << s.error_message();
    EXPECT_TRUE(msgs.empty()) << c.name;
  }
  grpc::ClientContext ctx;
  v1::ScoreRequest score;
  score.set_text("x");
  score.mutable_options()->set_model("other");
  v1::ScoreResponse resp;
  EXPECT_EQ(server_->stub().Score(&ctx, score, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The server is still fine.
  std::vector<v1::GenerateResponse> msgs;
  EXPECT_TRUE(RunGenerate(server_->stub(), GenerateRequest("still alive", 3), &msgs).ok());
}

TEST_F(ServerTest, MetricsMoveWhileRequestsRun) {
  const std::string before = Scrape(server_->metrics_port());
  std::vector<v1::GenerateResponse> msgs;
  ASSERT_TRUE(RunGenerate(server_->stub(), GenerateRequest("count me", 10), &msgs).ok());
  const std::string after = Scrape(server_->metrics_port());
  EXPECT_GE(MetricValue(after, "mswa_generated_tokens_total"),
            MetricValue(before, "mswa_generated_tokens_total") + 10);
  EXPECT_GT(MetricValue(after, "mswa_requests_total{api=\"grpc\",code=\"OK\",rpc=\"Generate\"}"),
            std::max(0.0, MetricValue(before, "mswa_requests_total{api=\"grpc\",code=\"OK\",rpc=\"Generate\"}")));
  EXPECT_GT(MetricValue(after, "mswa_time_to_first_token_seconds_count"), 0);
  EXPECT_GT(MetricValue(after, "mswa_step_duration_seconds_count"), 0);
  EXPECT_GT(MetricValue(after, "mswa_kv_blocks_capacity{window=\"16\"}"), 0);
  // The exposition is valid for Prometheus.
  const std::string path = TempPath("metrics.txt");
  std::ofstream(path) << after;
  if (std::system("command -v promtool > /dev/null") == 0) {
    EXPECT_EQ(std::system(("promtool check metrics < " + path + " > /dev/null 2>&1").c_str()), 0)
        << "promtool check metrics failed on " << path;
  }
}

TEST_F(ServerTest, GetModelInfoAndTokenize) {
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(server_->stub().GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.num_layers(), 2);
  ASSERT_EQ(info.attention_windows_size(), 2);
  EXPECT_EQ(info.attention_windows(1).windows(3), 16);
  EXPECT_GT(info.kv_bytes_per_sequence_bound(), 0);
  EXPECT_EQ(info.tokenizer(), "bytes");
  EXPECT_EQ(info.kv_dtype(), "float32");
  EXPECT_EQ(info.device(), "cpu");
  EXPECT_EQ(info.dtype(), "float32");
  EXPECT_EQ(info.product_kernel(), "float32");
  ASSERT_EQ(info.eos_token_ids_size(), 1);
  EXPECT_EQ(info.eos_token_ids(0), info.eos_token_id());
  EXPECT_EQ(info.native_windows_size(), 0);  // the windows are the model's own
  ASSERT_EQ(info.kv_bytes_at_length_size(), 3);
  EXPECT_EQ(info.kv_bytes_at_length(2).tokens(), 131072);
  // Bounded windows: the same bytes at every length, far below full attention's.
  EXPECT_EQ(info.kv_bytes_at_length(0).bytes(), info.kv_bytes_at_length(2).bytes());
  EXPECT_LT(info.kv_bytes_at_length(2).bytes() * 10, info.kv_bytes_at_length(2).full_attention_bytes());
  grpc::ClientContext c2;
  v1::TokenizeRequest t;
  t.set_text("hi");
  t.set_add_bos(true);
  v1::TokenizeResponse tr;
  ASSERT_TRUE(server_->stub().Tokenize(&c2, t, &tr).ok());
  ASSERT_EQ(tr.token_ids_size(), 3);
  EXPECT_EQ(tr.token_ids(0), 256);
  EXPECT_EQ(tr.tokens(1), "h");
}
}  // namespace
}  // namespace mswa
