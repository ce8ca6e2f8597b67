#include "server/grpc/score_stream_reactor.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/api/score_request.h"
#include "server/grpc/convert.h"
#include "server/grpc/reactor_support.h"
#include "server/grpc/stream_watchdog.h"
#include "server/json_log.h"
#include "server/status_util.h"

namespace mswa {
namespace {

namespace v1 = ::mswa::v1;

// Progress without per-token values at most this often.
constexpr absl::Duration kProgressInterval = absl::Milliseconds(250);
// SentencePiece text is cut only after a newline (see OnReadDone); without one for this long,
// it is cut anyway.
constexpr size_t kMaxUncutBytes = size_t{8} << 20;

// Threads: OnReadDone (one at a time: a read is started only after the previous one was
// handled), OnWriteDone, OnCancel and OnDone on gRPC threads; OnEvent on the engine thread;
// CheckIdle on the watchdog thread. mu_ guards what they share and is held only for
// bookkeeping and gRPC's non-blocking Start*/Finish calls, never while tokenizing or calling
// the engine. What only the read path uses (request_, pending_) needs no lock.
class ScoreStreamReactor final
    : public grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>,
      public Shared,
      public StreamWatchdog::Stream {
 public:
  ScoreStreamReactor(MswaServiceImpl* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context), start_(absl::Now()), in_flight_(service) {
    if (service_->draining()) {
      {
        absl::MutexLock lock(&mu_);
        status_ = DrainingStatus();
        ending_ = true;
      }
      Finish(DrainingStatus());
      Unref();  // no engine request
      return;
    }
    const double idle_s = service_->limits().stream_idle_timeout_seconds;
    if (idle_s > 0 && service_->stream_watchdog() != nullptr) {
      idle_timeout_ = absl::Seconds(idle_s);
      service_->stream_watchdog()->Add(this);
      watched_ = true;
    }
    absl::MutexLock lock(&mu_);
    StartReadLocked();
  }

  void OnReadDone(bool ok) override {
    Engine& engine = service_->engine();
    if (ok) {
      // Before anything is kept, tokenized or fed.
      const absl::Status s = CheckStreamChunk(service_->limits(), static_cast<int64_t>(request_.chunk().size()));
      if (!s.ok()) {
        {
          absl::MutexLock lock(&mu_);
          reading_ = false;
        }
        EndWithError(ToGrpcStatus(s));
        return;
      }
    }
    bool first = false, cancelled = false;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (ending_ || engine_done_) return;  // the call is already ending
      first = !submitted_;
      if (ok) bytes_received_ += static_cast<int64_t>(request_.chunk().size());
      cancelled = client_cancelled_;
    }
    // A read fails at the end of the input and also when the client went away: only the first
    // is the end of the text.
    if (!ok && (cancelled || context_->IsCancelled())) {
      EndWithError(grpc::Status(grpc::StatusCode::CANCELLED,
                                first ? "the client cancelled before sending anything"
                                      : "the client cancelled"));
      return;
    }
    if (first && !Submit()) return;
    if (ok && max_bytes_ > 0) {
      int64_t received;
      {
        absl::MutexLock lock(&mu_);
        received = bytes_received_;
      }
      if (received > max_bytes_) {
        EndWithError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  absl::StrCat("the stream sent more than options.max_bytes (",
                                               max_bytes_, ") bytes")));
        return;
      }
    }

