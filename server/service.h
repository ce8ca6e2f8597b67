// The mswa.v1.MswaService implementation on gRPC's callback API. RPC threads validate, convert
// and enqueue; the engine thread produces events that the reactors stream back. Nothing here
// blocks a gRPC thread on the engine, and no reactor holds a lock while it tokenizes or calls
// the engine. One reactor per file in server/grpc/; input limits in server/api/limits.h.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "mswa/v1/mswa.grpc.pb.h"
#include "server/api/api_keys.h"
#include "server/api/limits.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace mswa {

class StreamWatchdog;

struct ServiceOptions {
  std::string model_name;  // reported by GetModelInfo; requests may name it
  RequestLimits limits;
  // When enabled, every MswaService RPC needs the "authorization" metadata "Bearer KEY";
  // grpc.health.v1 and reflection are other services and stay open.
  ApiKeys api_keys;
};

// What a request's log line says about its client, as the client sent it (cut to
// kMaxLoggedStringBytes when stored).
struct RequestTags {
  std::string model;
  std::string client_request_id;
};

class MswaServiceImpl final : public mswa::v1::MswaService::CallbackService {
 public:
  // Until Attach, every RPC fails with UNAVAILABLE ("the model is still loading"), so the gRPC
  // server (and its health service) can come up before the model.
  explicit MswaServiceImpl(ServiceOptions options);
  ~MswaServiceImpl() override;  // stops the stream watchdog; destroy after the gRPC server
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
  const RequestLimits& limits() const { return options_.limits; }
  // Ends ScoreStreams that wait on their client for longer than the idle timeout; null when the
  // timeout is 0.
  StreamWatchdog* stream_watchdog() { return watchdog_.get(); }

  // One JSON log line per finished request (stderr) and the request counter. `details`: an
  // object of extra fields (token counts, finish reason). Thread-safe.
  void LogRequest(const char* rpc, int64_t id, const grpc::Status& status, double seconds,
                  const RequestTags& tags, const nlohmann::ordered_json& details);
  // Checks `model` against the served name; "" is accepted. The message quotes at most
  // kMaxLoggedStringBytes of it.
  grpc::Status CheckModel(const std::string& model) const;
  // UNAUTHENTICATED unless the call carries an accepted key (OK when keys are off). Called once
  // at the entry of every RPC, before a reactor exists: gRPC 1.51's AuthMetadataProcessor cannot
  // be set on insecure credentials (it asserts) and a server interceptor cannot end a call with
  // a status, so this is the one place for it.
  grpc::Status CheckApiKey(grpc::CallbackServerContext* ctx) const;

 private:
  Engine* engine_ = nullptr;
  Metrics* metrics_ = nullptr;
  ServiceOptions options_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
  // Last: destroyed first, so a check still running releases its stream while the rest is
  // intact.
  std::unique_ptr<StreamWatchdog> watchdog_;
};

}  // namespace mswa
