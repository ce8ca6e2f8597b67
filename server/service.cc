#include "server/service.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/api/model_name.h"
#include "server/grpc/convert.h"
#include "server/grpc/generate_reactor.h"
#include "server/grpc/reactor_support.h"
#include "server/grpc/score_reactor.h"
#include "server/grpc/score_stream_reactor.h"
#include "server/grpc/stream_watchdog.h"
#include "server/grpc/unary_handlers.h"
#include "server/json_log.h"

namespace mswa {

namespace v1 = ::mswa::v1;

MswaServiceImpl::MswaServiceImpl(ServiceOptions options) : options_(std::move(options)) {
  const double idle_s = options_.limits.stream_idle_timeout_seconds;
  if (idle_s > 0) {
    // A quarter of the timeout between checks (so a stream ends within 1.25 timeouts), at
    // least 50 ms and at most 1 s.
    const absl::Duration period =
        std::clamp(absl::Seconds(idle_s) / 4, absl::Milliseconds(50), absl::Seconds(1));
    watchdog_ = std::make_unique<StreamWatchdog>(period);
  }
}

MswaServiceImpl::~MswaServiceImpl() = default;

void MswaServiceImpl::Attach(Engine* engine, Metrics* metrics) {
  engine_ = engine;
  metrics_ = metrics;
  ready_.store(true);
}

grpc::Status MswaServiceImpl::CheckModel(const std::string& model) const {
  // INVALID_ARGUMENT (not NOT_FOUND, which HTTP answers with 404) as it always was here.
  const absl::Status s = CheckModelName(options_.model_name, model);
  return s.ok() ? grpc::Status::OK : InvalidArgument(std::string(s.message()));
}

grpc::Status MswaServiceImpl::CheckApiKey(grpc::CallbackServerContext* ctx) const {
  if (!options_.api_keys.enabled()) return grpc::Status::OK;
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find("authorization");
  const absl::string_view value =
      it == metadata.end() ? absl::string_view() : absl::string_view(it->second.data(), it->second.size());
  const absl::Status s = options_.api_keys.Check(value);
  return s.ok() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
}

void MswaServiceImpl::LogRequest(const char* rpc, int64_t id, const grpc::Status& status,
                                 double seconds, const RequestTags& tags,
                                 const nlohmann::ordered_json& details) {
  const char* code = CodeName(status.error_code());
  if (metrics_ != nullptr) metrics_->RequestFinished("grpc", rpc, code, seconds);
  nlohmann::ordered_json fields = {{"api", "grpc"}, {"rpc", rpc}, {"id", id}, {"code", code}, {"seconds", seconds}};
  if (!tags.model.empty()) fields["model"] = TruncateForLog(tags.model);
  if (!tags.client_request_id.empty()) fields["client_request_id"] = TruncateForLog(tags.client_request_id);
  if (details.is_object()) {
    for (auto it = details.begin(); it != details.end(); ++it) fields[it.key()] = it.value();
  }
  if (!status.ok()) fields["error"] = TruncateForLog(status.error_message(), 4 * kMaxLoggedStringBytes);
  LogEvent("request", fields);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* MswaServiceImpl::Generate(
    grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) {
  if (grpc::Status auth = CheckApiKey(ctx); !ready() || !auth.ok()) {
    auto* r = new RejectingReactor<grpc::ServerWriteReactor<v1::GenerateResponse>>();
    r->Finish(auth.ok() ? LoadingStatus() : auth);
    return r;
  }
  return NewGenerateReactor(this, *request);
}

grpc::ServerUnaryReactor* MswaServiceImpl::Score(grpc::CallbackServerContext* ctx,
                                                 const v1::ScoreRequest* request,
                                                 v1::ScoreResponse* response) {
  if (grpc::Status auth = CheckApiKey(ctx); !ready() || !auth.ok()) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(auth.ok() ? LoadingStatus() : auth);
    return r;
  }
  return NewScoreReactor(this, *request, response);
}

grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>*
MswaServiceImpl::ScoreStream(grpc::CallbackServerContext* ctx) {
  if (grpc::Status auth = CheckApiKey(ctx); !ready() || !auth.ok()) {
    auto* r = new RejectingReactor<
        grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>>();
    r->Finish(auth.ok() ? LoadingStatus() : auth);
    return r;
  }
  return NewScoreStreamReactor(this, ctx);
}

grpc::ServerUnaryReactor* MswaServiceImpl::Tokenize(grpc::CallbackServerContext* ctx,
                                                    const v1::TokenizeRequest* request,
                                                    v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status auth = CheckApiKey(ctx); !auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  if (!ready() || draining()) {
    reactor->Finish(ready() ? DrainingStatus() : LoadingStatus());
    return reactor;
  }
  reactor->Finish(HandleTokenize(*engine_, options_.limits, *request, response));
  return reactor;
}

grpc::ServerUnaryReactor* MswaServiceImpl::GetModelInfo(grpc::CallbackServerContext* ctx,
                                                        const v1::GetModelInfoRequest* request,
                                                        v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status auth = CheckApiKey(ctx); !auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  if (!ready()) {
    reactor->Finish(LoadingStatus());
    return reactor;
  }
  HandleGetModelInfo(*engine_, options_.model_name, options_.limits, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mswa
