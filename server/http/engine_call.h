// One engine request (a generation, or the scoring of one text) driven from an HTTP handler
// thread. The engine thread's sink only
// queues events (it never blocks); the handler thread takes them with Next, which also watches
// the client: when the client has hung up, the engine request is cancelled (its KV blocks are
// freed at the next step, as for a cancelled gRPC call) and Next returns nothing.
//
// Thread-safety: Next / Cancel from the one handler thread; the sink from the engine thread.
// The queue is shared with the sink, so it outlives a handler that stops early.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace mswa {

class EngineCall {
 public:
  // Submits the generation. Errors are SubmitGenerate's (InvalidArgument, ResourceExhausted when
  // the queue is full, Unavailable while shutting down). `metrics` may be null; time to first
  // token, inter-token latency and queue time are recorded as the gRPC reactor records them.
  static absl::StatusOr<std::unique_ptr<EngineCall>> Submit(Engine& engine, Metrics* metrics,
                                                           std::vector<int32_t> prompt,
                                                           const GenerateOptions& options);
  // Opens a scoring request and feeds it the whole text at once (`bytes` of text). Errors are
  // SubmitScore's and FeedScore's.
  static absl::StatusOr<std::unique_ptr<EngineCall>> SubmitScore(Engine& engine,
                                                                const ScoreOptions& options,
                                                                const std::vector<int32_t>& tokens,
                                                                int64_t bytes);
  ~EngineCall();  // cancels the engine request unless it finished

  // The next event (its `finished` set on the last one), waiting as long as it takes while
  // `client_gone()` (checked every 50 ms) is false. Nothing once the client is gone (the request
  // is then cancelled) or after the last event.
  std::optional<EngineEvent> Next(const std::function<bool()>& client_gone);

  void Cancel();
  int64_t id() const { return id_; }
  bool finished() const { return finished_; }

 private:
  struct Queue;
  EngineCall(Engine& engine, std::shared_ptr<Queue> queue) : engine_(engine), queue_(std::move(queue)) {}

  Engine& engine_;
  std::shared_ptr<Queue> queue_;
  int64_t id_ = 0;
  bool finished_ = false;   // the last event was taken
  bool cancelled_ = false;
  absl::Time last_check_;  // of client_gone
};

}  // namespace mswa
