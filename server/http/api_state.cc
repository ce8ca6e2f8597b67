#include "server/http/api_state.h"

#include <utility>

#include "absl/time/clock.h"
#include "server/api/model_name.h"
#include "server/http/openai_error.h"
#include "server/json_log.h"

namespace mswa {

void ApiState::Attach(Engine* engine, Metrics* metrics, absl::StatusOr<ChatPrompt> chat) {
  engine_ = engine;
  metrics_ = metrics;
  chat_.emplace(std::move(chat));
  ready_.store(true);
}

void ApiState::MarkFailed(const absl::Status& error) {
  absl::MutexLock lock(&mu_);
  failure_ = absl::UnavailableError(error.message());
}

absl::Status ApiState::CheckServing() const {
  // The same words as gRPC's UNAVAILABLE answers (server/grpc/convert.cc).
  if (!ready()) {
    return absl::UnavailableError("the model is still loading; retry when health reports SERVING");
  }
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return failure_;
  }
  if (draining()) {
    return absl::UnavailableError("the server is draining (shutting down); retry on another replica");
  }
  return absl::OkStatus();
}

absl::Status ApiState::CheckModel(const std::string& requested) const {
  return CheckModelName(options_.model_name, requested);
}

RequestLog::RequestLog(ApiState& state, std::string path)
    : state_(state), path_(std::move(path)), start_(absl::Now()) {
  state_.in_flight_.fetch_add(1);
}

RequestLog::~RequestLog() {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  const std::string code = StatusCodeName(status_.code());
  if (state_.ready() && state_.metrics() != nullptr) {
    state_.metrics()->RequestFinished("http", path_, code, seconds);
  }
  nlohmann::ordered_json fields = {{"api", "http"},       {"rpc", path_}, {"id", id_},
                                   {"code", code},        {"http_status", HttpStatusFor(status_)},
                                   {"seconds", seconds}};
  if (!model_.empty()) fields["model"] = TruncateForLog(model_);
  for (auto it = details_.begin(); it != details_.end(); ++it) fields[it.key()] = it.value();
  if (!status_.ok()) fields["error"] = TruncateForLog(status_.message(), 4 * kMaxLoggedStringBytes);
  LogEvent("request", fields);
  state_.in_flight_.fetch_sub(1);
}

}  // namespace mswa
