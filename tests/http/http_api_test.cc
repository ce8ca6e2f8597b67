// Integration tests of the OpenAI-compatible HTTP API on one shared mswa-server (127.0.0.1, a tiny
// model): every endpoint, streaming, the refusals, a client that hangs up mid-stream, and the same
// tokens and error text as gRPC. Servers of their own (templates, API keys, queue full, draining)
// are in http_api_lifecycle_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/bench.h"
#include "client/client.h"
#include "tests/http/http_api_helpers.h"
#include "tests/http/http_client.h"
#include "tests/server/server_process.h"

namespace mswa {
namespace {

using mswa::testing::HttpCall;
using mswa::testing::HttpPost;
using mswa::testing::HttpResult;
using mswa::testing::MetricValue;
using mswa::testing::Scrape;
using mswa::testing::ServerProcess;
using mswa::testing::SseConnection;
using mswa::testing::http_api::Greedy;
using mswa::testing::http_api::GrpcGenerate;
using mswa::testing::http_api::ModelDir;
using mswa::testing::http_api::StreamEvents;
using mswa::testing::http_api::TempPath;
using mswa::testing::http_api::kModel;
using mswa::testing::http_api::kServer;
using nlohmann::json;

class HttpApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(kServer,
                                {"--model_dir=" + ModelDir(), "--kv_cache_bytes=33554432",
                                 "--max_new_tokens=100000", "--max_prompt_bytes=4096",
                                 "--drain_grace_seconds=5"},
                                TempPath("shared.log"));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static int port() { return server_->http_port(); }
  static ServerProcess* server_;
};
ServerProcess* HttpApiTest::server_ = nullptr;

double SumSeries(const std::string& exposition, const std::string& prefix) {
  std::istringstream in(exposition);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

TEST_F(HttpApiTest, ModelsHealthTokenizeDetokenize) {
  const HttpResult models = HttpCall(port(), "GET", "/v1/models");
  ASSERT_EQ(models.status, 200) << models.raw;
  EXPECT_EQ(models.body["object"], "list");
  ASSERT_EQ(models.body["data"].size(), 1u);
  EXPECT_EQ(models.body["data"][0]["id"], kModel);
  EXPECT_EQ(models.body["data"][0]["object"], "model");
  EXPECT_EQ(HttpCall(port(), "GET", std::string("/v1/models/") + kModel).status, 200);
  const HttpResult other = HttpCall(port(), "GET", "/v1/models/gpt-4");
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.body["error"]["code"], "model_not_found");

  const HttpResult health = HttpCall(port(), "GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body["status"], "serving");

  const HttpResult tok = HttpPost(port(), "/tokenize", {{"prompt", "hello"}});
  ASSERT_EQ(tok.status, 200) << tok.raw;
  // The byte tokenizer: BOS (256 here) then one id per byte, as gRPC Tokenize with add_bos.
  grpc::ClientContext ctx;
  v1::TokenizeRequest treq;
  treq.set_text("hello");
  treq.set_add_bos(true);
  v1::TokenizeResponse tresp;
  ASSERT_TRUE(server_->stub().Tokenize(&ctx, treq, &tresp).ok());
  std::vector<int> grpc_ids(tresp.token_ids().begin(), tresp.token_ids().end());
  EXPECT_EQ(tok.body["tokens"].get<std::vector<int>>(), grpc_ids);
  EXPECT_EQ(tok.body["count"], grpc_ids.size());
  const HttpResult no_bos = HttpPost(port(), "/tokenize", {{"content", "hello"}, {"add_special_tokens", false}});
  EXPECT_EQ(no_bos.body["tokens"].size(), grpc_ids.size() - 1);

  const HttpResult detok = HttpPost(port(), "/detokenize", {{"tokens", no_bos.body["tokens"]}});
  ASSERT_EQ(detok.status, 200) << detok.raw;
  EXPECT_EQ(detok.body["prompt"], "hello");
  EXPECT_EQ(detok.body["content"], "hello");
  EXPECT_EQ(HttpPost(port(), "/detokenize", {{"tokens", {100000}}}).status, 400);
}

TEST_F(HttpApiTest, CompletionGivesTheSameTokensAsGrpcGenerate) {
  json body = Greedy("The quick brown fox", 24);
  body["logprobs"] = 0;
  const HttpResult http = HttpPost(port(), "/v1/completions", body);
  ASSERT_EQ(http.status, 200) << http.raw;
  EXPECT_EQ(http.body["object"], "text_completion");
  EXPECT_EQ(http.body["model"], kModel);
  const json& choice = http.body["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(http.body["usage"]["completion_tokens"], 24);

  v1::GenerateRequest req;
  req.set_prompt("The quick brown fox");
  req.mutable_stopping()->set_max_tokens(24);
  req.mutable_stopping()->set_ignore_eos(true);
  req.set_logprobs(true);
  grpc::Status status;
  const auto msgs = GrpcGenerate(*server_, req, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::string text;
  std::vector<float> logprobs;
  for (const auto& m : msgs) {
    text += m.text();
    for (const auto& lp : m.logprobs()) logprobs.push_back(lp.token().logprob());
  }
  EXPECT_EQ(choice["text"], text);
  EXPECT_EQ(http.body["usage"]["prompt_tokens"], msgs.back().usage().prompt_tokens());
  ASSERT_EQ(choice["logprobs"]["token_logprobs"].size(), logprobs.size());
  for (size_t i = 0; i < logprobs.size(); ++i) {
    EXPECT_EQ(choice["logprobs"]["token_logprobs"][i].get<float>(), logprobs[i]) << i;
  }
}

TEST_F(HttpApiTest, StreamingGivesTheSameTextInChunksThenUsageAndDone) {
  const HttpResult whole = HttpPost(port(), "/v1/completions", Greedy("Once upon", 20));
  ASSERT_EQ(whole.status, 200) << whole.raw;
  json body = Greedy("Once upon", 20);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  // A client that accepts gzip still gets every event at once: event streams are not compressed.
  SseConnection c(port(), "/v1/completions", body.dump(), "Accept-Encoding: gzip, deflate\r\n");
  ASSERT_EQ(c.status(), 200) << c.headers();
  EXPECT_NE(c.headers().find("Content-Type: text/event-stream"), std::string::npos) << c.headers();
  EXPECT_EQ(c.headers().find("Content-Encoding"), std::string::npos) << c.headers();
  bool done = false;
  const std::vector<json> events = StreamEvents(c, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i]["object"], "text_completion");
    EXPECT_EQ(events[i]["id"], events[0]["id"]);
    text += events[i]["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, whole.body["choices"][0]["text"]);
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "length");
  const json& usage_chunk = events.back();
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 20);
}

TEST_F(HttpApiTest, StopStringsEndTheTextWithoutIt) {
  const HttpResult whole = HttpPost(port(), "/v1/completions", Greedy("In the beginning", 40));
  ASSERT_EQ(whole.status, 200);
  const std::string text = whole.body["choices"][0]["text"];
  ASSERT_GE(text.size(), 20u);
  const std::string stop = text.substr(12, 3);
  const std::string expected = text.substr(0, text.find(stop));
  for (bool stream : {false, true}) {
    json body = Greedy("In the beginning", 40);
    body["stop"] = {stop, "\x01never"};
    std::string got, finish, stop_reason;
    if (stream) {
      body["stream"] = true;
      SseConnection c(port(), "/v1/completions", body.dump());
      bool done = false;
      for (const json& e : StreamEvents(c, &done)) {
        got += e["choices"][0]["text"].get<std::string>();
        if (!e["choices"][0]["finish_reason"].is_null()) {
          finish = e["choices"][0]["finish_reason"];
          stop_reason = e["choices"][0]["stop_reason"];
        }
      }
      EXPECT_TRUE(done);
    } else {
      const HttpResult r = HttpPost(port(), "/v1/completions", body);
      ASSERT_EQ(r.status, 200) << r.raw;
      got = r.body["choices"][0]["text"];
      finish = r.body["choices"][0]["finish_reason"];
      stop_reason = r.body["choices"][0]["stop_reason"];
    }
    EXPECT_EQ(got, expected) << "stream " << stream;
    EXPECT_EQ(finish, "stop");
    EXPECT_EQ(stop_reason, stop);
  }
}

TEST_F(HttpApiTest, EchoAndLegacyLogprobs) {
  json body = Greedy("Echo me", 6);
  body["echo"] = true;
  const HttpResult echoed = HttpPost(port(), "/v1/completions", body);
  const HttpResult plain = HttpPost(port(), "/v1/completions", Greedy("Echo me", 6));
  ASSERT_EQ(echoed.status, 200) << echoed.raw;
  EXPECT_EQ(echoed.body["choices"][0]["text"],
            "Echo me" + plain.body["choices"][0]["text"].get<std::string>());

  json lp = Greedy("Echo me", 6);
  lp["logprobs"] = 2;
  const HttpResult r = HttpPost(port(), "/v1/completions", lp);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& l = r.body["choices"][0]["logprobs"];
  ASSERT_EQ(l["tokens"].size(), 6u);
  ASSERT_EQ(l["token_logprobs"].size(), 6u);
  ASSERT_EQ(l["top_logprobs"].size(), 6u);
  ASSERT_EQ(l["text_offset"].size(), 6u);
  std::string joined;
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_LE(l["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_GE(l["top_logprobs"][i].size(), 1u);
    EXPECT_LE(l["top_logprobs"][i].size(), 2u);
    // Greedy: the sampled token is the most likely one.
    double best = -1e30;
    for (auto it = l["top_logprobs"][i].begin(); it != l["top_logprobs"][i].end(); ++it) {
      best = std::max(best, it.value().get<double>());
    }
    EXPECT_EQ(l["token_logprobs"][i].get<double>(), best);
    EXPECT_EQ(l["text_offset"][i], joined.size());
    joined += l["tokens"][i].get<std::string>();
  }
  EXPECT_EQ(joined, r.body["choices"][0]["text"]);
}

TEST_F(HttpApiTest, ChatUsesThePlainPromptWithoutATemplate) {
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", "Hi"}}});
  json chat = {{"model", kModel}, {"messages", messages}, {"max_tokens", 12}, {"temperature", 0},
               {"ignore_eos", true}, {"logprobs", true}, {"top_logprobs", 2}};
  const HttpResult r = HttpPost(port(), "/v1/chat/completions", chat);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "chat.completion");
  const json& choice = r.body["choices"][0];
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["finish_reason"], "length");
  ASSERT_EQ(choice["logprobs"]["content"].size(), 12u);
  EXPECT_EQ(choice["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  // The tiny model has no chat template: "role: content" lines, then "assistant: ", after BOS.
  const HttpResult same = HttpPost(port(), "/v1/completions",
                                   Greedy("system: Be brief.\nuser: Hi\nassistant: ", 12));
  EXPECT_EQ(choice["message"]["content"], same.body["choices"][0]["text"]);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], same.body["usage"]["prompt_tokens"]);

  chat["stream"] = true;
  SseConnection c(port(), "/v1/chat/completions", chat.dump());
  ASSERT_EQ(c.status(), 200);
  bool done = false;
  const std::vector<json> events = StreamEvents(c, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  size_t logprob_entries = 0;
  for (const json& e : events) {
    const json& delta = e["choices"][0]["delta"];
    if (delta.contains("content")) content += delta["content"].get<std::string>();
    if (!e["choices"][0]["logprobs"].is_null()) logprob_entries += e["choices"][0]["logprobs"]["content"].size();
  }
  EXPECT_EQ(content, choice["message"]["content"]);
  EXPECT_EQ(logprob_entries, 12u);
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");
}

TEST_F(HttpApiTest, ScoreMatchesGrpcScore) {
  const std::string text = "It was the best of times, it was the worst of times.";
  const HttpResult r = HttpPost(port(), "/v1/score", {{"text", text}, {"per_token_logprobs", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  grpc::ClientContext ctx;
  v1::ScoreRequest req;
  req.set_text(text);
  v1::ScoreResponse resp;
  ASSERT_TRUE(server_->stub().Score(&ctx, req, &resp).ok());
  EXPECT_EQ(r.body["tokens"], resp.result().tokens());
  EXPECT_EQ(r.body["bytes"], resp.result().bytes());
  EXPECT_DOUBLE_EQ(r.body["perplexity"].get<double>(), resp.result().perplexity());
  EXPECT_DOUBLE_EQ(r.body["bits_per_byte"].get<double>(), resp.result().bits_per_byte());
  EXPECT_EQ(r.body["token_logprobs"].size(), static_cast<size_t>(resp.result().tokens()));
}

TEST_F(HttpApiTest, BadRequestsAreRefusedWithTheFieldNamed) {
  struct Case {
    std::string path;
    std::string body;
    int status;
    std::string param;  // "" = null
  };
  const std::vector<Case> cases = {
      {"/v1/completions", R"({"prompt": "x", "n": 2})", 400, "n"},
      {"/v1/completions", R"({"prompt": "x", "best_of": 2})", 400, "best_of"},
      {"/v1/completions", R"({"prompt": "x", "suffix": "y"})", 400, "suffix"},
      {"/v1/completions", R"({"prompt": "x", "temperature": -1})", 400, "temperature"},
      {"/v1/completions", R"({"prompt": "x", "top_p": 2})", 400, "top_p"},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 0})", 400, "max_tokens"},
      {"/v1/completions", R"({"prompt": "x", "mystery": 1})", 400, "mystery"},
      {"/v1/completions", R"({"prompt": "x")", 400, ""},
      {"/v1/completions", R"({"prompt": "x", "model": "gpt-4"})", 404, "model"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "tools": []})", 400, "tools"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]})",
       400, "messages[0].content[0].type"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
       400, "response_format"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "model": "nope"})", 404, "model"},
      {"/v1/score", R"({"text": 5})", 400, "text"},
      {"/nowhere", R"({})", 404, ""},
  };
  for (const Case& c : cases) {
    const HttpResult r = HttpCall(port(), "POST", c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.path << " " << c.body << ": " << r.raw;
    ASSERT_TRUE(r.body.contains("error")) << r.raw;
    const json& e = r.body["error"];
    EXPECT_FALSE(e["message"].get<std::string>().empty());
    EXPECT_TRUE(e.contains("type") && e.contains("code"));
    if (c.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << r.raw;
    } else {
      EXPECT_EQ(e["param"], c.param) << r.raw;
    }
  }
  EXPECT_EQ(HttpCall(port(), "GET", "/v1/completions").status, 404);
}

TEST_F(HttpApiTest, SameErrorTextAsGrpc) {
  struct Case {
    std::string name;
    json http;  // a /v1/completions body
    v1::GenerateRequest grpc;
  };
  std::vector<Case> cases;
  auto base = [](const std::string& prompt) {
    v1::GenerateRequest r;
    r.set_prompt(prompt);
    r.mutable_stopping()->set_max_tokens(4);
    r.mutable_sampling()->set_temperature(1);
    return r;
  };
  {
    Case c{"prompt over --max_prompt_bytes", {{"prompt", std::string(5000, 'a')}, {"max_tokens", 4}},
           base(std::string(5000, 'a'))};
    cases.push_back(c);
  }
  {
    Case c{"negative temperature", {{"prompt", "x"}, {"max_tokens", 4}, {"temperature", -1}}, base("x")};
    c.grpc.mutable_sampling()->set_temperature(-1);
    cases.push_back(c);
  }
  {
    Case c{"max_tokens over --max_new_tokens", {{"prompt", "x"}, {"max_tokens", 200000}}, base("x")};
    c.grpc.mutable_stopping()->set_max_tokens(200000);
    cases.push_back(c);
  }
  {
    Case c{"too many stop strings", {{"prompt", "x"}, {"max_tokens", 4}}, base("x")};
    for (int i = 0; i < 17; ++i) {
      c.http["stop"].push_back("s" + std::to_string(i));
      c.grpc.mutable_stopping()->add_stop("s" + std::to_string(i));
    }
    cases.push_back(c);
  }
  {
    Case c{"token id outside the vocabulary", {{"prompt", {5, 100000}}, {"max_tokens", 4}}, base("")};
    c.grpc.add_prompt_token_ids(5);
    c.grpc.add_prompt_token_ids(100000);
    cases.push_back(c);
  }
  {
    Case c{"unknown model", {{"prompt", "x"}, {"max_tokens", 4}, {"model", "gpt-4"}}, base("x")};
    c.grpc.set_model("gpt-4");
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    const HttpResult http = HttpPost(port(), "/v1/completions", c.http);
    grpc::Status status;
    GrpcGenerate(*server_, c.grpc, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_EQ(http.body["error"]["message"], status.error_message()) << c.name;
    EXPECT_EQ(http.status, c.name == "unknown model" ? 404 : 400) << c.name;
  }
  // Chat refuses top_logprobs with the words gRPC uses.
  const HttpResult chat = HttpPost(port(), "/v1/chat/completions",
                                   {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                    {"logprobs", true}, {"top_logprobs", 21}});
  v1::GenerateRequest req = base("x");
  req.set_top_logprobs(21);
  grpc::Status status;
  GrpcGenerate(*server_, req, &status);
  EXPECT_EQ(chat.body["error"]["message"], status.error_message());
}

TEST_F(HttpApiTest, BenchRunsOverHttpAsOverGrpc) {
  client::BenchOptions options;
  options.concurrency = 2;
  options.num_requests = 4;
  options.prompt_len = 16;
  options.output_len = 8;
  options.temperature = 0;
  auto http = client::RunHttpBench("127.0.0.1:" + std::to_string(port()), "", options);
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(http->completed, 4);
  EXPECT_EQ(http->failed, 0);
  EXPECT_EQ(http->total_output_tokens, 32);
  EXPECT_EQ(http->ttft.count, 4);
  client::ClientOptions grpc_options;
  grpc_options.target = server_->address();
  auto grpc_client = client::MswaClient::Create(grpc_options);
  ASSERT_TRUE(grpc_client.ok());
  auto grpc = client::RunBench(**grpc_client, options);
  ASSERT_TRUE(grpc.ok());
  EXPECT_EQ(grpc->total_output_tokens, http->total_output_tokens);
  EXPECT_EQ(grpc->total_input_tokens, http->total_input_tokens);
  // One message per engine step either way: the same number of inter-token samples.
  EXPECT_EQ(grpc->itl.count, http->itl.count);
  // Refusals are counted by what the HTTP status stands for.
  options.output_len = 1000000;  // over --max_new_tokens
  auto refused = client::RunHttpBench("127.0.0.1:" + std::to_string(port()), "", options);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->failed, 4);
  EXPECT_EQ(refused->errors.count("INVALID_ARGUMENT"), 1u);
}

TEST_F(HttpApiTest, ClientDisconnectMidStreamCancelsAndFreesKv) {
  json body = Greedy("Hang up on me", 100000);
  body["stream"] = true;
  {
    SseConnection c(port(), "/v1/completions", body.dump());
    ASSERT_EQ(c.status(), 200);
    ASSERT_FALSE(c.NextEvent().empty());
    EXPECT_GT(SumSeries(Scrape(server_->metrics_port()), "mswa_kv_blocks_used{"), 0);
  }  // hangs up
  // The server notices, cancels the request and frees its blocks (waits for it, bounded).
  double used = -1, cancelled = -1;
  for (int i = 0; i < 300; ++i) {
    const std::string m = Scrape(server_->metrics_port());
    used = SumSeries(m, "mswa_kv_blocks_used{");
    cancelled = MetricValue(m, R"(mswa_requests_total{api="http",code="CANCELLED",rpc="/v1/completions"})");
    if (used == 0 && cancelled >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(used, 0);
  EXPECT_EQ(cancelled, 1);
  EXPECT_NE(server_->Log().find(R"("api":"http","rpc":"/v1/completions")"), std::string::npos);
}

}  // namespace
}  // namespace mswa
