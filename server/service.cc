#include "server/service.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "model/runtime/kv_layout.h"
#include "server/status_util.h"

namespace mswa {
namespace {

namespace v1 = ::mswa::v1;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::DO_NOT_USE: return "DO_NOT_USE";
  }
  return "UNKNOWN";
}

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

const grpc::Status kDraining(grpc::StatusCode::UNAVAILABLE,
                             "the server is draining (shutting down); retry on another replica");
const grpc::Status kLoading(grpc::StatusCode::UNAVAILABLE,
                            "the model is still loading; retry when health reports SERVING");

// Answers an RPC that arrives before the model is loaded; deletes itself when done.
template <typename Base>
class RejectingReactor final : public Base {
 public:
  void OnDone() override { delete this; }
};

// The status a finished engine request ends its RPC with.
grpc::Status FinalStatus(const EngineEvent& e) {
  switch (e.finish_reason) {
    case FinishReason::kCancelled:
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    case FinishReason::kAborted:
      return e.error.ok() ? grpc::Status(grpc::StatusCode::ABORTED, "aborted")
                          : ToGrpcStatus(e.error);
    case FinishReason::kNone:
    case FinishReason::kLength:
    case FinishReason::kEos:
    case FinishReason::kStop:
      return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return v1::FINISH_REASON_UNSPECIFIED;
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kAborted: return v1::FINISH_REASON_ABORTED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

// proto3 strings must be UTF-8, but a model can emit bytes that never form a character (the
// detokenizer releases them once that is certain). Each such byte becomes U+FFFD here; the exact
// bytes stay available in the logprobs' token fields.
std::string ToValidUtf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = s[i + k];
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

void FillResult(const ScoreTotals& t, v1::ScoreResult* out) {
  out->set_tokens(t.tokens);
  out->set_bytes(t.bytes);
  out->set_total_nll(t.total_nll);
  out->set_perplexity(t.perplexity());
  out->set_bits_per_byte(t.bits_per_byte());
}

// Counts a streaming or engine-backed RPC from its reactor's creation to its deletion, so a
// drain can wait for them.
class InFlight {
 public:
  explicit InFlight(MswaServiceImpl* service) : service_(service) { service_->AddInFlight(1); }
  ~InFlight() { service_->AddInFlight(-1); }

 private:
  MswaServiceImpl* service_;
};

// A reactor is shared by gRPC (until OnDone) and the engine (until the request's final event);
// whichever lets go last deletes it. This keeps a sink from touching a deleted reactor without
// holding a lock across Finish().
class Shared {
 public:
  virtual ~Shared() = default;
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

 private:
  std::atomic<int> refs_{2};
};

// The write side of a streaming reactor. gRPC allows one write in flight: the message being
// written is queue.front() until OnWriteDone. Once the final status is known and every queued
// message is written, the call is finished. Not thread-safe: the reactor holds its mutex.
template <typename Response>
struct WriteQueue {
  std::deque<Response> queue;
  bool writing = false;
  bool final = false;  // the status is known; finish after the queue drains
  bool finish_called = false;
  bool write_failed = false;  // the client went away: nothing more is written
  grpc::Status status;

  template <typename Reactor>
  void Next(Reactor* reactor) {
    if (writing) return;
    if (!queue.empty()) {
      writing = true;
      reactor->StartWrite(&queue.front());
    } else if (final && !finish_called) {
      finish_called = true;
      reactor->Finish(status);
    }
  }

  // Call from OnWriteDone. Returns true when this write failed (first time only).
  template <typename Reactor>
  bool Done(Reactor* reactor, bool ok) {
    queue.pop_front();
    writing = false;
    const bool newly_failed = !ok && !write_failed;
    if (newly_failed) {
      write_failed = true;
      queue.clear();
    }
    Next(reactor);
    return newly_failed;
  }

  void Push(Response msg) {
    if (!write_failed) queue.push_back(std::move(msg));
  }
};

// ---------------------------------------------------------------------------------------------
// Generate: server streaming. Engine events become messages in a queue written one at a time.

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                              public Shared {
 public:
  GenerateReactor(MswaServiceImpl* service, const v1::GenerateRequest& request)
      : service_(service), start_(absl::Now()), in_flight_(service) {
    grpc::Status s = Submit(request);
    if (!s.ok()) {
      status_ = s;
      Finish(s);
      Unref();  // the engine will never call back
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (out_.Done(this, ok)) service_->engine().Cancel(id_);  // the client went away
  }

  void OnCancel() override {
    if (id_ != 0) service_->engine().Cancel(id_);
  }

  void OnDone() override {
    service_->LogRequest("Generate", id_, status_, details_, absl::ToDoubleSeconds(absl::Now() - start_));
    Unref();
  }

 private:
  grpc::Status Submit(const v1::GenerateRequest& req) {
    if (service_->draining()) return kDraining;
    if (grpc::Status s = service_->CheckModel(req.model()); !s.ok()) return s;
    const ServiceOptions& opt = service_->options();
    Engine& engine = service_->engine();
    std::vector<int32_t> prompt;
    const bool add_bos = !req.has_add_bos() || req.add_bos();
    if (add_bos && engine.config().bos_token_id >= 0) {
      prompt.push_back(static_cast<int32_t>(engine.config().bos_token_id));
    }
    if (req.prompt_token_ids_size() > 0) {
      prompt.insert(prompt.end(), req.prompt_token_ids().begin(), req.prompt_token_ids().end());
    } else {
      if (req.prompt().empty()) return Invalid("prompt: must not be empty");
      if (static_cast<int64_t>(req.prompt().size()) > opt.max_prompt_bytes) {
        return Invalid(absl::StrCat("prompt: ", req.prompt().size(), " bytes is more than the limit of ",
                                    opt.max_prompt_bytes));
      }
      for (int32_t t : engine.tokenizer().Encode(req.prompt())) prompt.push_back(t);
    }
    GenerateOptions g;
    const v1::SamplingParams& sp = req.sampling();
    g.sampling.temperature = sp.temperature();
    g.sampling.top_k = sp.top_k();
    g.sampling.top_p = sp.top_p() == 0.f ? 1.f : sp.top_p();
    g.sampling.min_p = sp.min_p();
    g.sampling.repetition_penalty = sp.repetition_penalty() == 0.f ? 1.f : sp.repetition_penalty();
    g.sampling.seed = sp.has_seed() ? sp.seed() : absl::ToUnixNanos(absl::Now()) ^ reinterpret_cast<uintptr_t>(this);
    if (!(sp.temperature() >= 0)) return Invalid(absl::StrCat("sampling.temperature: must be >= 0, got ", sp.temperature()));
    if (sp.top_p() < 0 || sp.top_p() > 1) return Invalid(absl::StrCat("sampling.top_p: must be in (0, 1], got ", sp.top_p()));
    g.max_tokens = req.stopping().max_tokens();
    g.ignore_eos = req.stopping().ignore_eos();
    if (req.stopping().stop_size() > opt.max_stop_strings) {
      return Invalid(absl::StrCat("stopping.stop: at most ", opt.max_stop_strings, " stop strings, got ",
                                  req.stopping().stop_size()));
    }
    for (const std::string& s : req.stopping().stop()) {
      if (s.empty()) return Invalid("stopping.stop: stop strings must not be empty");
      if (static_cast<int32_t>(s.size()) > opt.max_stop_bytes) {
        return Invalid(absl::StrCat("stopping.stop: each stop string may have at most ", opt.max_stop_bytes, " bytes"));
      }
      g.stop.push_back(s);
    }
    g.logprobs = req.logprobs();
    g.top_logprobs = req.top_logprobs();
    if (g.top_logprobs < 0 || g.top_logprobs > 20) {
      return Invalid(absl::StrCat("top_logprobs: must be in [0, 20], got ", g.top_logprobs));
    }
    details_ = absl::StrCat("\"prompt_tokens\":", prompt.size());
    auto id = engine.SubmitGenerate(std::move(prompt), g, [this](EngineEvent e) { OnEvent(std::move(e)); });
    if (!id.ok()) return ToGrpcStatus(id.status());
    id_ = *id;
    return grpc::Status::OK;
  }

  // Engine thread.
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
      details_ = absl::StrCat("\"prompt_tokens\":", e.prompt_tokens, ",\"completion_tokens\":",
                              e.completion_tokens, ",\"finish_reason\":\"", FinishReasonName(e.finish_reason),
                              "\",\"queue_s\":", absl::StrFormat("%.4f", e.timings.queue_seconds));
    }
    {
      absl::MutexLock lock(&mu_);
      if (finished) {
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

  MswaServiceImpl* service_;
  const absl::Time start_;
  InFlight in_flight_;
  int64_t id_ = 0;
  absl::Time first_token_;
  absl::Time last_token_;
  std::string details_;
  absl::Mutex mu_;
  WriteQueue<v1::GenerateResponse> out_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_;
};

// ---------------------------------------------------------------------------------------------
// Score: unary. The engine's final event completes the response.

class ScoreReactor final : public grpc::ServerUnaryReactor, public Shared {
 public:
  ScoreReactor(MswaServiceImpl* service, const v1::ScoreRequest& request, v1::ScoreResponse* response)
      : service_(service), response_(response), start_(absl::Now()), in_flight_(service),
        bytes_(request.text().size()) {
    grpc::Status s = Submit(request);
    if (!s.ok()) {
      status_ = s;
      Finish(s);
      Unref();
    }
  }
  void OnCancel() override {
    if (id_ != 0) service_->engine().Cancel(id_);
  }
  void OnDone() override {
    service_->LogRequest("Score", id_, status_, absl::StrCat("\"bytes\":", bytes_),
                         absl::ToDoubleSeconds(absl::Now() - start_));
    Unref();
  }

 private:
  grpc::Status Submit(const v1::ScoreRequest& req) {
    if (service_->draining()) return kDraining;
    if (grpc::Status s = service_->CheckModel(req.options().model()); !s.ok()) return s;
    if (static_cast<int64_t>(req.text().size()) > service_->options().max_score_bytes) {
      return Invalid(absl::StrCat("text: ", req.text().size(), " bytes is more than Score's limit of ",
                                  service_->options().max_score_bytes, "; use ScoreStream for large texts"));
    }
    Engine& engine = service_->engine();
    ScoreOptions o;
    o.add_bos = !req.options().has_add_bos() || req.options().add_bos();
    o.per_token_logprobs = req.options().per_token_logprobs();
    per_token_ = o.per_token_logprobs;
    const std::vector<int32_t> tokens = engine.tokenizer().Encode(req.text());
    auto id = engine.SubmitScore(o, static_cast<int64_t>(tokens.size()),
                                 [this](EngineEvent e) { OnEvent(std::move(e)); });
    if (!id.ok()) return ToGrpcStatus(id.status());
    id_ = *id;
    absl::Status fed = engine.FeedScore(id_, tokens, static_cast<int64_t>(req.text().size()), true);
    if (!fed.ok()) {
      engine.Cancel(id_);  // the final event still arrives and finishes the call
      fed_error_ = ToGrpcStatus(fed);
    }
    if (per_token_) {
      for (int32_t t : tokens) response_->mutable_result()->add_token_ids(t);
    }
    return grpc::Status::OK;
  }

  void OnEvent(EngineEvent e) {
    for (float lp : e.token_logprobs) response_->mutable_result()->add_token_logprobs(lp);
    if (!e.finished) return;
    status_ = fed_error_.ok() ? FinalStatus(e) : fed_error_;
    FillResult(e.score, response_->mutable_result());
    response_->mutable_timings()->set_queue_seconds(e.timings.queue_seconds);
    response_->mutable_timings()->set_total_seconds(absl::ToDoubleSeconds(absl::Now() - start_));
    Finish(status_);
    Unref();
  }

  MswaServiceImpl* service_;
  v1::ScoreResponse* response_;
  const absl::Time start_;
  InFlight in_flight_;
  const size_t bytes_;
  int64_t id_ = 0;
  bool per_token_ = false;
  grpc::Status status_;
  grpc::Status fed_error_;
};

// ---------------------------------------------------------------------------------------------
// ScoreStream: the client streams text, the server streams progress and the result. Reading
// pauses while the engine is more than kMaxBacklog tokens behind, so memory stays bounded
// whatever the text's size.

class ScoreStreamReactor final
    : public grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>,
      public Shared {
 public:
  explicit ScoreStreamReactor(MswaServiceImpl* service)
      : service_(service), start_(absl::Now()), in_flight_(service) {
    if (service_->draining()) {
      status_ = kDraining;
      Finish(kDraining);
      Unref();
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    Engine& engine = service_->engine();
    absl::MutexLock lock(&mu_);
    if (id_ == 0) {  // the first message (or an empty stream): options, then submit
      const v1::ScoreOptions& opts = request_.options();
      grpc::Status s = service_->CheckModel(opts.model());
      ScoreOptions o;
      o.add_bos = !opts.has_add_bos() || opts.add_bos();
      o.per_token_logprobs = opts.per_token_logprobs();
      per_token_ = o.per_token_logprobs;
      absl::StatusOr<int64_t> id = absl::InternalError("unset");
      if (s.ok()) {
        id = engine.SubmitScore(o, -1, [this](EngineEvent e) { OnEvent(std::move(e)); });
        if (!id.ok()) s = ToGrpcStatus(id.status());
      }
      if (!s.ok()) {
        status_ = s;
        out_.finish_called = true;
        Finish(s);
        Unref();  // no engine request
        return;
      }
      id_ = *id;
    }
    if (ok) {
      bytes_received_ += static_cast<int64_t>(request_.chunk().size());
      pending_ += request_.chunk();
    }
    // SentencePiece adds a word-boundary mark at the start of every Encode call, so a chunk is
    // cut only after a newline; the byte tokenizer can cut anywhere.
    size_t cut = pending_.size();
    if (ok && engine.tokenizer().strips_leading_space()) {
      const size_t nl = pending_.rfind('\n');
      cut = nl == std::string::npos ? 0 : nl + 1;
      if (pending_.size() > (size_t{8} << 20)) cut = pending_.size();  // no newline for 8 MiB
    }
    if (cut > 0 || !ok) {
      const std::string text = pending_.substr(0, cut);
      pending_.erase(0, cut);
      const std::vector<int32_t> tokens = engine.tokenizer().Encode(text);
      fed_tokens_ += static_cast<int64_t>(tokens.size());
      if (per_token_) all_token_ids_.insert(all_token_ids_.end(), tokens.begin(), tokens.end());
      absl::Status fed = engine.FeedScore(id_, tokens, static_cast<int64_t>(text.size()), !ok);
      if (!fed.ok() && fed_error_.ok()) {
        fed_error_ = ToGrpcStatus(fed);
        engine.Cancel(id_);
      }
    }
    if (!ok) return;  // half-closed: wait for the result
    if (fed_tokens_ - scored_tokens_ > kMaxBacklog) {
      read_paused_ = true;  // resumed by OnEvent once the engine catches up
    } else {
      StartRead(&request_);
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (out_.Done(this, ok)) service_->engine().Cancel(id_);  // the client went away
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (id_ != 0) service_->engine().Cancel(id_);
  }

  void OnDone() override {
    service_->LogRequest("ScoreStream", id_, status_,
                         absl::StrCat("\"bytes\":", bytes_received_, ",\"tokens\":", scored_tokens_),
                         absl::ToDoubleSeconds(absl::Now() - start_));
    Unref();
  }

 private:
  static constexpr int64_t kMaxBacklog = 1 << 18;  // tokens fed but not yet scored

  // Engine thread.
  void OnEvent(EngineEvent e) {
    const bool finished = e.finished;
    {
      absl::MutexLock lock(&mu_);
      OnEventLocked(std::move(e));
    }
    if (finished) Unref();  // after the lock's scope: this may delete the reactor
  }

  void OnEventLocked(EngineEvent e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = absl::Now();
    scored_tokens_ = e.score.tokens;
    for (float lp : e.token_logprobs) all_logprobs_.push_back(lp);
    if (e.finished) {
      status_ = fed_error_.ok() ? FinalStatus(e) : fed_error_;
      out_.final = true;
      out_.status = status_;
      if (status_.ok()) {
        v1::ScoreStreamResponse msg;
        FillResult(e.score, msg.mutable_result());
        for (float lp : all_logprobs_) msg.mutable_result()->add_token_logprobs(lp);
        for (int32_t t : all_token_ids_) msg.mutable_result()->add_token_ids(t);
        msg.mutable_timings()->set_queue_seconds(e.timings.queue_seconds);
        msg.mutable_timings()->set_total_seconds(absl::ToDoubleSeconds(now - start_));
        out_.Push(std::move(msg));
      }
      out_.Next(this);
    } else {
      // Progress at most every 250 ms.
      if (now - last_progress_ >= absl::Milliseconds(250)) {
        last_progress_ = now;
        v1::ScoreStreamResponse msg;
        v1::ScoreProgress* p = msg.mutable_progress();
        p->set_bytes_received(bytes_received_);
        p->set_tokens_scored(e.score.tokens);
        p->set_bytes_scored(e.score.bytes_scored);
        p->set_total_nll(e.score.total_nll);
        const double secs = absl::ToDoubleSeconds(now - start_);
        p->set_tokens_per_second(secs > 0 ? e.score.tokens / secs : 0);
        out_.Push(std::move(msg));
        out_.Next(this);
      }
      if (read_paused_ && fed_tokens_ - scored_tokens_ <= kMaxBacklog / 2) {
        read_paused_ = false;
        StartRead(&request_);
      }
    }
  }

  MswaServiceImpl* service_;
  const absl::Time start_;
  InFlight in_flight_;
  v1::ScoreStreamRequest request_;
  absl::Mutex mu_;
  int64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  bool per_token_ = false;
  std::string pending_;  // received text not yet tokenized
  int64_t bytes_received_ = 0;
  int64_t fed_tokens_ = 0;
  int64_t scored_tokens_ = 0;
  bool read_paused_ = false;
  std::vector<float> all_logprobs_;
  std::vector<int32_t> all_token_ids_;
  WriteQueue<v1::ScoreStreamResponse> out_;
  absl::Time last_progress_;
  grpc::Status status_;
  grpc::Status fed_error_;
};

}  // namespace

MswaServiceImpl::MswaServiceImpl(ServiceOptions options) : options_(std::move(options)) {}

void MswaServiceImpl::Attach(Engine* engine, Metrics* metrics) {
  engine_ = engine;
  metrics_ = metrics;
  ready_.store(true);
}

grpc::Status MswaServiceImpl::CheckModel(const std::string& model) const {
  if (model.empty() || model == options_.model_name) return grpc::Status::OK;
  return Invalid(absl::StrCat("model: \"", model, "\" is not served here; this server serves \"",
                              options_.model_name, "\""));
}

void MswaServiceImpl::LogRequest(const std::string& rpc, int64_t id, const grpc::Status& status,
                                 const std::string& details, double seconds) {
  const char* code = CodeName(status.error_code());
  if (metrics_ != nullptr) metrics_->RequestFinished(rpc, code, seconds);
  std::fprintf(stderr,
               "{\"time\":\"%s\",\"event\":\"request\",\"rpc\":\"%s\",\"id\":%lld,\"code\":\"%s\","
               "\"seconds\":%.4f%s%s%s}\n",
               absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()).c_str(),
               rpc.c_str(), static_cast<long long>(id), code, seconds, details.empty() ? "" : ",",
               details.c_str(),
               status.ok() ? "" : absl::StrCat(",\"error\":\"", absl::CEscape(status.error_message()), "\"").c_str());
}

grpc::ServerWriteReactor<v1::GenerateResponse>* MswaServiceImpl::Generate(
    grpc::CallbackServerContext* ctx, const v1::GenerateRequest* request) {
  if (!ready()) {
    auto* r = new RejectingReactor<grpc::ServerWriteReactor<v1::GenerateResponse>>();
    r->Finish(kLoading);
    return r;
  }
  return new GenerateReactor(this, *request);
}

grpc::ServerUnaryReactor* MswaServiceImpl::Score(grpc::CallbackServerContext* ctx,
                                                 const v1::ScoreRequest* request,
                                                 v1::ScoreResponse* response) {
  if (!ready()) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(kLoading);
    return r;
  }
  return new ScoreReactor(this, *request, response);
}

grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>*
MswaServiceImpl::ScoreStream(grpc::CallbackServerContext* ctx) {
  if (!ready()) {
    auto* r = new RejectingReactor<
        grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>>();
    r->Finish(kLoading);
    return r;
  }
  return new ScoreStreamReactor(this);
}

grpc::ServerUnaryReactor* MswaServiceImpl::Tokenize(grpc::CallbackServerContext* ctx,
                                                    const v1::TokenizeRequest* request,
                                                    v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!ready() || draining()) {
    reactor->Finish(ready() ? kDraining : kLoading);
    return reactor;
  }
  const Tokenizer& tok = engine_->tokenizer();
  if (request->add_bos() && engine_->config().bos_token_id >= 0) {
    response->add_token_ids(static_cast<int32_t>(engine_->config().bos_token_id));
    response->add_tokens("");
  }
  for (int32_t t : tok.Encode(request->text())) {
    response->add_token_ids(t);
    response->add_tokens(tok.TokenBytes(t));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MswaServiceImpl::GetModelInfo(grpc::CallbackServerContext* ctx,
                                                        const v1::GetModelInfoRequest* request,
                                                        v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!ready()) {
    reactor->Finish(kLoading);
    return reactor;
  }
  const ModelConfig& c = engine_->config();
  const EngineOptions& o = engine_->options();
  response->set_model_name(options_.model_name);
  response->set_model_type(c.model_type);
  response->set_vocab_size(c.vocab_size);
  response->set_hidden_size(c.hidden_size);
  response->set_intermediate_size(c.intermediate_size);
  response->set_num_layers(c.num_hidden_layers);
  response->set_num_attention_heads(c.num_attention_heads);
  response->set_num_key_value_heads(c.num_key_value_heads);
  response->set_head_dim(c.head_dim);
  response->set_num_parameters(engine_->num_parameters());
  response->set_tokenizer(engine_->tokenizer().kind());
  response->set_bos_token_id(static_cast<int32_t>(c.bos_token_id));
  response->set_eos_token_id(static_cast<int32_t>(c.first_eos()));
  for (int64_t id : c.eos_token_ids) response->add_eos_token_ids(static_cast<int32_t>(id));
  for (const auto& layer : c.attention_windows) {
    auto* lw = response->add_attention_windows();
    for (int64_t w : layer) lw->add_windows(w);
  }
  if (c.windows_overridden()) {
    for (const auto& layer : c.native_windows) {
      auto* lw = response->add_native_windows();
      for (int64_t w : layer) lw->add_windows(w);
    }
  }
  response->set_kv_block_size(o.block_size);
  response->set_kv_dtype(KvDTypeName(engine_->kv_dtype()));
  const KvLayout layout = BuildKvLayout(c);
  const EngineStats stats = engine_->stats();
  int64_t bound = 0;
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    auto* gi = response->add_window_groups();
    gi->set_window(layout.groups[g].window);
    gi->set_kv_heads(layout.groups[g].num_heads);
    const int64_t r = layout.groups[g].window == 0
                          ? 0
                          : MaxBlocksPerSequence(layout.groups[g].window, o.max_tokens_per_step, o.block_size);
    gi->set_max_blocks_per_sequence(r);
    if (g < stats.groups.size()) gi->set_total_blocks(stats.groups[g].total_blocks);
    bound += 2 * r * layout.groups[g].num_heads * o.block_size * c.head_dim * KvDTypeBytes(engine_->kv_dtype());
  }
  response->set_kv_bytes_per_sequence_bound(c.all_windows_finite() ? bound : 0);
  const KvMemoryOptions kv{o.block_size, o.max_tokens_per_step, KvDTypeBytes(engine_->kv_dtype())};
  for (int64_t tokens : {4096, 32768, 131072}) {
    auto* at = response->add_kv_bytes_at_length();
    at->set_tokens(tokens);
    at->set_bytes(KvBytesPerSequence(layout, c.head_dim, kv, tokens));
    at->set_full_attention_bytes(FullAttentionKvBytes(c, kv.bytes_per_element, tokens));
  }
  response->set_kv_cache_bytes(o.kv_cache_bytes);
  response->set_max_tokens_limit(o.max_new_tokens);
  response->set_max_waiting_requests(o.max_waiting);
  response->set_max_tokens_per_step(static_cast<int32_t>(o.max_tokens_per_step));
  response->set_max_sequence_length(c.all_windows_finite() ? 0 : o.max_model_len);
  response->set_device(o.device == ModelDevice::kCuda ? "cuda" : "cpu");
  response->set_dtype(engine_->dtype() == at::kBFloat16 ? "bfloat16"
                      : engine_->dtype() == at::kHalf   ? "float16"
                                                        : "float32");
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mswa
