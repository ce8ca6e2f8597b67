#include "server/engine.h"

#include "server/engine/request_state.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <string>
#include <thread>
#include <utility>

#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace mswa {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kAborted: return "aborted";
  }
  return "unknown";
}

double ScoreTotals::perplexity() const {
  return tokens > 0 ? std::exp(total_nll / static_cast<double>(tokens)) : 1.0;
}

double ScoreTotals::bits_per_byte() const {
  return bytes > 0 ? total_nll / std::log(2.0) / static_cast<double>(bytes) : 0.0;
}

absl::Status EngineOptions::Validate() const {
  if (block_size < 1 || block_size > 64) {
    return absl::InvalidArgumentError(absl::StrCat("KV block size must be in [1, 64], got ", block_size));
  }
  if (max_tokens_per_step < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max tokens per step must be >= 1, got ", max_tokens_per_step));
  }
  if (max_model_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max model length must be >= 1, got ", max_model_len));
  }
  if (max_waiting < 1 || max_new_tokens < 1) {
    return absl::InvalidArgumentError("max waiting requests and max new tokens must be >= 1");
  }
  if (kv_cache_bytes < 1) return absl::InvalidArgumentError("KV cache bytes must be > 0");
  if (num_threads < 0) return absl::InvalidArgumentError("threads must be >= 0 (0 = all cores)");
  return absl::OkStatus();
}

namespace {

// Mixed into every prefix-cache block hash: the model's configuration and the types its K/V are
// computed and stored in (FNV-1a over their text). One process serves one model whose weights
// never change, so this only has to separate what could differ inside one pool; it keeps block
// hashes meaningful if they are ever logged or compared across servers of different models.
// Entries the score cache keeps: as many blocks as the largest window group's pool holds, so
// it can describe every block the KV cache can hold at once.
int64_t MaxPoolBlocks(const KvCacheManager& kv) {
  int64_t most = 0;
  for (int g = 0; g < kv.num_groups(); ++g) most = std::max(most, kv.total_blocks(g));
  return most;
}

uint64_t PrefixCacheSeed(const ModelConfig& config, at::ScalarType dtype,
                         at::ScalarType activation_dtype, KvDType kv_dtype) {
  const std::string identity =
      absl::StrCat(ModelConfigToJson(config), "|", c10::toString(dtype), "|",
                   c10::toString(activation_dtype), "|", KvDTypeName(kv_dtype));
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : identity) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const ModelConfig& config,
                                                       ModelWeights weights,
                                                       std::unique_ptr<Tokenizer> tokenizer,
                                                       const EngineOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  RETURN_IF_ERROR(config.Validate());
  const KvLayout layout = BuildKvLayout(config);
  ASSIGN_OR_RETURN(KvDType kv_dtype, ResolveKvDType(options.device, weights.dtype(), options.kv_cache_dtype));
  ASSIGN_OR_RETURN(at::ScalarType dtype, ResolveComputeDType(options.device, weights.dtype(), options.dtype));
  ASSIGN_OR_RETURN(at::ScalarType activation_dtype,
                   ResolveActivationDType(options.device, dtype, options.activation_dtype));
  ASSIGN_OR_RETURN(std::vector<int64_t> blocks,
                   PlanBlocksPerGroup(layout, config.head_dim, KvDTypeBytes(kv_dtype),
                                      options.block_size,
                                      options.max_tokens_per_step, options.max_model_len,
                                      options.kv_cache_bytes));
  KvCacheConfig kv_config;
  kv_config.block_size = options.block_size;
  kv_config.max_chunk = options.max_tokens_per_step;
  kv_config.max_model_len = options.max_model_len;
  for (const WindowGroup& g : layout.groups) kv_config.group_windows.push_back(g.window);
  kv_config.blocks_per_group = blocks;
  kv_config.enable_prefix_caching = options.enable_prefix_caching;
  kv_config.prefix_cache_seed = PrefixCacheSeed(config, dtype, activation_dtype, kv_dtype);
  ASSIGN_OR_RETURN(KvCacheManager kv, KvCacheManager::Create(kv_config));

  PagedModelOptions model_options;
  model_options.device = options.device;
  model_options.kv_dtype = kv_dtype;
  model_options.dtype = dtype;
  model_options.activation_dtype = activation_dtype;
  model_options.block_size = options.block_size;
  model_options.blocks_per_group = blocks;
  for (int g = 0; g < kv.num_groups(); ++g) model_options.ring_sizes.push_back(kv.ring_size(g));
  const int64_t num_parameters = weights.num_parameters();
  ASSIGN_OR_RETURN(std::unique_ptr<PagedModel> model,
                   PagedModel::Create(config, std::move(weights), model_options));
  if (options.wrap_model_for_testing) model = options.wrap_model_for_testing(std::move(model));
  std::unique_ptr<Engine> engine(
      new Engine(std::move(model), std::move(tokenizer), std::move(kv), options));
  engine->num_parameters_ = num_parameters;
  if (options.poison_freed_blocks) {
    Engine* e = engine.get();
    e->kv_.set_on_free([e](int g, int32_t block) { e->model_->PoisonBlock(g, block); });
  }
  return engine;
}

