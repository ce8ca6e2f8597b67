// Building blocks shared by the streaming and engine-backed reactors of the gRPC service.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <utility>

#include "absl/time/time.h"
#include "server/service.h"

namespace mswa {

// Counts a streaming or engine-backed RPC from its reactor's creation to its deletion, so a
// drain can wait for them.
class InFlight {
 public:
  explicit InFlight(MswaServiceImpl* service) : service_(service) { service_->AddInFlight(1); }
  ~InFlight() { service_->AddInFlight(-1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  MswaServiceImpl* service_;
};

// A reactor is shared by gRPC (until OnDone) and the engine (until the request's final event);
// whichever lets go last deletes it. This keeps a sink from touching a deleted reactor without
// holding a lock across Finish(). Others (a watchdog) may hold extra references while they
// call into the reactor.
class Shared {
 public:
  virtual ~Shared() = default;
  void Ref() { refs_.fetch_add(1); }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

 private:
  std::atomic<int> refs_{2};
};

// Answers an RPC that arrives before the model is loaded; deletes itself when done.
template <typename Base>
class RejectingReactor final : public Base {
 public:
  void OnDone() override { delete this; }
};

// The write side of a streaming reactor. gRPC allows one write in flight: the message being
// written is queue.front() until OnWriteDone. Once the final status is known and every queued
// message is written, the call is finished. Not thread-safe: the reactor holds its mutex.
template <typename Response>
struct WriteQueue {
  std::deque<Response> queue;
  bool writing = false;
  absl::Time writing_since;  // when the write in flight started
  bool final = false;        // the status is known; finish after the queue drains
  bool finish_called = false;
  bool write_failed = false;  // the client went away: nothing more is written
  grpc::Status status;

  template <typename Reactor>
  void Next(Reactor* reactor) {
    if (writing) return;
    if (!queue.empty()) {
      writing = true;
      writing_since = absl::Now();
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

}  // namespace mswa
