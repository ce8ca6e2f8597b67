// Ends streams that wait on their client for too long. One thread wakes every `period` and asks
// each registered stream to check its own clocks (StreamWatchdog::Stream::CheckIdle), so a stream
// whose client went quiet is ended within its timeout plus one period.
#pragma once

#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mswa {

class StreamWatchdog {
 public:
  class Stream {
   public:
    virtual ~Stream() = default;
    // Keeps the stream alive from Retain (called under the watchdog's lock while the stream is
    // registered) to Release (after CheckIdle, on the watchdog thread).
    virtual void Retain() = 0;
    virtual void Release() = 0;
    // Watchdog thread, no watchdog lock held: ends the stream if it waited on its client for
    // longer than its timeout. May run concurrently with the stream's own reactions.
    virtual void CheckIdle(absl::Time now) = 0;
  };

  explicit StreamWatchdog(absl::Duration period);
  ~StreamWatchdog();  // stops and joins the thread
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  // Thread-safe.
  void Add(Stream* stream);
  // Thread-safe. After it returns no new CheckIdle starts on `stream` (one already running holds
  // its own reference).
  void Remove(Stream* stream);

 private:
  void Loop();

  const absl::Duration period_;
  absl::Mutex mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mswa
