// Integration tests of the OpenAI-compatible HTTP API on servers of their own: a model's chat
// template, API keys on both protocols, the queue-full (429) and draining (503) answers.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/format/weights.h"
#include "tests/http/http_api_helpers.h"
#include "tests/http/http_client.h"
#include "tests/model/test_models.h"
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
using mswa::testing::http_api::kServer;
using nlohmann::json;

v1::GenerateRequest GreedyGrpc(const std::string& prompt) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.mutable_stopping()->set_max_tokens(2);
  return r;
}

TEST(HttpApiLifecycle, ChatUsesTheModelsTemplate) {
  // A model directory with a chat template (and its BOS string) in tokenizer_config.json.
  const std::string dir = TempPath("templated_model");
  ModelConfig config = mswa::testing::TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}});
  ASSERT_TRUE(WriteModelDirectory(dir, config, RandomModelWeights(config, 5), DType::kF32).ok());
  const json tokenizer_config = {
      {"bos_token", "<s>"},
      {"eos_token", {{"content", "</s>"}}},
      {"chat_template",
       "{% if messages[-1]['role'] == 'assistant' %}{{ raise_exception('the last message must "
       "not be the assistant') }}{% endif %}{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] "
       "{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"}};
  std::ofstream(dir + "/tokenizer_config.json") << tokenizer_config.dump();
  ServerProcess server(kServer, {"--model_dir=" + dir}, TempPath("templated.log"));
  const int port = server.http_port();

  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", "Hi"}}});
  const HttpResult chat = HttpPost(port, "/v1/chat/completions",
                                   {{"messages", messages}, {"max_tokens", 10}, {"temperature", 0},
                                    {"ignore_eos", true}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  // The template's text, tokenized without adding BOS (the template wrote its own).
  json same = Greedy("<s>[system] Be brief.\n[user] Hi\n[assistant] ", 10);
  same.erase("model");
  same["add_special_tokens"] = false;
  const HttpResult completion = HttpPost(port, "/v1/completions", same);
  ASSERT_EQ(completion.status, 200) << completion.raw;
  EXPECT_EQ(chat.body["choices"][0]["message"]["content"], completion.body["choices"][0]["text"]);
  EXPECT_EQ(chat.body["usage"]["prompt_tokens"], completion.body["usage"]["prompt_tokens"]);

  // What the template refuses is a 400 with its own words.
  json refused_messages = messages;
  refused_messages.push_back({{"role", "assistant"}, {"content", "Hello"}});
  const HttpResult refused = HttpPost(port, "/v1/chat/completions", {{"messages", refused_messages}});
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find(
                "the last message must not be the assistant"),
            std::string::npos)
      << refused.raw;
  EXPECT_EQ(refused.body["error"]["param"], "messages");
}

