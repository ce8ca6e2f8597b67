// A bounded chaos run against a real mswa-server on loopback: tens of concurrent clients mix, for
// a fixed time, every way a client can use or abuse the API (Generate, Score, ScoreStream,
// cancellations, deadlines, streams that go quiet, clients killed mid-call, oversized and invalid
// requests); then the test checks that
//   - every RPC ended with a status its kind of call allows (e.g. a cancelled Generate is
//     CANCELLED or, if it had already finished, OK; never INTERNAL or UNKNOWN),
//   - once the clients stop, every KV block is free and nothing is running or waiting, before
//     any drain (mswa_kv_blocks_used sums to 0),
//   - the server still answers, its resident memory stayed under a stated bound throughout,
//   - SIGTERM drains it and it exits 0.
// It prints the count of each (kind, status). MSWA_CHAOS_SECONDS sets the duration (default 20),
// MSWA_CHAOS_CLIENTS the concurrency (default 24). Labelled slow.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_process.h"

namespace mswa {
namespace {

using grpc::StatusCode;
using mswa::testing::MetricValue;
using mswa::testing::Scrape;
using mswa::testing::ServerProcess;
using Clock = std::chrono::steady_clock;

const std::string kServer = std::string(MSWA_BINARY_DIR) + "/server/mswa-server";
const std::string kClient = std::string(MSWA_BINARY_DIR) + "/client/mswa-client";

// The server's limits in this run; the oversized requests go just past them.
constexpr int kMaxPromptBytes = 4096;
constexpr int kMaxScoreBytes = 32768;
// Below mswa-client's 64 KiB chunks: the killed clients' `score` must fit its chunks to it.
constexpr int kMaxChunkBytes = 8192;
constexpr int kMaxWaiting = 6;
constexpr double kIdleSeconds = 1.5;
// Resident memory the server may reach under this load (LibTorch, gRPC and OpenBLAS's arenas
// included; the KV pool is 32 MiB). Measured peak on the tiny model: about 300 MiB.
constexpr double kRssBoundMiB = 1024;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// Resident set size of a process in MiB (0 when it cannot be read).
double RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// The sum over window groups of a labelled gauge, e.g. mswa_kv_blocks_used{group="..."}.
double SumSeries(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  std::string line;
  double sum = 0;
  bool found = false;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
    found = true;
  }
  return found ? sum : -1;
}

std::string RandomText(std::mt19937& rng, size_t bytes) {
  static const char kWords[][8] = {"the ", "window ", "cache ", "of ", "a ", "model ", "and ",
                                   "in ", "to ", "block ", "\n", "tokens ", "é ", "99 "};
  std::string s;
  while (s.size() < bytes) s += kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
  s.resize(bytes);
  // Never cut inside the two-byte "é": keep the text valid UTF-8 like a real client's.
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0xC0) s.pop_back();
  return s;
}

// One kind of call a chaos client makes: what it does and which statuses it may end with.
struct Kind {
  const char* name;
  std::set<StatusCode> allowed;
  int weight;
};

// RESOURCE_EXHAUSTED: the waiting queue is full (kMaxWaiting) — a valid answer to any call.
const std::vector<Kind>& Kinds() {
  static const std::vector<Kind> kinds = {
      {"generate", {StatusCode::OK, StatusCode::RESOURCE_EXHAUSTED}, 6},
      {"generate_cancel", {StatusCode::OK, StatusCode::CANCELLED, StatusCode::RESOURCE_EXHAUSTED}, 3},
      {"generate_deadline",
       {StatusCode::OK, StatusCode::DEADLINE_EXCEEDED, StatusCode::RESOURCE_EXHAUSTED}, 3},
      {"score", {StatusCode::OK, StatusCode::RESOURCE_EXHAUSTED}, 3},
      {"score_per_token", {StatusCode::OK, StatusCode::RESOURCE_EXHAUSTED}, 1},
      {"score_stream", {StatusCode::OK, StatusCode::RESOURCE_EXHAUSTED}, 3},
      {"score_stream_cancel",
       {StatusCode::OK, StatusCode::CANCELLED, StatusCode::RESOURCE_EXHAUSTED}, 2},
      // A stream that sends one chunk and then nothing: the server ends it after
      // --stream_idle_timeout_seconds (or it was refused at admission).
      {"score_stream_idle", {StatusCode::DEADLINE_EXCEEDED, StatusCode::RESOURCE_EXHAUSTED}, 1},
      {"oversized_prompt", {StatusCode::INVALID_ARGUMENT}, 1},
      {"oversized_score", {StatusCode::INVALID_ARGUMENT}, 1},
      {"oversized_chunk", {StatusCode::INVALID_ARGUMENT, StatusCode::RESOURCE_EXHAUSTED}, 1},
      {"invalid_sampling", {StatusCode::INVALID_ARGUMENT}, 1},
      {"unknown_model", {StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND}, 1},
      // mswa-client killed with SIGKILL mid-call: the status is the client process's fate (OK:
      // the call finished before the kill; ABORTED: killed; RESOURCE_EXHAUSTED: refused).
      {"client_killed", {StatusCode::OK, StatusCode::ABORTED, StatusCode::RESOURCE_EXHAUSTED}, 2},
  };
  return kinds;
}

