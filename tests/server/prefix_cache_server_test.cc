// Prefix caching through a real mswa-server: GetModelInfo states it, a repeated prompt is served
// from the cache with the same tokens and log-probabilities (gRPC and HTTP), the hit and query
// counters and cached blocks appear on /metrics, each protocol's per-request opt-out
// (skip_prefix_cache, cache_prompt: false) leaves the counters alone, a bad cache_prompt is
// refused by name, and --noenable_prefix_caching turns it off.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/http/http_client.h"
#include "tests/server/server_process.h"

namespace mswa {
namespace {

using mswa::testing::HttpPost;
using mswa::testing::HttpResult;
using mswa::testing::MetricValue;
using mswa::testing::Scrape;
using mswa::testing::ServerProcess;

const std::string kServer = std::string(MSWA_BINARY_DIR) + "/server/mswa-server";

const std::string& ModelDir() {
  return mswa::testing::TinyServerModelDir("mswa_prefix_cache_server_test", "tiny");
}

std::vector<int32_t> Prompt(int n, int salt) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 29 + salt * 7 + 3) % 256;
  return t;
}

struct Result {
  grpc::Status status;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

Result Generate(ServerProcess& server, const std::vector<int32_t>& prompt, bool skip_cache) {
  v1::GenerateRequest req;
  for (int32_t t : prompt) req.add_prompt_token_ids(t);
  req.mutable_stopping()->set_max_tokens(8);
  req.mutable_stopping()->set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(0);
  req.set_logprobs(true);
  req.set_top_logprobs(2);
  req.set_skip_prefix_cache(skip_cache);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = server.stub().Generate(&ctx, req);
  Result r;
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    r.tokens.insert(r.tokens.end(), msg.token_ids().begin(), msg.token_ids().end());
    for (const v1::SampledToken& s : msg.logprobs()) {
      r.logprobs.push_back(s.token().logprob());
      for (const v1::TokenLogprob& t : s.top()) r.logprobs.push_back(t.logprob());
    }
  }
  r.status = reader->Finish();
  return r;
}

void ExpectSame(const Result& a, const Result& b) {
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  ASSERT_TRUE(b.status.ok()) << b.status.error_message();
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
  for (size_t i = 0; i < a.logprobs.size(); ++i) EXPECT_NEAR(a.logprobs[i], b.logprobs[i], 1e-5) << i;
}

struct Counters {
  double queries = 0, hits = 0, cached = 0;
};

Counters Read(const ServerProcess& server) {
  const std::string m = Scrape(server.metrics_port());
  Counters c;
  c.queries = MetricValue(m, "mswa_prefix_cache_queries_total");
  c.hits = MetricValue(m, "mswa_prefix_cache_hits_total");
  for (const char* w : {"4", "8", "16"}) {
    c.cached += MetricValue(m, std::string("mswa_kv_blocks_cached{window=\"") + w + "\"}");
  }
  return c;
}

int64_t InfoPrefixCaching(ServerProcess& server) {
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  const grpc::Status s = server.stub().GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return info.prefix_caching() ? 1 : 0;
}

TEST(PrefixCacheServer, RepeatedPromptsHitOverGrpcAndHttpAndEachProtocolCanOptOut) {
  ServerProcess server(kServer, {"--model_dir=" + ModelDir(), "--warmup=false"},
                       mswa::testing::ProcessTempPath("mswa_prefix_cache_server_test", "on.log"));
  ASSERT_EQ(InfoPrefixCaching(server), 1);
  const Counters start = Read(server);
  EXPECT_EQ(start.queries, 0);
  EXPECT_EQ(start.hits, 0);

  // BOS + 60 ids: 61 tokens. A repeat resumes after the largest multiple of the block size
  // (16) that leaves a token to compute: 48.
  const std::vector<int32_t> prompt = Prompt(60, 1);
  const Result first = Generate(server, prompt, false);
  const Result again = Generate(server, prompt, false);
  ExpectSame(first, again);
  const Counters after = Read(server);
  EXPECT_EQ(after.queries, 122);
  EXPECT_EQ(after.hits, 48);
  EXPECT_GT(after.cached, 0);

  // Opting out: the same output, neither a lookup nor a hit.
  ExpectSame(first, Generate(server, prompt, true));
  const Counters skipped = Read(server);
  EXPECT_EQ(skipped.queries, after.queries);
  EXPECT_EQ(skipped.hits, after.hits);

  // HTTP: cache_prompt false opts out, the default hits; the same tokens as over gRPC.
  nlohmann::json body = {{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0},
                         {"ignore_eos", true}, {"cache_prompt", false}};
  // Token-id prompts over HTTP get no BOS, so this prompt is 60 tokens: it shares no block with
  // the gRPC ones (their first block starts with BOS).
  const HttpResult off = HttpPost(server.http_port(), "/v1/completions", body);
  ASSERT_EQ(off.status, 200) << off.body.dump();
  EXPECT_EQ(Read(server).queries, skipped.queries);
  body["cache_prompt"] = true;
  const HttpResult on1 = HttpPost(server.http_port(), "/v1/completions", body);
  const HttpResult on2 = HttpPost(server.http_port(), "/v1/completions", body);
  ASSERT_EQ(on2.status, 200) << on2.body.dump();
  EXPECT_EQ(on1.body["choices"][0]["text"], off.body["choices"][0]["text"]);
  EXPECT_EQ(on2.body["choices"][0]["text"], off.body["choices"][0]["text"]);
  const Counters http = Read(server);
  EXPECT_EQ(http.queries, skipped.queries + 120);
  EXPECT_EQ(http.hits, skipped.hits + 48);

  body["cache_prompt"] = "no";
  const HttpResult bad = HttpPost(server.http_port(), "/v1/completions", body);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.dump().find("cache_prompt"), std::string::npos) << bad.body.dump();
}

TEST(PrefixCacheServer, OffByFlag) {
  ServerProcess server(kServer,
                       {"--model_dir=" + ModelDir(), "--warmup=false", "--noenable_prefix_caching"},
                       mswa::testing::ProcessTempPath("mswa_prefix_cache_server_test", "off.log"));
  EXPECT_EQ(InfoPrefixCaching(server), 0);
  const std::vector<int32_t> prompt = Prompt(60, 2);
  ExpectSame(Generate(server, prompt, false), Generate(server, prompt, false));
  const Counters c = Read(server);
  EXPECT_EQ(c.queries, 0);
  EXPECT_EQ(c.hits, 0);
  EXPECT_EQ(c.cached, 0);
}

}  // namespace
}  // namespace mswa
