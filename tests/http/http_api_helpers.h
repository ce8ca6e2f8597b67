// Shared by the HTTP API integration tests (http_api_test.cc, http_api_lifecycle_test.cc): the
// server binary, the tiny test model, greedy requests for both protocols, and a stream's events.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/http/http_client.h"
#include "tests/server/server_process.h"

namespace mswa::testing::http_api {

using nlohmann::json;

// The server binary, and the served model's name (its directory's name).
inline const std::string kServer = std::string(MSWA_BINARY_DIR) + "/server/mswa-server";
inline constexpr char kModel[] = "http_test_model";

// A path in this process's own temporary directory (server_process.h), and the tiny model
// written there once per process.
inline std::string TempPath(const std::string& name) {
  return mswa::testing::ProcessTempPath("mswa_http_test", name);
}
inline const std::string& ModelDir() {
  return mswa::testing::TinyServerModelDir("mswa_http_test", kModel);
}

// A greedy /v1/completions body that ignores EOS: exactly `max_tokens` tokens.
inline json Greedy(const std::string& prompt, int max_tokens) {
  return {{"model", kModel}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0},
          {"ignore_eos", true}};
}

// Every "data:" payload of a stream, parsed, up to (not including) [DONE]; `done` tells whether
// [DONE] came last.
inline std::vector<json> StreamEvents(SseConnection& c, bool* done) {
  std::vector<json> out;
  *done = false;
  for (const std::string& e : c.AllEvents()) {
    if (e == "[DONE]") {
      *done = true;
      break;
    }
    out.push_back(json::parse(e));
  }
  return out;
}

// Runs a gRPC Generate stream to its end (60 s deadline): every message, and its final status in
// `status`.
inline std::vector<v1::GenerateResponse> GrpcGenerate(ServerProcess& s,
                                                      const v1::GenerateRequest& req,
                                                      grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = s.stub().Generate(&ctx, req);
  std::vector<v1::GenerateResponse> out;
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) out.push_back(msg);
  *status = reader->Finish();
  return out;
}

}  // namespace mswa::testing::http_api