TEST(HttpApiLifecycle, ApiKeysGuardBothProtocolsButNotHealth) {
  const std::string keys = TempPath("keys.txt");
  std::ofstream(keys) << "# one key per line\nkey-one\n\nkey-two\n";
  ServerProcess server(kServer, {"--model_dir=" + ModelDir(), "--api_key_file=" + keys},
                       TempPath("keys.log"));
  const int port = server.http_port();
  // HTTP: 401 without a key or with a wrong one, 200 with either key; /health stays open.
  const HttpResult none = HttpCall(port, "GET", "/v1/models");
  EXPECT_EQ(none.status, 401) << none.raw;
  EXPECT_EQ(none.body["error"]["code"], "invalid_api_key");
  EXPECT_EQ(none.body["error"]["type"], "authentication_error");
  EXPECT_EQ(HttpCall(port, "GET", "/v1/models", "", {{"Authorization", "Bearer key-three"}}).status, 401);
  EXPECT_EQ(HttpCall(port, "GET", "/v1/models", "", {{"Authorization", "key-one"}}).status, 401);
  EXPECT_EQ(HttpCall(port, "GET", "/v1/models", "", {{"Authorization", "Bearer key-one"}}).status, 200);
  const HttpResult completion =
      HttpCall(port, "POST", "/v1/completions", Greedy("x", 2).dump(), {{"Authorization", "bearer key-two"}});
  EXPECT_EQ(completion.status, 200) << completion.raw;
  EXPECT_EQ(HttpPost(port, "/v1/completions", Greedy("x", 2)).status, 401);
  EXPECT_EQ(HttpCall(port, "GET", "/health").status, 200);

  // gRPC: UNAUTHENTICATED without the metadata, served with it; health stays open (the
  // ServerProcess waited on it).
  EXPECT_EQ(server.Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  {
    grpc::ClientContext ctx;
    v1::GetModelInfoResponse info;
    EXPECT_EQ(server.stub().GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer key-two");
    v1::GetModelInfoResponse info;
    EXPECT_TRUE(server.stub().GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  }
  grpc::Status status;
  GrpcGenerate(server, GreedyGrpc("x"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();

  // mswa-client sends $MSWA_API_KEY (or --api_key).
  const std::string client = std::string(MSWA_BINARY_DIR) + "/client/mswa-client";
  const std::string target = " --target=" + server.address() + " info > /dev/null 2>&1";
  EXPECT_EQ(std::system(("MSWA_API_KEY=key-one " + client + target).c_str()), 0);
  EXPECT_EQ(std::system((client + " --api_key=key-two" + target).c_str()), 0);
  EXPECT_NE(std::system(("env -u MSWA_API_KEY " + client + target).c_str()), 0);
  // The keys never reach the log.
  const std::string log = server.Log();
  EXPECT_EQ(log.find("key-one"), std::string::npos);
  EXPECT_EQ(log.find("key-two"), std::string::npos);
  EXPECT_EQ(log.find("key-three"), std::string::npos);
}

TEST(HttpApiLifecycle, QueueFullIs429) {
  ServerProcess server(kServer,
                       {"--model_dir=" + ModelDir(), "--max_waiting=1", "--kv_cache_bytes=200000",
                        "--max_new_tokens=100000"},
                       TempPath("overload.log"));
  json body = Greedy("busy", 100000);
  body["stream"] = true;
  // The KV pool holds one sequence: the first runs, the second waits, the third is refused.
  SseConnection running(server.http_port(), "/v1/completions", body.dump());
  ASSERT_EQ(running.status(), 200);
  ASSERT_FALSE(running.NextEvent().empty());
  SseConnection waiting(server.http_port(), "/v1/completions", body.dump());
  ASSERT_EQ(waiting.status(), 200);  // accepted: the answer starts once the engine took it
  for (int i = 0; i < 300 && MetricValue(Scrape(server.metrics_port()), "mswa_requests_waiting") != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const HttpResult refused = HttpPost(server.http_port(), "/v1/completions", Greedy("refused", 5));
  EXPECT_EQ(refused.status, 429) << refused.raw;
  EXPECT_EQ(refused.body["error"]["type"], "rate_limit_error");
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("too many waiting requests"),
            std::string::npos);
  running.Close();  // frees the pool: the waiting one runs
  EXPECT_FALSE(waiting.NextEvent().empty());
}

TEST(HttpApiLifecycle, SigtermDrainsHttpStreamsAndAnswers503) {
  ServerProcess server(kServer, {"--model_dir=" + ModelDir(), "--drain_grace_seconds=20"},
                       TempPath("drain.log"));
  json body = Greedy("drain", 300);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  SseConnection running(server.http_port(), "/v1/completions", body.dump());
  ASSERT_EQ(running.status(), 200);
  ASSERT_FALSE(running.NextEvent().empty());
  server.Signal(SIGTERM);
  HttpResult health;
  for (int i = 0; i < 500; ++i) {
    health = HttpCall(server.http_port(), "GET", "/health");
    if (health.status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body["status"], "draining");
  const HttpResult late = HttpPost(server.http_port(), "/v1/completions", Greedy("late", 3));
  EXPECT_EQ(late.status, 503) << late.raw;
  EXPECT_NE(late.raw.find("draining"), std::string::npos);
  // The running stream finishes: every token, its usage, then [DONE].
  bool done = false;
  const std::vector<json> rest = StreamEvents(running, &done);
  EXPECT_TRUE(done);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back()["usage"]["completion_tokens"], 300);
  EXPECT_EQ(server.Wait(30), 0);
}

}  // namespace
}  // namespace mswa