const char* CodeName(StatusCode code) {
  static const char* const kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "?";
}

class Tally {
 public:
  void Add(const Kind& kind, const grpc::Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[{kind.name, s.error_code()}];
    if (kind.allowed.count(s.error_code()) == 0 && unexpected_.size() < 20) {
      unexpected_.push_back(std::string(kind.name) + ": " + CodeName(s.error_code()) +
                            " \"" + s.error_message() + "\"");
    }
  }
  std::vector<std::string> unexpected() const { return unexpected_; }
  int64_t total() const {
    int64_t n = 0;
    for (const auto& [key, count] : counts_) n += count;
    return n;
  }
  int64_t Count(const std::string& kind) const {
    int64_t n = 0;
    for (const auto& [key, count] : counts_) n += key.first == kind ? count : 0;
    return n;
  }
  void Print() const {
    std::printf("%-22s %-20s %8s\n", "kind", "status", "calls");
    for (const auto& [key, count] : counts_) {
      std::printf("%-22s %-20s %8lld\n", key.first.c_str(), CodeName(key.second),
                  static_cast<long long>(count));
    }
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, StatusCode>, int64_t> counts_;
  std::vector<std::string> unexpected_;
};

void SetDeadline(grpc::ClientContext& ctx, double seconds) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
}

grpc::Status Generate(v1::MswaService::Stub& stub, std::mt19937& rng, const std::string& prompt,
                      int cancel_after, double deadline_s, float temperature = 1.0f) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline_s);
  v1::GenerateRequest req;
  req.set_prompt(prompt);
  req.mutable_stopping()->set_max_tokens(1 + static_cast<int>(rng() % 24));
  req.mutable_stopping()->set_ignore_eos(rng() % 2 == 0);
  req.mutable_sampling()->set_temperature(temperature);
  req.mutable_sampling()->set_seed(rng());
  if (rng() % 4 == 0) req.mutable_stopping()->add_stop("the");
  if (rng() % 4 == 0) req.set_top_logprobs(static_cast<int>(rng() % 5));
  auto reader = stub.Generate(&ctx, req);
  v1::GenerateResponse msg;
  int seen = 0;
  while (reader->Read(&msg)) {
    if (cancel_after >= 0 && ++seen > cancel_after) ctx.TryCancel();
  }
  return reader->Finish();
}

grpc::Status Score(v1::MswaService::Stub& stub, const std::string& text, bool per_token,
                   const std::string& model = "") {
  grpc::ClientContext ctx;
  SetDeadline(ctx, 60);
  v1::ScoreRequest req;
  req.set_text(text);
  req.mutable_options()->set_per_token_logprobs(per_token);
  if (!model.empty()) req.mutable_options()->set_model(model);
  v1::ScoreResponse resp;
  return stub.Score(&ctx, req, &resp);
}

