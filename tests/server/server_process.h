// Runs the real mswa-server binary for integration tests: on 127.0.0.1 with free ports (gRPC,
// HTTP API, metrics), a model
// directory the test writes, stdout parsed for the addresses, stderr kept for the log lines.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <filesystem>

#include "gtest/gtest.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "model/format/weights.h"
#include "tests/model/test_models.h"
#include "mswa/v1/mswa.grpc.pb.h"

namespace mswa::testing {

// A path in a directory of this process's own under the test temp dir: ctest runs the tests of
// a file as parallel processes, which must not rewrite each other's files.
inline std::string ProcessTempPath(const std::string& suite, const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + suite + "_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

// A small, fast model directory with every window finite (scoring streams any length), written
// once per process.
// Its name (the served model's name) is `name`.
inline const std::string& TinyServerModelDir(const std::string& suite, const std::string& name) {
  static const std::string dir = [&suite, &name] {
    const std::string d = ProcessTempPath(suite, name);
    ModelConfig c = TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}});
    EXPECT_TRUE(WriteModelDirectory(d, c, RandomModelWeights(c, 5), DType::kF32).ok());
    return d;
  }();
  return dir;
}

class ServerProcess {
 public:
  // Starts `binary` with `args` plus listen flags; waits until health says SERVING (or 60 s).
  ServerProcess(const std::string& binary, std::vector<std::string> args, const std::string& log_path)
      : log_path_(log_path) {
    args.insert(args.begin(), binary);
    args.push_back("--listen=127.0.0.1:0");
    args.push_back("--metrics_listen=127.0.0.1:0");
    args.push_back("--http_listen=127.0.0.1:0");
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      FILE* err = std::fopen(log_path.c_str(), "w");
      if (err != nullptr) dup2(fileno(err), 2);
      close(out[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    char line[512];
    while ((port_ == 0 || metrics_port_ == 0) && std::fgets(line, sizeof(line), stdout_) != nullptr) {
      std::string l(line);
      const size_t colon = l.rfind(':');
      if (l.find("listening on") != std::string::npos) port_ = std::stoi(l.substr(colon + 1));
      // Printed between the two above.
      if (l.find("HTTP API on") != std::string::npos) http_port_ = std::stoi(l.substr(colon + 1));
      if (l.find("metrics on") != std::string::npos) {
        metrics_port_ = std::stoi(l.substr(l.rfind(':', l.find("/metrics")) + 1));
      }
    }
    channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
    stub_ = v1::MswaService::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
    for (int i = 0; i < 600 && Health() != grpc::health::v1::HealthCheckResponse::SERVING; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_ != nullptr) std::fclose(stdout_);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  int metrics_port() const { return metrics_port_; }
  int http_port() const { return http_port_; }  // the OpenAI-compatible HTTP API
  v1::MswaService::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    if (!health_->Check(&ctx, req, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    return resp.status();
  }

  void Signal(int sig) { kill(pid_, sig); }
  // Waits for exit; returns the exit status (or -1 after `seconds`).
  int Wait(double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  FILE* stdout_ = nullptr;
  int port_ = 0;
  int metrics_port_ = 0;
  int http_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MswaService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// GET http://127.0.0.1:port/metrics with curl.
inline std::string Scrape(int port) {
  std::string cmd = "curl -s --max-time 5 http://127.0.0.1:" + std::to_string(port) + "/metrics";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p != nullptr && (n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  if (p != nullptr) pclose(p);
  return out;
}

// The value of one exposition line `name{labels} value` (or `name value`); -1 when absent.
inline double MetricValue(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace mswa::testing