Engine::Engine(std::unique_ptr<PagedModel> model, std::unique_ptr<Tokenizer> tokenizer,
               KvCacheManager kv, const EngineOptions& options)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      kv_(std::move(kv)),
      options_(options),
      scheduler_(SchedulerOptions{
          options.max_tokens_per_step,
          options.interactive_step_tokens > 0
              ? std::min(options.interactive_step_tokens, options.max_tokens_per_step)
              : std::max<int64_t>(1, options.max_tokens_per_step / 4),
          options.prompt_step_bulk_tokens > 0
              ? std::min(options.prompt_step_bulk_tokens, options.max_tokens_per_step)
              : std::max<int64_t>(1, options.max_tokens_per_step / 32)}),
      score_cache_(options.enable_prefix_caching ? MaxPoolBlocks(kv_) : 0) {
  for (int g = 0; g < kv_.num_groups(); ++g) {
    group_limits_.push_back({kv_.window(g), kv_.total_blocks(g), kv_.ring_size(g)});
  }
  absl::MutexLock lock(&mu_);
  for (int g = 0; g < kv_.num_groups(); ++g) {
    stats_.groups.push_back({kv_.window(g), 0, kv_.total_blocks(g), 0, 0, 0});
  }
}

Engine::~Engine() { Shutdown(); }

void Engine::Admit() {
  // Cancelled (or expired) requests leave the queue wherever they sit, so they neither count
  // against max_waiting nor hold up the ones behind them.
  for (auto& r : waiting_) {
    if (r->cancelled) Finish(*r, FinishReason::kCancelled);
  }
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(),
                                [](const auto& r) { return r->sink == nullptr; }),
                 waiting_.end());
  while (!waiting_.empty()) {
    Request& r = *waiting_.front();
    absl::Status s;
    if (r.use_prefix_cache && r.kind == Request::Kind::kGenerate) {
      // Resume after the longest cached prefix: its blocks are referenced, not recomputed. The
      // reservation is the same as without a hit, so admission is unchanged. The lookup and the
      // admission run back to back on this thread, so the blocks cannot be evicted in between.
      const int64_t cached = kv_.LongestCachedPrefix(r.tokens);
      s = kv_.Admit(r.id, r.kv_max_tokens, r.tokens, cached);
      if (s.ok()) r.computed = cached;
    } else {
      s = kv_.Admit(r.id, r.kv_max_tokens);
    }
    if (absl::IsResourceExhausted(s)) return;  // first come, first served: wait for memory
    if (!s.ok()) {
      Finish(r, FinishReason::kAborted, s);
      waiting_.pop_front();
      continue;
    }
    r.admitted = absl::Now();
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Engine::DropFinished() {
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [](const auto& r) { return r->sink == nullptr; }),
                 running_.end());
}

void Engine::FailStep(const std::vector<Request*>& batch, const std::string& what) {
  const bool fatal = model_->FailureIsFatal();
  const absl::Status step_error = absl::InternalError(
      absl::StrCat("the model failed to run this request's step: ", what));
  for (Request* r : batch) {
    if (r->sink) Finish(*r, FinishReason::kAborted, step_error);
  }
  absl::Status fatal_error;
  if (fatal) {
    fatal_error = absl::UnavailableError(absl::StrCat(
        "the model failed and cannot recover (", what,
        "); this server must be restarted: retry on another replica"));
    {
      absl::MutexLock lock(&mu_);
      fatal_error_ = fatal_error;
    }
    TakeIncoming();
    for (auto& r : running_) {
      if (r->sink) Finish(*r, FinishReason::kAborted, fatal_error);
    }
    for (auto& r : waiting_) {
      if (r->sink) Finish(*r, FinishReason::kAborted, fatal_error);
    }
    waiting_.clear();
  }
  DropFinished();
  {
    absl::MutexLock lock(&mu_);
    ++stats_.failed_steps;
    UpdateStatsLocked();
  }
  if (failure_observer_) failure_observer_(fatal ? fatal_error : step_error, fatal);
}

void Engine::Finish(Request& r, FinishReason reason, absl::Status error) {
  kv_.Release(r.id);
  EngineEvent e;
  e.request_id = r.id;
  e.finished = true;
  e.finish_reason = reason;
  e.error = std::move(error);
  e.prompt_tokens = r.prompt_len;
  e.completion_tokens = r.generated;
  e.score = r.totals;
  const absl::Time now = absl::Now();
  e.timings.queue_seconds = absl::ToDoubleSeconds((r.admitted == absl::Time() ? now : r.admitted) - r.arrival);
  e.timings.first_token_seconds = e.timings.queue_seconds;
  e.timings.total_seconds = absl::ToDoubleSeconds(now - r.arrival);
  r.sink(std::move(e));
  r.sink = nullptr;  // finished: nothing more is sent
  absl::MutexLock lock(&mu_);
  live_ids_.erase(r.id);
}

