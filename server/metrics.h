// Prometheus metrics of the server (prometheus-cpp, text format on its own port). Every metric
// name is defined here and nowhere else. Base units (seconds, tokens), low-cardinality labels.
//
//   mswa_requests_total{api, rpc, code}               finished requests by front end (grpc, http),
//                                                     RPC or HTTP path, and canonical status code
//   mswa_requests_waiting / mswa_requests_running     engine queue and batch (gauges)
//   mswa_time_to_first_token_seconds                  Generate: arrival -> first token
//   mswa_inter_token_latency_seconds                  Generate: between consecutive tokens
//   mswa_request_duration_seconds{api, rpc}           arrival -> finished
//   mswa_queue_time_seconds                           arrival -> admitted (KV reserved)
//   mswa_prompt_tokens_total, mswa_generated_tokens_total, mswa_scored_tokens_total
//   mswa_step_duration_seconds, mswa_batch_tokens     one engine step and its tokens
//   mswa_kv_blocks_used{window}, mswa_kv_blocks_capacity{window}
//   mswa_kv_blocks_freed_by_window_total{window}      blocks released as they left the window
//   mswa_failed_steps_total                           engine steps whose forward pass threw
//   mswa_prefix_cache_queries_total                   prompt tokens looked up in the prefix cache
//   mswa_prefix_cache_hits_total                      ... and found there (not recomputed)
//   mswa_kv_blocks_cached{window}                     unreferenced blocks kept for prefix hits
//   mswa_kv_blocks_evicted_total{window}              cached blocks reused for new K/V
//
// Thread-safe: prometheus-cpp metrics are atomic; Refresh may run on any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/engine.h"

namespace mswa {

class MetricsHttpServer;

class Metrics {
 public:
  // Serves /metrics on `address` ("127.0.0.1:9090"; port 0 picks a free one) with
  // MetricsHttpServer. InvalidArgument naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(const std::string& address,
                                                        const std::vector<int64_t>& windows);
  ~Metrics();  // stops the HTTP endpoint first
  int port() const { return port_; }
  // The text exposition of every metric (what /metrics returns).
  std::string Exposition();

  // `api`: "grpc" or "http"; `rpc`: the RPC ("Generate") or HTTP path ("/v1/completions");
  // `code`: the canonical status name ("OK", "INVALID_ARGUMENT"), whichever the protocol.
  void RequestFinished(const std::string& api, const std::string& rpc, const std::string& code,
                       double seconds);
  void FirstToken(double seconds) { ttft_->Observe(seconds); }
  void InterToken(double seconds) { itl_->Observe(seconds); }
  void Queued(double seconds) { queue_->Observe(seconds); }
  void Step(double seconds, int64_t tokens);
  // Copies the engine's gauges and counters (called after each step and on every scrape).
  void Refresh(const EngineStats& stats);
  // Where a scrape gets fresh engine stats from (thread-safe function).
  void SetStatsSource(std::function<EngineStats()> source);

 private:
  Metrics();
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> http_;
  int port_ = 0;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* duration_ = nullptr;
  prometheus::Gauge* waiting_ = nullptr;
  prometheus::Gauge* running_ = nullptr;
  prometheus::Histogram* ttft_ = nullptr;
  prometheus::Histogram* itl_ = nullptr;
  prometheus::Histogram* queue_ = nullptr;
  prometheus::Histogram* step_ = nullptr;
  prometheus::Histogram* batch_ = nullptr;
  prometheus::Counter* prompt_tokens_ = nullptr;
  prometheus::Counter* generated_tokens_ = nullptr;
  prometheus::Counter* scored_tokens_ = nullptr;
  prometheus::Counter* failed_steps_ = nullptr;
  prometheus::Counter* prefix_queries_ = nullptr;
  prometheus::Counter* prefix_hits_ = nullptr;
  std::vector<prometheus::Gauge*> kv_used_, kv_total_, kv_cached_;
  std::vector<prometheus::Counter*> kv_freed_, kv_evicted_;
  absl::Mutex mu_;  // guards the engine counters' last values and the source
  EngineStats last_ ABSL_GUARDED_BY(mu_);
  std::function<EngineStats()> source_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mswa
