#include "server/grpc/generate_reactor.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/api/generate_request.h"
#include "server/grpc/convert.h"
#include "server/grpc/reactor_support.h"
#include "server/json_log.h"
#include "server/status_util.h"

namespace mswa {
namespace {

namespace v1 = ::mswa::v1;

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                              public Shared {
 public:
  GenerateReactor(MswaServiceImpl* service, const v1::GenerateRequest& request)
      : service_(service),
        start_(absl::Now()),
        in_flight_(service),
        tags_{TruncateForLog(request.model()), TruncateForLog(request.client_request_id())} {
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

  void OnWriteDone(bool ok) override {
    int64_t cancel = 0;
    {
      absl::MutexLock lock(&mu_);
      if (out_.Done(this, ok)) cancel = id_;  // the client went away
    }
    if (cancel != 0) service_->engine().Cancel(cancel);
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
    int64_t id = 0;
    grpc::Status status;
    nlohmann::ordered_json details;
    {
      absl::MutexLock lock(&mu_);
      id = id_;
      status = status_;
      details = details_;
    }
    service_->LogRequest("Generate", id, status, absl::ToDoubleSeconds(absl::Now() - start_), tags_,
                         details);
    Unref();
  }

 private:
  // gRPC thread: validation, tokenization and submission; no lock is held.
  grpc::Status Submit(const v1::GenerateRequest& req) {
    if (service_->draining()) return DrainingStatus();
    if (grpc::Status s = service_->CheckModel(req.model()); !s.ok()) return s;
    Engine& engine = service_->engine();
    // proto3 zeros mean "unset": top_p and repetition_penalty 0 are off (1), temperature 0 is
    // greedy. Validation and tokenization are the front end's (server/api/generate_request.h),
    // shared with the HTTP API.
    GenerateInput in;
    if (req.prompt_token_ids_size() > 0) {
      in.prompt_token_ids.assign(req.prompt_token_ids().begin(), req.prompt_token_ids().end());
    } else {
      in.prompt_text = req.prompt();
    }
    in.add_bos = !req.has_add_bos() || req.add_bos();
    const v1::SamplingParams& sp = req.sampling();
    in.temperature = sp.temperature();
    in.top_k = sp.top_k();
    in.top_p = sp.top_p() == 0.f ? 1.0 : sp.top_p();
    in.min_p = sp.min_p();
    in.repetition_penalty = sp.repetition_penalty() == 0.f ? 1.0 : sp.repetition_penalty();
    if (sp.has_seed()) in.seed = sp.seed();
    in.max_tokens = req.stopping().max_tokens();
    in.stop.assign(req.stopping().stop().begin(), req.stopping().stop().end());
    in.ignore_eos = req.stopping().ignore_eos();
    in.use_prefix_cache = !req.skip_prefix_cache();
    in.logprobs = req.logprobs();
    in.top_logprobs = req.top_logprobs();
    absl::StatusOr<PreparedGenerate> prepared =
        PrepareGenerate(in, engine, service_->limits(), FreshSeed());
    if (!prepared.ok()) return ToGrpcStatus(prepared.status());
    std::vector<int32_t> prompt = std::move(prepared->prompt);
    const GenerateOptions g = std::move(prepared->options);
    const int64_t prompt_tokens = static_cast<int64_t>(prompt.size());
    {
      absl::MutexLock lock(&mu_);
      details_ = {{"prompt_tokens", prompt_tokens}};
    }
    auto id = engine.SubmitGenerate(std::move(prompt), g, [this](EngineEvent e) { OnEvent(std::move(e)); });
    if (!id.ok()) return ToGrpcStatus(id.status());
    absl::MutexLock lock(&mu_);
    id_ = *id;
    return grpc::Status::OK;
  }

  // Engine thread. The message is built outside the lock; the lock only guards the queue.
  void OnEvent(EngineEvent e) {
    const absl::Time now = absl::Now();
    Metrics* metrics = service_->metrics();
    v1::GenerateResponse msg;
    msg.set_request_id(absl::StrCat(e.request_id));
    msg.set_text(ToValidUtf8(e.text));
    const Tokenizer& tok = service_->engine().tokenizer();
    for (size_t i = 0; i < e.token_ids.size(); ++i) {
      msg.add_token_ids(e.token_ids[i]);
      if (i < e.logprobs.size()) {
        v1::SampledToken* st = msg.add_logprobs();
        st->mutable_token()->set_token_id(e.logprobs[i].token);
        st->mutable_token()->set_token(tok.TokenBytes(e.logprobs[i].token));
        st->mutable_token()->set_logprob(e.logprobs[i].logprob);
        for (const TokenLogprob& alt : e.logprobs[i].top) {
          v1::TokenLogprob* a = st->add_top();
          a->set_token_id(alt.token);
          a->set_token(tok.TokenBytes(alt.token));
          a->set_logprob(alt.logprob);
        }
      }
    }
    if (!e.token_ids.empty() && first_token_ == absl::Time()) first_token_ = now;
    if (!e.token_ids.empty() && metrics != nullptr) {
      if (last_token_ == absl::Time()) {
        metrics->FirstToken(absl::ToDoubleSeconds(now - start_));
      } else {
        metrics->InterToken(absl::ToDoubleSeconds(now - last_token_) / e.token_ids.size());
      }
    }
    if (!e.token_ids.empty()) last_token_ = now;
    const bool finished = e.finished;
    nlohmann::ordered_json details;
    if (finished) {
      msg.set_finished(true);
      msg.set_finish_reason(ToProto(e.finish_reason));
      msg.set_matched_stop(e.matched_stop);
      msg.mutable_usage()->set_prompt_tokens(static_cast<int32_t>(e.prompt_tokens));
      msg.mutable_usage()->set_completion_tokens(static_cast<int32_t>(e.completion_tokens));
      msg.mutable_timings()->set_queue_seconds(e.timings.queue_seconds);
      msg.mutable_timings()->set_time_to_first_token_seconds(
          first_token_ == absl::Time() ? 0 : absl::ToDoubleSeconds(first_token_ - start_));
      msg.mutable_timings()->set_total_seconds(absl::ToDoubleSeconds(now - start_));
      if (metrics != nullptr) metrics->Queued(e.timings.queue_seconds);
      details = {{"prompt_tokens", e.prompt_tokens},
                 {"completion_tokens", e.completion_tokens},
                 {"finish_reason", FinishReasonName(e.finish_reason)},
                 {"queue_s", e.timings.queue_seconds}};
    }
    {
      absl::MutexLock lock(&mu_);
      if (finished) {
        details_ = std::move(details);
        status_ = FinalStatus(e);
        out_.final = true;
        out_.status = status_;
        // A cancelled or failed request sends no last message; the status says it all.
        if (status_.ok()) out_.Push(std::move(msg));
      } else {
        out_.Push(std::move(msg));
      }
      out_.Next(this);
    }
    if (finished) Unref();  // the engine is done with this reactor
  }

  MswaServiceImpl* const service_;
  const absl::Time start_;
  InFlight in_flight_;
  const RequestTags tags_;
  // Engine thread only.
  absl::Time first_token_;
  absl::Time last_token_;
  absl::Mutex mu_;
  int64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  nlohmann::ordered_json details_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  WriteQueue<v1::GenerateResponse> out_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* NewGenerateReactor(MswaServiceImpl* service,
                                                                  const v1::GenerateRequest& request) {
  return new GenerateReactor(service, request);
}

}  // namespace mswa
