// Shared by the gRPC integration tests of the real mswa-server (server_test.cc,
// server_lifecycle_test.cc): the server binary, the tiny test model, and Generate requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/server/server_process.h"

namespace mswa::testing::server_test {

inline const std::string kServer = std::string(MSWA_BINARY_DIR) + "/server/mswa-server";

// A path in this process's own temporary directory (server_process.h), and the tiny model
// written there once per process.
inline std::string TempPath(const std::string& name) {
  return mswa::testing::ProcessTempPath("mswa_server_test", "server_test_" + name);
}
inline const std::string& ModelDir() {
  return mswa::testing::TinyServerModelDir("mswa_server_test", "server_test_model");
}

// `max_tokens` tokens exactly (EOS ignored), sampled with seed 7.
inline v1::GenerateRequest GenerateRequest(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.mutable_stopping()->set_max_tokens(max_tokens);
  r.mutable_stopping()->set_ignore_eos(true);
  r.mutable_sampling()->set_seed(7);
  return r;
}

// Runs a Generate stream to its end (`deadline_s` seconds at most), appending every message to
// `out`; returns the stream's final status.
inline grpc::Status RunGenerate(v1::MswaService::Stub& stub, const v1::GenerateRequest& req,
                                std::vector<v1::GenerateResponse>* out, double deadline_s = 60) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(deadline_s * 1000)));
  auto reader = stub.Generate(&ctx, req);
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) out->push_back(msg);
  return reader->Finish();
}

}  // namespace mswa::testing::server_test
