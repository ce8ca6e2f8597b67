#include "server/grpc/stream_watchdog.h"

#include <vector>

#include "absl/time/clock.h"

namespace mswa {

StreamWatchdog::StreamWatchdog(absl::Duration period)
    : period_(period), thread_([this] { Loop(); }) {}

StreamWatchdog::~StreamWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void StreamWatchdog::Add(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
}

void StreamWatchdog::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void StreamWatchdog::Loop() {
  std::vector<Stream*> due;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), period_);
      if (stop_) return;
      due.assign(streams_.begin(), streams_.end());
      for (Stream* s : due) s->Retain();
    }
    // Outside the lock: a check may end the call, and gRPC may then run the stream's OnDone
    // (which calls Remove) on this very thread.
    const absl::Time now = absl::Now();
    for (Stream* s : due) {
      s->CheckIdle(now);
      s->Release();
    }
  }
}

}  // namespace mswa
