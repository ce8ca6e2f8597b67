#include "server/metrics.h"

#include <prometheus/text_serializer.h>

#include <exception>

#include "absl/strings/str_cat.h"
#include "server/metrics_http_server.h"

namespace mswa {
namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

std::string WindowLabel(int64_t window) { return window == 0 ? "unbounded" : absl::StrCat(window); }

}  // namespace

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const std::string& address,
                                                         const std::vector<int64_t>& windows) {
  std::unique_ptr<Metrics> m(new Metrics());
  m->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *m->registry_;
  m->requests_ = &prometheus::BuildCounter()
                      .Name("mswa_requests_total")
                      .Help("Finished requests by front end (grpc, http), RPC or path, and status code")
                      .Register(r);
  m->duration_ = &prometheus::BuildHistogram()
                      .Name("mswa_request_duration_seconds")
                      .Help("End-to-end latency: arrival to the last message")
                      .Register(r);
  auto& waiting = prometheus::BuildGauge().Name("mswa_requests_waiting").Help("Requests waiting for admission").Register(r);
  m->waiting_ = &waiting.Add({});
  auto& running = prometheus::BuildGauge().Name("mswa_requests_running").Help("Requests in the running batch").Register(r);
  m->running_ = &running.Add({});
  m->ttft_ = &prometheus::BuildHistogram().Name("mswa_time_to_first_token_seconds").Help("Generate: arrival to the first token").Register(r).Add({}, LatencyBuckets());
  m->itl_ = &prometheus::BuildHistogram().Name("mswa_inter_token_latency_seconds").Help("Generate: time between consecutive tokens").Register(r).Add({}, LatencyBuckets());
  m->queue_ = &prometheus::BuildHistogram().Name("mswa_queue_time_seconds").Help("Arrival to admission (KV memory reserved)").Register(r).Add({}, LatencyBuckets());
  m->step_ = &prometheus::BuildHistogram().Name("mswa_step_duration_seconds").Help("Duration of one engine step").Register(r).Add({}, LatencyBuckets());
  m->batch_ = &prometheus::BuildHistogram().Name("mswa_batch_tokens").Help("Tokens in one engine step").Register(r).Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096});
  m->prompt_tokens_ = &prometheus::BuildCounter().Name("mswa_prompt_tokens_total").Help("Prompt tokens prefilled").Register(r).Add({});
  m->generated_tokens_ = &prometheus::BuildCounter().Name("mswa_generated_tokens_total").Help("Tokens generated").Register(r).Add({});
  m->scored_tokens_ = &prometheus::BuildCounter().Name("mswa_scored_tokens_total").Help("Tokens scored").Register(r).Add({});
  m->failed_steps_ = &prometheus::BuildCounter().Name("mswa_failed_steps_total").Help("Engine steps whose forward pass failed; their requests were aborted").Register(r).Add({});
  m->prefix_queries_ = &prometheus::BuildCounter().Name("mswa_prefix_cache_queries_total").Help("Prompt tokens of Generate requests looked up in the prefix cache").Register(r).Add({});
  m->prefix_hits_ = &prometheus::BuildCounter().Name("mswa_prefix_cache_hits_total").Help("Prompt tokens served from the prefix cache instead of computed").Register(r).Add({});
  auto& cached = prometheus::BuildGauge().Name("mswa_kv_blocks_cached").Help("Unreferenced KV blocks kept for prefix-cache hits (free for admission), per window group").Register(r);
  auto& evicted = prometheus::BuildCounter().Name("mswa_kv_blocks_evicted_total").Help("Cached KV blocks evicted for new K/V, per window group").Register(r);
  auto& used = prometheus::BuildGauge().Name("mswa_kv_blocks_used").Help("KV blocks in use, per window group").Register(r);
  auto& total = prometheus::BuildGauge().Name("mswa_kv_blocks_capacity").Help("KV blocks in the pool, per window group").Register(r);
  auto& freed = prometheus::BuildCounter().Name("mswa_kv_blocks_freed_by_window_total").Help("KV blocks freed because every token in them left the window").Register(r);
  for (int64_t w : windows) {
    m->kv_used_.push_back(&used.Add({{"window", WindowLabel(w)}}));
    m->kv_total_.push_back(&total.Add({{"window", WindowLabel(w)}}));
    m->kv_freed_.push_back(&freed.Add({{"window", WindowLabel(w)}}));
    m->kv_cached_.push_back(&cached.Add({{"window", WindowLabel(w)}}));
    m->kv_evicted_.push_back(&evicted.Add({{"window", WindowLabel(w)}}));
  }
  Metrics* raw = m.get();
  auto http = MetricsHttpServer::Start(address, [raw] { return raw->Exposition(); });
  if (!http.ok()) return http.status();
  m->http_ = std::move(http).value();
  m->port_ = m->http_->port();
  return m;
}

Metrics::Metrics() = default;

Metrics::~Metrics() {
  http_.reset();  // no scrape may run while the registry goes away
}

void Metrics::SetStatsSource(std::function<EngineStats()> source) {
  absl::MutexLock lock(&mu_);
  source_ = std::move(source);
}

std::string Metrics::Exposition() {
  std::function<EngineStats()> source;
  {
    absl::MutexLock lock(&mu_);
    source = source_;
  }
  if (source) Refresh(source());
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::RequestFinished(const std::string& api, const std::string& rpc,
                              const std::string& code, double seconds) {
  requests_->Add({{"api", api}, {"rpc", rpc}, {"code", code}}).Increment();
  duration_->Add({{"api", api}, {"rpc", rpc}}, LatencyBuckets()).Observe(seconds);
}

void Metrics::Step(double seconds, int64_t tokens) {
  step_->Observe(seconds);
  batch_->Observe(static_cast<double>(tokens));
}

void Metrics::Refresh(const EngineStats& s) {
  absl::MutexLock lock(&mu_);
  waiting_->Set(static_cast<double>(s.waiting));
  running_->Set(static_cast<double>(s.running));
  // Counters only move forward: add what happened since the last refresh.
  prompt_tokens_->Increment(static_cast<double>(s.prompt_tokens - last_.prompt_tokens));
  generated_tokens_->Increment(static_cast<double>(s.generated_tokens - last_.generated_tokens));
  scored_tokens_->Increment(static_cast<double>(s.scored_tokens - last_.scored_tokens));
  failed_steps_->Increment(static_cast<double>(s.failed_steps - last_.failed_steps));
  prefix_queries_->Increment(static_cast<double>(s.prefix_queried_tokens - last_.prefix_queried_tokens));
  prefix_hits_->Increment(static_cast<double>(s.prefix_hit_tokens - last_.prefix_hit_tokens));
  for (size_t g = 0; g < s.groups.size() && g < kv_used_.size(); ++g) {
    kv_used_[g]->Set(static_cast<double>(s.groups[g].used_blocks));
    kv_total_[g]->Set(static_cast<double>(s.groups[g].total_blocks));
    kv_cached_[g]->Set(static_cast<double>(s.groups[g].cached_blocks));
    const bool seen = g < last_.groups.size();
    kv_freed_[g]->Increment(static_cast<double>(s.groups[g].freed_by_window -
                                                (seen ? last_.groups[g].freed_by_window : 0)));
    kv_evicted_[g]->Increment(static_cast<double>(s.groups[g].evicted_blocks -
                                                  (seen ? last_.groups[g].evicted_blocks : 0)));
  }
  last_ = s;
}

}  // namespace mswa
