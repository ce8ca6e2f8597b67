// Which running requests take part in the next engine step, and with how many tokens each.
// Integer-only and free of the model, so every policy below is tested in microseconds
// (tests/server/scheduler_test.cc).
//
// Policy, per step of at most `token_budget` tokens:
//   1. Decodes first: every request generating its next token gets one.
//   2. Prefill (prompt chunks and text being scored) shares what is left. Interactive requests
//      (Generate) are served before bulk ones (Score); within each class the tokens are shared
//      evenly (water-filling: no request gets more than an equal share unless the others need
//      less), and the few tokens an even split leaves over go round-robin, starting one request
//      further every step. So one long job never holds the whole budget while others wait.
//   3. Latency mode: while interactive requests take part in a step, bulk prefill is capped so
//      that the whole step stays within `interactive_step_budget` tokens, and a step that feeds
//      an interactive prompt carries at most `prompt_step_bulk_tokens` of bulk prefill: a short
//      Generate's first token then comes one step about as short as on an idle server after the
//      step in flight, not after a full one. The small floor keeps bulk jobs moving under a
//      steady stream of Generates. Alone, bulk work gets the whole budget (scoring throughput is
//      unchanged on an otherwise idle server).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mswa {

struct SchedulerOptions {
  int64_t token_budget = 512;
  int64_t interactive_step_budget = 128;  // see policy 3; <= token_budget
  int64_t prompt_step_bulk_tokens = 16;   // see policy 3; <= interactive_step_budget
};

// One running request as the scheduler sees it.
struct SchedEntry {
  bool interactive = false;  // Generate (latency matters) rather than Score (throughput)
  bool decoding = false;     // its prompt is done: it feeds one token per step
  int64_t feedable = 0;      // tokens it could feed now
};

// Tokens for entry `index` of the planned list in this step.
struct SchedGrant {
  size_t index = 0;
  int64_t tokens = 0;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerOptions& options) : options_(options) {}

  // The grants of one step over `running` (in admission order); entries with nothing to feed
  // get none. Decodes come first in the result, then prefill grants in `running`'s order.
  std::vector<SchedGrant> Plan(const std::vector<SchedEntry>& running);

  const SchedulerOptions& options() const { return options_; }

 private:
  SchedulerOptions options_;
  size_t rotation_ = 0;  // where this step's round-robin of leftover tokens starts
};

// Shares `budget` tokens among demands: no one gets more than it asks for, every share is as
// even as possible, and the remainder of the even split goes one token each starting at
// `start` (modulo the number of demands). Returns the tokens for each demand.
std::vector<int64_t> ShareEvenly(const std::vector<int64_t>& demands, int64_t budget, size_t start);

}  // namespace mswa
