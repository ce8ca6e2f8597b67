// Integration tests: the real mswa-server binary on 127.0.0.1 started for one test each: flags it
// refuses, a 16-bit KV cache, a full queue, and draining on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_process.h"
#include "tests/server/server_test_helpers.h"

namespace mswa {
namespace {

using mswa::testing::ServerProcess;
using mswa::testing::server_test::GenerateRequest;
using mswa::testing::server_test::kServer;
using mswa::testing::server_test::ModelDir;
using mswa::testing::server_test::RunGenerate;
using mswa::testing::server_test::TempPath;

// Runs mswa-server on the test model with `flags` until it exits (for flags it refuses):
// its exit code (-1 if it did not exit normally) and everything it printed.
struct ServerExit {
  int code;
  std::string output;
};
ServerExit RunServerToExit(const std::string& flags, const std::string& log_name) {
  const std::string log = TempPath(log_name);
  const int rc = std::system((kServer + " --model_dir=" + ModelDir() + " " + flags + " > " + log + " 2>&1").c_str());
  std::ifstream in(log);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1,
          std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())};
}

TEST(ServerLifecycle, HalfPrecisionKvCacheHalvesTheBoundPerSequence) {
  const std::vector<std::string> flags = {"--model_dir=" + ModelDir(), "--kv_cache_bytes=33554432"};
  std::vector<std::string> bf16_flags = flags;
  bf16_flags.push_back("--kv_cache_dtype=bfloat16");
  ServerProcess full(kServer, flags, TempPath("kv_f32.log"));
  ServerProcess half(kServer, bf16_flags, TempPath("kv_bf16.log"));
  v1::GetModelInfoResponse full_info, half_info;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(full.stub().GetModelInfo(&c1, v1::GetModelInfoRequest(), &full_info).ok());
  ASSERT_TRUE(half.stub().GetModelInfo(&c2, v1::GetModelInfoRequest(), &half_info).ok());
  EXPECT_EQ(half_info.kv_dtype(), "bfloat16");
  EXPECT_EQ(2 * half_info.kv_bytes_per_sequence_bound(), full_info.kv_bytes_per_sequence_bound());
  std::vector<v1::GenerateResponse> out;
  EXPECT_TRUE(RunGenerate(half.stub(), GenerateRequest("half", 20), &out).ok());
  EXPECT_FALSE(out.empty());

  // A type the server does not know: exit 2 with the choices, before listening.
  const ServerExit bad_kv = RunServerToExit("--kv_cache_dtype=fp8", "kv_bad.log");
  EXPECT_EQ(bad_kv.code, 2);
  EXPECT_NE(bad_kv.output.find("auto, float32, float16 or bfloat16"), std::string::npos) << bad_kv.output;

  // float16 compute on the CPU: the model is refused with what to use instead.
  const ServerExit bad_dtype = RunServerToExit("--dtype=float16 --listen=127.0.0.1:0 --metrics_listen=", "dtype_bad.log");
  EXPECT_EQ(bad_dtype.code, 1);
  EXPECT_NE(bad_dtype.output.find("--dtype=bfloat16"), std::string::npos) << bad_dtype.output;
}

TEST(ServerLifecycle, QueueFullIsResourceExhausted) {
  ServerProcess server(kServer,
                       {"--model_dir=" + ModelDir(), "--max_waiting=1", "--kv_cache_bytes=200000",
                        "--max_new_tokens=100000"},
                       TempPath("overload.log"));
  // The KV pool holds one sequence: the first request runs, the second waits (the queue's one
  // place), the third is refused at once.
  grpc::ClientContext running_ctx, waiting_ctx, refused_ctx;
  auto running = server.stub().Generate(&running_ctx, GenerateRequest("busy", 100000));
  v1::GenerateResponse msg;
  ASSERT_TRUE(running->Read(&msg));
  auto waiting = server.stub().Generate(&waiting_ctx, GenerateRequest("waiting", 100000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it reach the queue
  auto refused = server.stub().Generate(&refused_ctx, GenerateRequest("refused", 100000));
  EXPECT_FALSE(refused->Read(&msg));
  const grpc::Status s = refused->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Nothing accepted is lost: once the first is cancelled, the waiting one completes.
  running_ctx.TryCancel();
  while (running->Read(&msg)) {
  }
  ASSERT_TRUE(waiting->Read(&msg));
  EXPECT_GT(msg.token_ids_size(), 0);
  waiting_ctx.TryCancel();
  while (waiting->Read(&msg)) {
  }
  EXPECT_EQ(waiting->Finish().error_code(), grpc::StatusCode::CANCELLED);
  running->Finish();
}

TEST(ServerLifecycle, SigtermDrainsRunningStreamsAndExitsZero) {
  ServerProcess server(kServer, {"--model_dir=" + ModelDir(), "--drain_grace_seconds=20"},
                       TempPath("drain.log"));
  ASSERT_EQ(server.Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  // A stream that is running when SIGTERM arrives finishes normally.
  std::atomic<bool> got_first{false};
  grpc::Status running_status;
  int running_tokens = 0;
  std::thread runner([&] {
    grpc::ClientContext ctx;
    auto reader = server.stub().Generate(&ctx, GenerateRequest("drain", 300));
    v1::GenerateResponse msg;
    while (reader->Read(&msg)) {
      running_tokens += msg.token_ids_size();
      got_first = true;
    }
    running_status = reader->Finish();
  });
  while (!got_first) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.Signal(SIGTERM);
  // While draining: NOT_SERVING, and new requests are refused with UNAVAILABLE.
  bool saw_not_serving = false;
  grpc::Status refused;
  for (int i = 0; i < 200 && !saw_not_serving; ++i) {
    saw_not_serving = server.Health() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
    if (!saw_not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (saw_not_serving) {
    std::vector<v1::GenerateResponse> msgs;
    refused = RunGenerate(server.stub(), GenerateRequest("late", 3), &msgs);
  }
  runner.join();
  EXPECT_TRUE(saw_not_serving);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(running_status.ok()) << running_status.error_message();
  EXPECT_EQ(running_tokens, 300);
  EXPECT_EQ(server.Wait(30), 0);
  EXPECT_NE(server.Log().find("\"event\":\"stopped\""), std::string::npos);
}

}  // namespace
}  // namespace mswa
