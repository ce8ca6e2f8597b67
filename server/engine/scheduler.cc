#include "server/engine/scheduler.h"

#include <algorithm>
#include <numeric>

namespace mswa {

std::vector<int64_t> ShareEvenly(const std::vector<int64_t>& demands, int64_t budget, size_t start) {
  const size_t n = demands.size();
  std::vector<int64_t> given(n, 0);
  if (n == 0 || budget <= 0) return given;
  // Water-filling: serve the smallest demands first; each gets at most an equal share of what
  // is left, so what the small ones do not use goes to the large ones.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return demands[a] < demands[b]; });
  int64_t left = budget;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    const int64_t share = left / static_cast<int64_t>(n - k);
    if (demands[i] <= share) {
      given[i] = std::max<int64_t>(0, demands[i]);
      left -= given[i];
      continue;
    }
    // Everyone from here on asks for more than an equal share: each gets exactly that share.
    for (size_t m = k; m < n; ++m) given[order[m]] = share;
    left -= share * static_cast<int64_t>(n - k);
    break;
  }
  // The integer division's remainder, one token each, round-robin from `start`.
  for (size_t k = 0; k < n && left > 0; ++k) {
    const size_t i = (start + k) % n;
    if (given[i] < demands[i]) {
      ++given[i];
      --left;
    }
  }
  return given;
}

std::vector<SchedGrant> Scheduler::Plan(const std::vector<SchedEntry>& running) {
  std::vector<SchedGrant> grants;
  int64_t budget = options_.token_budget;
  bool interactive = false;         // an interactive request takes part in this step
  bool interactive_prompt = false;  // ... with prompt tokens
  for (size_t i = 0; i < running.size() && budget > 0; ++i) {
    const SchedEntry& e = running[i];
    if (e.decoding && e.feedable > 0) {
      grants.push_back({i, 1});
      --budget;
      interactive = interactive || e.interactive;
    }
  }
  // Prefill, interactive class first, then bulk.
  std::vector<SchedGrant> prefill;
  for (bool klass : {true, false}) {
    std::vector<size_t> who;
    std::vector<int64_t> demands;
    for (size_t i = 0; i < running.size(); ++i) {
      const SchedEntry& e = running[i];
      if (!e.decoding && e.feedable > 0 && e.interactive == klass) {
        who.push_back(i);
        demands.push_back(e.feedable);
      }
    }
    if (who.empty()) continue;
    int64_t class_budget = budget;
    if (!klass && interactive_prompt) {
      // Latency mode, a Generate's prompt in this step: its first token waits on bulk work for
      // no more than the floor.
      class_budget = std::min(budget, options_.prompt_step_bulk_tokens);
    } else if (!klass && interactive) {
      // Latency mode: keep the step short while interactive requests wait on it.
      const int64_t used = options_.token_budget - budget;
      class_budget = std::min(budget, std::max<int64_t>(0, options_.interactive_step_budget - used));
    }
    const std::vector<int64_t> given = ShareEvenly(demands, class_budget, rotation_ % who.size());
    for (size_t k = 0; k < who.size(); ++k) {
      if (given[k] > 0) {
        prefill.push_back({who[k], given[k]});
        budget -= given[k];
        interactive = interactive || klass;
        interactive_prompt = interactive_prompt || klass;
      }
    }
  }
  std::sort(prefill.begin(), prefill.end(),
            [](const SchedGrant& a, const SchedGrant& b) { return a.index < b.index; });
  grants.insert(grants.end(), prefill.begin(), prefill.end());
  ++rotation_;
  return grants;
}

}  // namespace mswa