// chunks: the texts to send; cancel_after_chunks >= 0 cancels after that many; idle stops
// sending (no WritesDone) after the first chunk and waits for the server to end the stream.
grpc::Status ScoreStream(v1::MswaService::Stub& stub, const std::vector<std::string>& chunks,
                         int cancel_after_chunks, bool idle) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, 60);
  auto stream = stub.ScoreStream(&ctx);
  v1::ScoreStreamRequest first;
  first.mutable_options()->set_per_token_logprobs(chunks.size() % 2 == 0);
  bool ok = stream->Write(first);
  int sent = 0;
  for (const std::string& chunk : chunks) {
    if (!ok) break;
    v1::ScoreStreamRequest req;
    req.set_chunk(chunk);
    ok = stream->Write(req);
    ++sent;
    if (cancel_after_chunks >= 0 && sent >= cancel_after_chunks) {
      ctx.TryCancel();
      break;
    }
    if (idle) break;
  }
  if (cancel_after_chunks >= 0 && sent < cancel_after_chunks) {
    ctx.TryCancel();  // fewer chunks than the cancellation point: cancel after the last one
  } else if (ok && !idle && cancel_after_chunks < 0) {
    stream->WritesDone();
  }
  v1::ScoreStreamResponse resp;
  while (stream->Read(&resp)) {
  }
  return stream->Finish();
}

// Runs mswa-client against the server and kills it with SIGKILL after `kill_after_ms`: the
// server sees a connection that dies without a cancellation or a goodbye. OK when the client had
// already exited by itself, ABORTED when it was killed.
grpc::Status KilledClient(const std::string& target, const std::string& input_file, bool score,
                          int kill_after_ms, const std::string& stderr_file) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    const int err = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(devnull, 1);
    dup2(err, 2);
    const std::string target_flag = "--target=" + target;
    if (score) {
      execl(kClient.c_str(), kClient.c_str(), target_flag.c_str(), "--quiet", "score",
            input_file.c_str(), static_cast<char*>(nullptr));
    } else {
      execl(kClient.c_str(), kClient.c_str(), target_flag.c_str(), "--quiet", "generate",
            "--max_tokens=200", "--ignore_eos", "once upon a time", static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return grpc::Status::OK;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
    return grpc::Status(StatusCode::ABORTED, "killed");
  }
  // The client ended by itself with an error: the server's status is in its message.
  std::ifstream in(stderr_file);
  std::stringstream message;
  message << in.rdbuf();
  if (message.str().find("RESOURCE_EXHAUSTED") != std::string::npos) {
    return grpc::Status(StatusCode::RESOURCE_EXHAUSTED, message.str());
  }
  return grpc::Status(StatusCode::UNKNOWN, "mswa-client exited with status " +
                                               std::to_string(status) + ": " + message.str());
}

