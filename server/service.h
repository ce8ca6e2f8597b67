// The mswa.v1.MswaService implementation on gRPC's callback API. RPC threads validate, convert
// and enqueue; the engine thread produces events that the reactors stream back. Nothing here
// blocks a gRPC thread on the engine.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "mswa/v1/mswa.grpc.pb.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace mswa {

struct ServiceOptions {
  std::string model_name;  // reported by GetModelInfo; requests may name it
  int32_t max_stop_strings = 16;
  int32_t max_stop_bytes = 256;
  int64_t max_prompt_bytes = 1 << 20;    // Generate prompt text
  int64_t max_score_bytes = 64 << 20;    // unary Score text (ScoreStream has no limit)
};

class MswaServiceImpl final : public mswa::v1::MswaService::CallbackService {
 public:
  // Until Attach, every RPC fails with UNAVAILABLE ("the model is still loading"), so the gRPC
  // server (and its health service) can come up before the model.
  explicit MswaServiceImpl(ServiceOptions options);
  // `engine` and `metrics` (may be null) outlive the service. Call once.
  void Attach(Engine* engine, Metrics* metrics);
  bool ready() const { return ready_.load(); }
  // RPCs whose reactors are alive (streams and engine-backed calls).
  int64_t in_flight() const { return in_flight_.load(); }
  void AddInFlight(int64_t delta) { in_flight_ += delta; }

  // After this, every new RPC fails with UNAVAILABLE; running ones continue.
  void StartDraining() { draining_ = true; }
  bool draining() const { return draining_.load(); }

  grpc::ServerWriteReactor<mswa::v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* ctx, const mswa::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* ctx,
                                  const mswa::v1::ScoreRequest* request,
                                  mswa::v1::ScoreResponse* response) override;
  grpc::ServerBidiReactor<mswa::v1::ScoreStreamRequest, mswa::v1::ScoreStreamResponse>*
  ScoreStream(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const mswa::v1::TokenizeRequest* request,
                                     mswa::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* ctx,
                                         const mswa::v1::GetModelInfoRequest* request,
                                         mswa::v1::GetModelInfoResponse* response) override;

  Engine& engine() { return *engine_; }
  Metrics* metrics() { return metrics_; }
  const ServiceOptions& options() const { return options_; }
  // One structured log line per finished request (stderr).
  void LogRequest(const std::string& rpc, int64_t id, const grpc::Status& status,
                  const std::string& details, double seconds);
  // Checks `model` against the served name; "" is accepted.
  grpc::Status CheckModel(const std::string& model) const;

 private:
  Engine* engine_ = nullptr;
  Metrics* metrics_ = nullptr;
  ServiceOptions options_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace mswa
