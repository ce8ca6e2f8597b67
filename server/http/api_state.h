// What every handler of the HTTP API shares: the engine (once loaded), metrics, the served name,
// limits, the chat prompt, and the serving state (loading -> serving -> draining), plus the
// per-request log line and in-flight count. Thread-safe: the pointers are set once by Attach
// before `ready` turns true, and read only after it did.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/api/api_keys.h"
#include "server/api/chat_prompt.h"
#include "server/api/limits.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace mswa {

struct HttpApiOptions {
  std::string model_name;  // what /v1/models lists and requests may name
  RequestLimits limits;
  ApiKeys api_keys;  // when enabled, every endpoint but /health needs "Authorization: Bearer KEY"
  int threads = 32;  // connections served at once (a streaming request holds one throughout)
  // One read or write of a socket, and receiving a whole request. A client that reads its
  // stream slower than this is disconnected and its request cancelled.
  absl::Duration io_timeout = absl::Seconds(30);
};

class ApiState {
 public:
  explicit ApiState(HttpApiOptions options) : options_(std::move(options)), started_(absl::Now()) {}

  // Call once, before any request can see the engine.
  void Attach(Engine* engine, Metrics* metrics, absl::StatusOr<ChatPrompt> chat);
  void StartDraining() { draining_ = true; }
  // The model failed for good (Engine::SetFailureObserver's fatal case): every request and
  // /health answer 503 with `error` from now on, as gRPC health says NOT_SERVING.
  void MarkFailed(const absl::Status& error);

  bool ready() const { return ready_.load(); }
  bool draining() const { return draining_.load(); }
  // OK while serving; Unavailable "the model is still loading" / "the server is draining" /
  // the model's failure.
  absl::Status CheckServing() const;
  // CheckModelName against the served name (NotFound -> 404).
  absl::Status CheckModel(const std::string& requested) const;

  Engine& engine() const { return *engine_; }
  Metrics* metrics() const { return metrics_; }
  const absl::StatusOr<ChatPrompt>& chat() const { return *chat_; }
  const HttpApiOptions& options() const { return options_; }
  const RequestLimits& limits() const { return options_.limits; }
  absl::Time started() const { return started_; }
  int64_t in_flight() const { return in_flight_.load(); }

 private:
  friend class RequestLog;
  const HttpApiOptions options_;
  const absl::Time started_;
  Engine* engine_ = nullptr;
  Metrics* metrics_ = nullptr;
  std::optional<absl::StatusOr<ChatPrompt>> chat_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  mutable absl::Mutex mu_;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> in_flight_{0};
};

// One request from arrival to its last byte: counts as in flight (a drain waits for it), and
// when destroyed writes the request's JSON log line and its metrics (api="http"). A streaming
// response keeps it alive (shared) until the stream ends.
class RequestLog {
 public:
  RequestLog(ApiState& state, std::string path);
  ~RequestLog();
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  void set_status(const absl::Status& status) { status_ = status; }
  void set_id(int64_t id) { id_ = id; }
  void set_model(const std::string& model) { model_ = model; }
  nlohmann::ordered_json& details() { return details_; }  // extra fields of the log line

 private:
  ApiState& state_;
  const std::string path_;
  const absl::Time start_;
  absl::Status status_;
  int64_t id_ = 0;
  std::string model_;
  nlohmann::ordered_json details_ = nlohmann::ordered_json::object();
};

}  // namespace mswa