    // SentencePiece adds a word-boundary mark at the start of every Encode call, so a chunk is
    // cut only after a newline; the byte tokenizer can cut anywhere.
    if (ok) pending_ += request_.chunk();
    size_t cut = pending_.size();
    if (ok && engine.tokenizer().strips_leading_space()) {
      const size_t nl = pending_.rfind('\n');
      cut = nl == std::string::npos ? 0 : nl + 1;
      if (pending_.size() > kMaxUncutBytes) cut = pending_.size();
    }
    if (cut > 0 || !ok) {
      const std::string text = pending_.substr(0, cut);
      pending_.erase(0, cut);
      const std::vector<int32_t> tokens = engine.tokenizer().Encode(text);
      int64_t id = 0;
      {
        // Counted before the engine can score them, so the backlog never goes negative and
        // OnEvent finds their ids.
        absl::MutexLock lock(&mu_);
        id = id_;
        fed_tokens_ += static_cast<int64_t>(tokens.size());
        if (per_token_) {
          for (int32_t t : tokens) {
            if (skip_ids_ > 0) {
              --skip_ids_;  // without BOS the first token is not scored
            } else {
              unscored_ids_.push_back(t);
            }
          }
        }
      }
      const absl::Status fed = engine.FeedScore(id, tokens, static_cast<int64_t>(text.size()), !ok);
      // NotFound: the request already finished; its final event has the status.
      if (!fed.ok() && !absl::IsNotFound(fed)) {
        EndWithError(ToGrpcStatus(fed));
        return;
      }
    }
    if (!ok) return;  // half-closed: the final event finishes the call
    absl::MutexLock lock(&mu_);
    if (ending_ || engine_done_) return;
    if (BacklogLocked() > kMaxStreamBacklogTokens) {
      read_paused_ = true;  // resumed by OnEvent / OnWriteDone once the backlog is down
    } else {
      StartReadLocked();
    }
  }

  void OnWriteDone(bool ok) override {
    int64_t cancel = 0;
    {
      absl::MutexLock lock(&mu_);
      const v1::ScoreStreamResponse& written = out_.queue.front();
      if (written.has_progress()) queued_logprobs_ -= written.progress().token_logprobs_size();
      if (out_.Done(this, ok)) {  // the client went away
        queued_logprobs_ = 0;
        if (submitted_ && !engine_done_) cancel = id_;
      } else {
        MaybeResumeReadLocked();
      }
    }
    if (cancel != 0) service_->engine().Cancel(cancel);
  }

  void OnCancel() override {
    // Members are read under the lock only (as in GenerateReactor::OnCancel).
    int64_t cancel = 0;
    MswaServiceImpl* service = nullptr;
    {
      absl::MutexLock lock(&mu_);
      client_cancelled_ = true;
      if (submitted_ && !engine_done_) cancel = id_;
      service = service_;
    }
    if (cancel != 0) service->engine().Cancel(cancel);
  }

  void OnDone() override {
    if (watched_) service_->stream_watchdog()->Remove(this);
    int64_t id = 0, bytes = 0, tokens = 0;
    grpc::Status status;
    RequestTags tags;
    {
      absl::MutexLock lock(&mu_);
      id = id_;
      bytes = bytes_received_;
      tokens = scored_tokens_;
      tags = tags_;
      status = status_;
      // The write side was stalled: the call was cancelled by the server, whatever the engine
      // said.
      if (stalled_) status = error_;
      // A call the client cancelled never delivered the status it was finished with.
      if (status.ok() && client_cancelled_) {
        status = grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled");
      }
    }
    service_->LogRequest("ScoreStream", id, status, absl::ToDoubleSeconds(absl::Now() - start_), tags,
                         {{"bytes", bytes}, {"tokens", tokens}});
    Unref();
  }

  void Retain() override { Ref(); }
  void Release() override { Unref(); }

  // Watchdog thread.
  void CheckIdle(absl::Time now) override {
    bool read_idle = false, write_stalled = false;
    {
      absl::MutexLock lock(&mu_);
      if (out_.finish_called) return;
      read_idle = reading_ && now - reading_since_ > idle_timeout_;
      write_stalled = out_.writing && now - out_.writing_since > idle_timeout_;
      if (write_stalled) {
        stalled_ = true;
        error_ = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, IdleMessage("read nothing"));
      }
    }
    if (write_stalled) {
      // The client takes no messages, so no status can reach it either: cancel the call (the
      // write in flight fails, and the call then finishes) and the engine request.
      EndWithError(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, IdleMessage("read nothing")));
      context_->TryCancel();
    } else if (read_idle) {
      EndWithError(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, IdleMessage("sent nothing")));
    }
  }

 private:
  std::string IdleMessage(const char* what) const {
    return absl::StrCat("the client ", what, " for ", absl::ToDoubleSeconds(idle_timeout_),
                        " s (--stream_idle_timeout_seconds); the stream was ended and its memory freed");
  }

  // Read path, first message: options, then the engine request. False when the call is ending
  // instead (the error is already handled).
  bool Submit() {
    const v1::ScoreOptions& opts = request_.options();
    const ScoreOptions o =
        ScoreOptionsFor(!opts.has_add_bos() || opts.add_bos(), opts.per_token_logprobs());
    {
      absl::MutexLock lock(&mu_);
      if (ending_) return false;
      submitting_ = true;
      tags_ = {TruncateForLog(opts.model()), TruncateForLog(opts.client_request_id())};
      per_token_ = o.per_token_logprobs;
      skip_ids_ = o.add_bos ? 0 : 1;
    }
    grpc::Status s = service_->CheckModel(opts.model());
    absl::StatusOr<int64_t> id = absl::InternalError("not submitted");
    if (s.ok()) {
      // No tokenizer gives more tokens than bytes, so max_bytes (+ BOS) bounds the reservation.
      max_bytes_ = opts.max_bytes() > 0 ? opts.max_bytes() : 0;
      const int64_t expected = max_bytes_ > 0 ? max_bytes_ : -1;
      id = service_->engine().SubmitScore(o, expected, [this](EngineEvent e) { OnEvent(std::move(e)); });
      if (!id.ok()) s = ToGrpcStatus(id.status());
    }
    if (!s.ok()) {
      bool ended_meanwhile = false;
      {
        absl::MutexLock lock(&mu_);
        submitting_ = false;
        // Ended while submitting: EndWithError left the finishing to this path.
        ended_meanwhile = ending_;
        if (ended_meanwhile) FinishWithoutEngineLocked(error_);
      }
      if (ended_meanwhile) {
        Unref();  // the engine never got this request
      } else {
        EndWithError(s);
      }
      return false;
    }
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      id_ = *id;
      submitted_ = true;
      submitting_ = false;
      // Ended (or cancelled by the client) while the request was being submitted.
      cancel = ending_ || client_cancelled_;
    }
    if (cancel) {
      service_->engine().Cancel(*id);
      return false;
    }
    return true;
  }

  // Ends the call with `status` (the first error wins). With an engine request, cancels it and
  // its final event finishes the call; without one, finishes the call here.
  void EndWithError(const grpc::Status& status) {
    int64_t cancel = 0;
    bool release_engine_ref = false;
    {
      absl::MutexLock lock(&mu_);
      if (ending_ || engine_done_) return;  // already ending, or the final status is known
      ending_ = true;
      error_ = status;
      if (submitted_) {
        cancel = id_;
      } else if (!submitting_) {  // a submission in flight sees ending_ and cancels
        FinishWithoutEngineLocked(status);
        release_engine_ref = true;
      }
    }
    if (cancel != 0) service_->engine().Cancel(cancel);
    if (release_engine_ref) Unref();  // the engine never got this request
  }

  // Finishes a call that has no engine request (once queued messages are written).
  void FinishWithoutEngineLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    status_ = status;
    out_.final = true;
    out_.status = status;
    out_.Next(this);
  }

  // Engine thread.
  void OnEvent(EngineEvent e) {
    const bool finished = e.finished;
    {
      absl::MutexLock lock(&mu_);
      OnEventLocked(e);
    }
    if (finished) Unref();  // after the lock's scope: this may delete the reactor
  }

  void OnEventLocked(const EngineEvent& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = absl::Now();
    scored_tokens_ = e.score.tokens;
    if (per_token_) {
      for (float lp : e.token_logprobs) {
        pending_logprobs_.push_back(lp);
        if (unscored_ids_.empty()) {
          pending_ids_.push_back(-1);  // not reached: every scored token was fed and counted
        } else {
          pending_ids_.push_back(unscored_ids_.front());
          unscored_ids_.pop_front();
        }
      }
    }
    if (e.finished) {
      engine_done_ = true;
      status_ = error_.ok() ? FinalStatus(e) : error_;
      if (status_.ok()) {
        FlushProgressLocked(e.score, now, /*everything=*/true);
        v1::ScoreStreamResponse msg;
        FillResult(e.score, msg.mutable_result());
        msg.mutable_timings()->set_queue_seconds(e.timings.queue_seconds);
        msg.mutable_timings()->set_total_seconds(absl::ToDoubleSeconds(now - start_));
        out_.Push(std::move(msg));
      }
      out_.final = true;
      out_.status = status_;
      out_.Next(this);
      return;
    }
    FlushProgressLocked(e.score, now, /*everything=*/false);
    out_.Next(this);
    MaybeResumeReadLocked();
  }

  // Sends the per-token values received so far in pieces of kMaxLogprobsPerMessage; the last,
  // partial piece (or a progress message without values) once kProgressInterval has passed
  // since the previous message, or when `everything` is set.
  void FlushProgressLocked(const ScoreTotals& totals, absl::Time now, bool everything)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (pending_logprobs_.size() >= static_cast<size_t>(kMaxLogprobsPerMessage)) {
      PushProgressLocked(totals, now, kMaxLogprobsPerMessage);
    }
    if (everything ? !pending_logprobs_.empty() : now - last_progress_ >= kProgressInterval) {
      PushProgressLocked(totals, now, pending_logprobs_.size());
    }
  }

  void PushProgressLocked(const ScoreTotals& totals, absl::Time now, size_t n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_progress_ = now;
    v1::ScoreStreamResponse msg;
    v1::ScoreProgress* p = msg.mutable_progress();
    p->set_bytes_received(bytes_received_);
    p->set_tokens_scored(totals.tokens);
    p->set_bytes_scored(totals.bytes_scored);
    p->set_total_nll(totals.total_nll);
    const double secs = absl::ToDoubleSeconds(now - start_);
    p->set_tokens_per_second(secs > 0 ? totals.tokens / secs : 0);
    if (per_token_) {
      p->set_first_token_index(delivered_logprobs_);
      p->mutable_token_logprobs()->Add(pending_logprobs_.begin(), pending_logprobs_.begin() + n);
      p->mutable_token_ids()->Add(pending_ids_.begin(), pending_ids_.begin() + n);
      pending_logprobs_.erase(pending_logprobs_.begin(), pending_logprobs_.begin() + n);
      pending_ids_.erase(pending_ids_.begin(), pending_ids_.begin() + n);
      delivered_logprobs_ += static_cast<int64_t>(n);
      if (!out_.write_failed) queued_logprobs_ += static_cast<int64_t>(n);
    }
    out_.Push(std::move(msg));
  }

  // Tokens read from the client whose results have not reached gRPC yet: fed but not scored,
  // plus per-token values waiting to be written.
  int64_t BacklogLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::max<int64_t>(0, fed_tokens_ - scored_tokens_) + queued_logprobs_ +
           static_cast<int64_t>(pending_logprobs_.size());
  }

  void StartReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    reading_ = true;
    reading_since_ = absl::Now();
    StartRead(&request_);
  }

  void MaybeResumeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_paused_ && !ending_ && !engine_done_ && BacklogLocked() <= kMaxStreamBacklogTokens / 2) {
      read_paused_ = false;
      StartReadLocked();
    }
  }

  MswaServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  const absl::Time start_;
  InFlight in_flight_;
  absl::Duration idle_timeout_ = absl::InfiniteDuration();  // set before the watchdog sees it
  bool watched_ = false;                                     // registered with the watchdog

  // Read path only.
  v1::ScoreStreamRequest request_;
  std::string pending_;  // received text not yet tokenized

  absl::Mutex mu_;
  RequestTags tags_ ABSL_GUARDED_BY(mu_);
  int64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;  // the read path is creating the engine request
  bool submitted_ ABSL_GUARDED_BY(mu_) = false;   // the engine request exists (id_)
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;  // its final event arrived
  bool ending_ ABSL_GUARDED_BY(mu_) = false;       // ended early with error_
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;      // ended because a write was not taken
  bool client_cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status error_ ABSL_GUARDED_BY(mu_);   // why it ended early; overrides the engine's status
  grpc::Status status_ ABSL_GUARDED_BY(mu_);  // the status the call is finished with
  bool per_token_ ABSL_GUARDED_BY(mu_) = false;
  int skip_ids_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // a read is in flight (the idle clock runs)
  absl::Time reading_since_ ABSL_GUARDED_BY(mu_);
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  int64_t bytes_received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t max_bytes_ = 0;  // options.max_bytes; set by Submit on the read path before any check
  int64_t fed_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t scored_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  // Per-token values: ids fed but not scored; values (and their ids) scored but not yet in a
  // message; values in messages not yet written; values put in messages so far.
  std::deque<int32_t> unscored_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<float> pending_logprobs_ ABSL_GUARDED_BY(mu_);
  std::vector<int32_t> pending_ids_ ABSL_GUARDED_BY(mu_);
  int64_t queued_logprobs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t delivered_logprobs_ ABSL_GUARDED_BY(mu_) = 0;
  WriteQueue<v1::ScoreStreamResponse> out_ ABSL_GUARDED_BY(mu_);
  absl::Time last_progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<v1::ScoreStreamRequest, v1::ScoreStreamResponse>* NewScoreStreamReactor(
    MswaServiceImpl* service, grpc::CallbackServerContext* context) {
  return new ScoreStreamReactor(service, context);
}

}  // namespace mswa
