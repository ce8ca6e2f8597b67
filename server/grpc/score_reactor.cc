#include "server/grpc/score_reactor.h"

#include <cstdint>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/api/score_request.h"
#include "server/grpc/convert.h"
#include "server/grpc/reactor_support.h"
#include "server/json_log.h"
#include "server/status_util.h"

namespace mswa {
namespace {

namespace v1 = ::mswa::v1;

// The gRPC thread fills token_ids (when asked) before the engine sees the request; after the
// last feed only the engine thread touches the response, and it finishes the call.
class ScoreReactor final : public grpc::ServerUnaryReactor, public Shared {
 public:
  ScoreReactor(MswaServiceImpl* service, const v1::ScoreRequest& request, v1::ScoreResponse* response)
      : service_(service),
        response_(response),
        start_(absl::Now()),
        in_flight_(service),
        bytes_(static_cast<int64_t>(request.text().size())),
        tags_{TruncateForLog(request.options().model()),
              TruncateForLog(request.options().client_request_id())} {
    grpc::Status s = Submit(request);
    if (!s.ok()) {
      {
        absl::MutexLock lock(&mu_);
        status_ = s;
      }
      Finish(s);
      Unref();  // the engine will never call back
    }
  }

  void OnCancel() override {
    // Members are read under the lock only: gRPC runs OnDone (which deletes this) after
    // OnCancel returns, but orders the two inside libgrpc++, where ThreadSanitizer cannot see
    // it; the lock, which OnDone takes too, is an order it sees.
    int64_t id = 0;
    MswaServiceImpl* service = nullptr;
    {
      absl::MutexLock lock(&mu_);
      id = id_;
      service = service_;
    }
    if (id != 0) service->engine().Cancel(id);
  }

  void OnDone() override {
    int64_t id = 0, tokens = 0;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      id = id_;
      tokens = scored_tokens_;
      status = status_;
    }
    service_->LogRequest("Score", id, status, absl::ToDoubleSeconds(absl::Now() - start_), tags_,
                         {{"bytes", bytes_}, {"tokens", tokens}});
    Unref();
  }

 private:
  // gRPC thread; no lock is held while tokenizing or calling the engine.
  grpc::Status Submit(const v1::ScoreRequest& req) {
    if (service_->draining()) return DrainingStatus();
    if (grpc::Status s = service_->CheckModel(req.options().model()); !s.ok()) return s;
    Engine& engine = service_->engine();
    // Validation and tokenization shared with HTTP /v1/score (server/api/score_request.h).
    absl::StatusOr<PreparedScore> prepared = PrepareScore(
        ScoreInput{req.text(), !req.options().has_add_bos() || req.options().add_bos(),
                   req.options().per_token_logprobs()},
        engine, service_->limits());
    if (!prepared.ok()) return ToGrpcStatus(prepared.status());
    const ScoreOptions o = prepared->options;
    const std::vector<int32_t> tokens = std::move(prepared->tokens);
    if (o.per_token_logprobs) {
      response_->mutable_result()->mutable_token_ids()->Add(tokens.begin(), tokens.end());
    }
    auto id = engine.SubmitScore(o, static_cast<int64_t>(tokens.size()),
                                 [this](EngineEvent e) { OnEvent(std::move(e)); });
    if (!id.ok()) return ToGrpcStatus(id.status());
    {
      absl::MutexLock lock(&mu_);
      id_ = *id;
    }
    // From here on the engine thread may finish the call at any moment: nothing below touches
    // the response.
    absl::Status fed = engine.FeedScore(*id, tokens, bytes_, true);
    // NotFound: the request already finished (shutdown, cancellation); its final event has
    // the status. Anything else is this request's fault: cancel it and report the error.
    if (!fed.ok() && !absl::IsNotFound(fed)) {
      {
        absl::MutexLock lock(&mu_);
        if (!finished_) fed_error_ = ToGrpcStatus(fed);
      }
      engine.Cancel(*id);  // the final event still arrives and finishes the call
    }
    return grpc::Status::OK;
  }

  // Engine thread.
  void OnEvent(EngineEvent e) {
    v1::ScoreResult* result = response_->mutable_result();
    result->mutable_token_logprobs()->Add(e.token_logprobs.begin(), e.token_logprobs.end());
    if (!e.finished) return;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      scored_tokens_ = e.score.tokens;
      status_ = fed_error_.ok() ? FinalStatus(e) : fed_error_;
      status = status_;
    }
    FillResult(e.score, result);
    response_->mutable_timings()->set_queue_seconds(e.timings.queue_seconds);
    response_->mutable_timings()->set_total_seconds(absl::ToDoubleSeconds(absl::Now() - start_));
    Finish(status);
    Unref();
  }

  MswaServiceImpl* const service_;
  v1::ScoreResponse* const response_;
  const absl::Time start_;
  InFlight in_flight_;
  const int64_t bytes_;
  const RequestTags tags_;
  absl::Mutex mu_;
  int64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // the final event arrived
  int64_t scored_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  grpc::Status fed_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerUnaryReactor* NewScoreReactor(MswaServiceImpl* service, const v1::ScoreRequest& request,
                                          v1::ScoreResponse* response) {
  return new ScoreReactor(service, request, response);
}

}  // namespace mswa