TEST(Chaos, MixedAbuseLeavesNoBlockHeldAndDrainsCleanly) {
  const int seconds = EnvInt("MSWA_CHAOS_SECONDS", 20);
  const int clients = EnvInt("MSWA_CHAOS_CLIENTS", 24);
  const std::string model_dir = mswa::testing::TinyServerModelDir("mswa_chaos_test", "model");
  ServerProcess server(kServer,
                       {"--model_dir=" + model_dir, "--kv_cache_bytes=33554432",
                        "--max_waiting=" + std::to_string(kMaxWaiting),
                        "--max_prompt_bytes=" + std::to_string(kMaxPromptBytes),
                        "--max_score_bytes=" + std::to_string(kMaxScoreBytes),
                        "--max_stream_chunk_bytes=" + std::to_string(kMaxChunkBytes),
                        "--stream_idle_timeout_seconds=" + std::to_string(kIdleSeconds),
                        "--drain_grace_seconds=30"},
                       mswa::testing::ProcessTempPath("mswa_chaos_test", "server.log"));
  ASSERT_EQ(server.Health(), grpc::health::v1::HealthCheckResponse::SERVING) << server.Log();

  const std::string big_file = mswa::testing::ProcessTempPath("mswa_chaos_test", "big.txt");
  {
    std::mt19937 rng(7);
    std::ofstream(big_file) << RandomText(rng, 400000);
  }

  int total_weight = 0;
  for (const Kind& k : Kinds()) total_weight += k.weight;
  Tally tally;
  std::atomic<bool> stop{false};
  std::atomic<double> peak_rss{RssMiB(server.pid())};
  const auto end = Clock::now() + std::chrono::seconds(seconds);

  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(1000 + c);
      // One channel per client, as separate applications would have.
      auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
      auto stub = v1::MswaService::NewStub(channel);
      while (Clock::now() < end) {
        int pick = static_cast<int>(rng() % total_weight);
        const Kind* kind = &Kinds().front();
        for (const Kind& k : Kinds()) {
          if (pick < k.weight) {
            kind = &k;
            break;
          }
          pick -= k.weight;
        }
        const std::string name = kind->name;
        grpc::Status s;
        if (name == "generate") {
          s = Generate(*stub, rng, RandomText(rng, 1 + rng() % 400), -1, 60);
        } else if (name == "generate_cancel") {
          s = Generate(*stub, rng, RandomText(rng, 1 + rng() % 400), static_cast<int>(rng() % 3), 60);
        } else if (name == "generate_deadline") {
          s = Generate(*stub, rng, RandomText(rng, 1 + rng() % 400), -1, 0.001 * (1 + rng() % 80));
        } else if (name == "score" || name == "score_per_token") {
          s = Score(*stub, RandomText(rng, 1 + rng() % 6000), name == "score_per_token");
        } else if (name == "score_stream" || name == "score_stream_cancel" ||
                   name == "score_stream_idle") {
          std::vector<std::string> chunks(1 + rng() % 5);
          for (std::string& chunk : chunks) chunk = RandomText(rng, 1 + rng() % 3000);
          s = ScoreStream(*stub, chunks,
                          name == "score_stream_cancel" ? static_cast<int>(1 + rng() % 2) : -1,
                          name == "score_stream_idle");
        } else if (name == "oversized_prompt") {
          s = Generate(*stub, rng, RandomText(rng, kMaxPromptBytes + 16 + rng() % 100), -1, 60);
        } else if (name == "oversized_score") {
          s = Score(*stub, RandomText(rng, kMaxScoreBytes + 16 + rng() % 100), false);
        } else if (name == "oversized_chunk") {
          s = ScoreStream(*stub, {RandomText(rng, kMaxChunkBytes + 16)}, -1, false);
        } else if (name == "invalid_sampling") {
          s = Generate(*stub, rng, "hello", -1, 60, -1.0f);
        } else if (name == "unknown_model") {
          s = Score(*stub, "hello", false, "no-such-model");
        } else if (name == "client_killed") {
          s = KilledClient(server.address(), big_file, rng() % 2 == 0,
                           static_cast<int>(50 + rng() % 400),
                           mswa::testing::ProcessTempPath("mswa_chaos_test",
                                                          "client" + std::to_string(c) + ".err"));
        }
        tally.Add(*kind, s);
      }
    });
  }
  std::thread sampler([&] {
    while (!stop.load()) {
      peak_rss.store(std::max(peak_rss.load(), RssMiB(server.pid())));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  for (std::thread& t : threads) t.join();
  const double clients_done_s = std::chrono::duration<double>(Clock::now() - end).count();

  // Everything the clients started has ended; killed clients' streams end when the server sees
  // the dead connection (at once on loopback) or at the idle timeout.
  double used = -1, running = -1, waiting = -1;
  const auto settle_end = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < settle_end) {
    const std::string m = Scrape(server.metrics_port());
    used = SumSeries(m, "mswa_kv_blocks_used");
    running = MetricValue(m, "mswa_requests_running");
    waiting = MetricValue(m, "mswa_requests_waiting");
    if (used == 0 && running == 0 && waiting == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(used, 0) << "KV blocks still held after every client ended";
  EXPECT_EQ(running, 0);
  EXPECT_EQ(waiting, 0);

  // Still serving after all that.
  std::mt19937 rng(3);
  EXPECT_TRUE(Generate(server.stub(), rng, "after the storm", -1, 30).ok());
  EXPECT_TRUE(Score(server.stub(), "after the storm", true).ok());

  stop = true;
  sampler.join();
  server.Signal(SIGTERM);
  const int exit_status = server.Wait(60);

  std::printf("chaos: %d clients for %d s (+%.1f s for the last calls to end), %lld calls, "
              "peak RSS %.0f MiB (bound %.0f MiB), exit status %d\n",
              clients, seconds, clients_done_s, static_cast<long long>(tally.total()),
              peak_rss.load(), kRssBoundMiB, exit_status);
  tally.Print();
  for (const std::string& u : tally.unexpected()) ADD_FAILURE() << "unexpected status: " << u;
  for (const Kind& k : Kinds()) EXPECT_GT(tally.Count(k.name), 0) << k.name << " never ran";
  EXPECT_LT(peak_rss.load(), kRssBoundMiB);
  EXPECT_EQ(exit_status, 0) << server.Log().substr(0, 4000);
}

}  // namespace
}  // namespace mswa