bool Engine::Step() {
  // OpenMP's thread count is per calling thread: set it in whichever thread runs the steps.
  thread_local int32_t threads_set = 0;
  const int32_t threads = options_.num_threads > 0
                              ? options_.num_threads
                              : static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads_set != threads) {
    at::set_num_threads(threads);
    threads_set = threads;
  }
  TakeIncoming();
  // Cancellations first, so their blocks are free for admission in this very step.
  for (auto& r : running_) {
    if (r->cancelled) Finish(*r, FinishReason::kCancelled);
  }
  DropFinished();
  Admit();
  for (auto& r : running_) {
    if (r->kind == Request::Kind::kScore && r->use_prefix_cache && !r->prefix_looked_up &&
        r->Feedable() > 0) {
      ResumeScoreFromCache(*r);
    }
  }

  // ---- plan (server/engine/scheduler.h) ------------------------------------------------------
  std::vector<SchedEntry> entries;
  entries.reserve(running_.size());
  for (const auto& r : running_) {
    entries.push_back({r->kind == Request::Kind::kGenerate, r->decoding(), r->Feedable()});
  }
  StepBatch batch;
  for (const SchedGrant& g : scheduler_.Plan(entries)) {
    batch.slots.push_back({running_[g.index].get(), 0, g.tokens, 0});
  }

  // Scoring requests whose input is complete and fully scored finish without a forward.
  for (auto& r : running_) {
    if (r->kind == Request::Kind::kScore && r->input_closed && r->Feedable() == 0) {
      r->totals.bytes = r->bytes_fed;
      Finish(*r, FinishReason::kLength);
    }
  }
  if (batch.slots.empty()) {
    DropFinished();
    absl::MutexLock lock(&mu_);
    UpdateStatsLocked();
    return false;
  }

  BuildBatch(batch);  // server/engine/batch.cc
  const absl::Time step_start = absl::Now();
  const StepInput in = batch.Input();
  at::Tensor logits;
  if (in.num_tokens > 0) {
    // The model throws only when it cannot run (out of memory, a device fault): the requests
    // of this batch end with the error, and the engine goes on with the others.
    try {
      logits = model_->Forward(in);
    } catch (const std::exception& e) {
      std::vector<Request*> failed;
      for (const Slot& s : batch.slots) failed.push_back(s.r);
      FailStep(failed, e.what());
      return true;
    }
  }
  const StepCounts counts = ProcessOutputs(batch, logits);  // server/engine/outputs.cc
  DropFinished();
  if (step_observer_) step_observer_(absl::ToDoubleSeconds(absl::Now() - step_start), in.num_tokens);

  absl::MutexLock lock(&mu_);
  ++stats_.steps;
  stats_.prompt_tokens += counts.prompt_tokens;
  stats_.generated_tokens += counts.generated;
  stats_.scored_tokens += counts.scored;
  UpdateStatsLocked();
  return true;
}

void Engine::UpdateStatsLocked() {
  stats_.waiting = static_cast<int64_t>(waiting_.size());
  stats_.running = static_cast<int64_t>(running_.size());
  for (int g = 0; g < kv_.num_groups(); ++g) {
    stats_.groups[g].used_blocks = kv_.used_blocks(g);
    stats_.groups[g].freed_by_window = kv_.blocks_freed_by_window(g);
    stats_.groups[g].cached_blocks = kv_.cached_blocks(g);
    stats_.groups[g].evicted_blocks = kv_.evicted_blocks(g);
  }
  stats_.prefix_queried_tokens = kv_.prefix_queried_tokens();
  stats_.prefix_hit_tokens = kv_.prefix_hit_tokens();
}

void Engine::Loop() {
  while (!stop_.load()) {
    if (Step()) continue;
    absl::MutexLock lock(&mu_);
    if (incoming_.empty() && cancelled_.empty() && feeds_.empty() && !stop_.load()) {
      wake_.WaitWithTimeout(&mu_, absl::Milliseconds(50));
    }
  }
}

void Engine::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Engine::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ && !thread_.joinable()) return;
    shutting_down_ = true;
    stop_ = true;
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  TakeIncoming();
  for (auto& r : running_) {
    if (r->sink) Finish(*r, FinishReason::kAborted, absl::UnavailableError("the server shut down"));
  }
  for (auto& r : waiting_) {
    if (r->sink) Finish(*r, FinishReason::kAborted, absl::UnavailableError("the server shut down"));
  }
  running_.clear();
  waiting_.clear();
}

EngineStats Engine::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace mswa
