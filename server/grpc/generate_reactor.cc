#include "server/grpc/generate_reactor.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
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
    int64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      id = id_;
    }
    if (id != 0) service_->engine().Cancel(id);
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
    const RequestLimits& limits = service_->limits();
    Engine& engine = service_->engine();
    // Every size is checked before anything is copied or tokenized.
    if (req.prompt_token_ids_size() > 0) {
      if (absl::Status s = CheckPromptTokens(limits, req.prompt_token_ids_size()); !s.ok()) {
        return ToGrpcStatus(s);
      }
    } else {
      if (req.prompt().empty()) return InvalidArgument("prompt: must not be empty");
      if (absl::Status s = CheckPromptText(limits, static_cast<int64_t>(req.prompt().size())); !s.ok()) {
        return ToGrpcStatus(s);
      }
    }
    GenerateOptions g;
    const v1::SamplingParams& sp = req.sampling();
    g.sampling.temperature = sp.temperature();
    g.sampling.top_k = sp.top_k();
    g.sampling.top_p = sp.top_p() == 0.f ? 1.f : sp.top_p();
    g.sampling.min_p = sp.min_p();
    g.sampling.repetition_penalty = sp.repetition_penalty() == 0.f ? 1.f : sp.repetition_penalty();
    g.sampling.seed = sp.has_seed() ? sp.seed() : absl::ToUnixNanos(absl::Now()) ^ reinterpret_cast<uintptr_t>(this);
    if (!(sp.temperature() >= 0)) return InvalidArgument(absl::StrCat("sampling.temperature: must be >= 0, got ", sp.temperature()));
    if (sp.top_p() < 0 || sp.top_p() > 1) return InvalidArgument(absl::StrCat("sampling.top_p: must be in (0, 1], got ", sp.top_p()));
    if (absl::Status s = CheckStopCount(limits, "stopping.stop", req.stopping().stop_size()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    for (const std::string& stop : req.stopping().stop()) {
      if (absl::Status s = CheckStopString(limits, "stopping.stop", static_cast<int64_t>(stop.size()));
          !s.ok()) {
        return ToGrpcStatus(s);
      }
    }
    g.max_tokens = req.stopping().max_tokens();
    g.ignore_eos = req.stopping().ignore_eos();
    g.stop.assign(req.stopping().stop().begin(), req.stopping().stop().end());
    g.logprobs = req.logprobs();
    g.top_logprobs = req.top_logprobs();
    if (g.top_logprobs < 0 || g.top_logprobs > 20) {
      return InvalidArgument(absl::StrCat("top_logprobs: must be in [0, 20], got ", g.top_logprobs));
    }
    std::vector<int32_t> prompt;
    const bool add_bos = !req.has_add_bos() || req.add_bos();
    if (add_bos && engine.config().bos_token_id >= 0) {
      prompt.push_back(static_cast<int32_t>(engine.config().bos_token_id));
    }
    if (req.prompt_token_ids_size() > 0) {
      prompt.insert(prompt.end(), req.prompt_token_ids().begin(), req.prompt_token_ids().end());
    } else {
      for (int32_t t : engine.tokenizer().Encode(req.prompt())) prompt.push_back(t);
    }
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
