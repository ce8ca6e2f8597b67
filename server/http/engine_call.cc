#include "server/http/engine_call.h"

#include <utility>

#include "absl/time/clock.h"

namespace mswa {

struct EngineCall::Queue {
  // Engine thread: appends an event and wakes Next.
  void Push(EngineEvent e) {
    absl::MutexLock lock(&mu);
    events.push_back(std::move(e));
    ready.Signal();
  }

  absl::Mutex mu;
  absl::CondVar ready;
  std::deque<EngineEvent> events ABSL_GUARDED_BY(mu);
  // Engine thread only: for the latency metrics.
  Metrics* metrics = nullptr;
  absl::Time start;
  absl::Time last_token;
};

absl::StatusOr<std::unique_ptr<EngineCall>> EngineCall::Submit(Engine& engine, Metrics* metrics,
                                                               std::vector<int32_t> prompt,
                                                               const GenerateOptions& options) {
  auto queue = std::make_shared<Queue>();
  queue->metrics = metrics;
  queue->start = absl::Now();
  // The sink holds the queue, so events of a request whose handler has gone land somewhere.
  auto id = engine.SubmitGenerate(std::move(prompt), options, [queue](EngineEvent e) {
    const absl::Time now = absl::Now();
    if (queue->metrics != nullptr) {
      if (!e.token_ids.empty()) {
        if (queue->last_token == absl::Time()) {
          queue->metrics->FirstToken(absl::ToDoubleSeconds(now - queue->start));
        } else {
          queue->metrics->InterToken(absl::ToDoubleSeconds(now - queue->last_token) /
                                     static_cast<double>(e.token_ids.size()));
        }
      }
      if (e.finished) queue->metrics->Queued(e.timings.queue_seconds);
    }
    if (!e.token_ids.empty()) queue->last_token = now;
    queue->Push(std::move(e));
  });
  if (!id.ok()) return id.status();
  std::unique_ptr<EngineCall> call(new EngineCall(engine, std::move(queue)));
  call->id_ = *id;
  return call;
}

absl::StatusOr<std::unique_ptr<EngineCall>> EngineCall::SubmitScore(
    Engine& engine, const ScoreOptions& options, const std::vector<int32_t>& tokens, int64_t bytes) {
  auto queue = std::make_shared<Queue>();
  auto id = engine.SubmitScore(options, static_cast<int64_t>(tokens.size()),
                               [queue](EngineEvent e) { queue->Push(std::move(e)); });
  if (!id.ok()) return id.status();
  std::unique_ptr<EngineCall> call(new EngineCall(engine, std::move(queue)));
  call->id_ = *id;
  // NotFound: the request already finished (shutdown); its final event says why.
  absl::Status fed = engine.FeedScore(*id, tokens, bytes, /*last=*/true);
  if (!fed.ok() && !absl::IsNotFound(fed)) return fed;  // the destructor cancels it
  return call;
}

EngineCall::~EngineCall() {
  if (!finished_) Cancel();
}

void EngineCall::Cancel() {
  if (cancelled_ || finished_) return;
  cancelled_ = true;
  engine_.Cancel(id_);
}

std::optional<EngineEvent> EngineCall::Next(const std::function<bool()>& client_gone) {
  if (finished_ || cancelled_) return std::nullopt;
  for (;;) {
    // At most every 50 ms, also while events keep coming (a non-streaming request of a client
    // that left must not run to max_tokens).
    const absl::Time now = absl::Now();
    if (client_gone && now - last_check_ >= absl::Milliseconds(50)) {
      last_check_ = now;
      if (client_gone()) {
        Cancel();
        return std::nullopt;
      }
    }
    absl::MutexLock lock(&queue_->mu);
    if (!queue_->events.empty()) {
      EngineEvent e = std::move(queue_->events.front());
      queue_->events.pop_front();
      if (e.finished) finished_ = true;
      return e;
    }
    queue_->ready.WaitWithTimeout(&queue_->mu, absl::Milliseconds(50));
  }
}

}  // namespace mswa
