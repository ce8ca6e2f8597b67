// The engine: one thread that owns the model, the KV cache and the scheduler, and runs
// iteration-level (continuously batched) steps. Other threads only submit, feed and cancel.
//
// A step, with a token budget of EngineOptions::max_tokens_per_step:
//   1. apply cancellations (their blocks are freed now) and admit waiting requests in arrival
//      order while every window group can reserve the request's exact KV bound (all-or-nothing;
//      nothing is ever preempted or recomputed);
//   2. one token for every generating sequence whose prompt is done (decodes first), then
//      prefill chunks (prompt or text being scored) in arrival order until the budget is spent;
//   3. one forward over the flat batch; blocks that left every window are freed;
//   4. sample (generate) or score, stream the events, finish and release what is done.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/format/config.h"
#include "model/runtime/kv_cache_manager.h"
#include "model/runtime/paged_model.h"
#include "model/tokenizer/tokenizer.h"
#include "model/format/weights.h"
#include "server/engine/engine_info.h"
#include "server/engine/scheduler.h"
#include "server/engine/score_prefix_cache.h"
#include "server/request.h"

namespace mswa {

struct EngineOptions {
  ModelDevice device = ModelDevice::kCpu;     // where weights, KV pools and compute live
  std::optional<KvDType> kv_cache_dtype;      // the pools' element type; unset: ResolveKvDType's default
  std::optional<at::ScalarType> dtype;        // compute type; unset: ResolveComputeDType's default
  std::optional<at::ScalarType> activation_dtype;  // unset: ResolveActivationDType's default
  int64_t kv_cache_bytes = int64_t{1} << 30;  // K and V pools (fp32 on the CPU, the weights' dtype
                                              // on CUDA), split across window groups
  int64_t block_size = 16;
  int64_t max_tokens_per_step = 512;  // token budget of one step (also the largest prefill chunk)
  // While Generate requests take part in a step, scoring work in it is cut so the step holds at
  // most this many tokens (short steps keep their latency low; see server/engine/scheduler.h).
  // 0: a quarter of max_tokens_per_step.
  int64_t interactive_step_tokens = 0;
  // A step that feeds a Generate's prompt carries at most this many scoring tokens, so the first
  // token is not held back by bulk work (0: max_tokens_per_step / 32).
  int64_t prompt_step_bulk_tokens = 0;
  int64_t max_model_len = 32768;      // longest sequence where some window is unbounded
  int32_t max_waiting = 256;          // queued requests beyond which Submit fails
  int32_t max_new_tokens = 4096;      // upper limit for GenerateOptions::max_tokens
  bool poison_freed_blocks = false;   // fill freed KV blocks with NaN (tests, debugging)
  // Window-aware prefix caching (model/runtime/kv_cache_manager.h): a Generate resumes after the
  // longest prefix of its prompt whose K/V earlier requests left in the pools, exactly; a hit
  // saves prefill compute, never admission capacity. Score requests leave their blocks too.
  bool enable_prefix_caching = true;
  // Tests: wraps the model the engine creates (fault injection). Unset in production.
  std::function<std::unique_ptr<PagedModel>(std::unique_ptr<PagedModel>)> wrap_model_for_testing;
  // Threads for matrix products and attention (0: every core). Set explicitly because LibTorch's
  // own default can be 1 on VMs whose CPU topology it cannot read.
  int32_t num_threads = 0;
  absl::Status Validate() const;
};

// Counters and gauges for metrics and tests; a consistent snapshot.
struct EngineStats {
  int64_t waiting = 0;
  int64_t running = 0;
  int64_t steps = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t scored_tokens = 0;
  int64_t failed_steps = 0;  // forwards that threw; their requests were aborted
  // Prefix caching: prompt tokens of Generate requests looked up, and how many came from the
  // cache (monotonic).
  int64_t prefix_queried_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  struct Group {
    int64_t window = 0;
    int64_t used_blocks = 0;
    int64_t total_blocks = 0;
    int64_t freed_by_window = 0;
    int64_t cached_blocks = 0;   // unreferenced blocks kept for prefix hits (also free)
    int64_t evicted_blocks = 0;  // monotonic: cached blocks reused for new K/V
  };
  std::vector<Group> groups;
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const ModelConfig& config,
                                                       ModelWeights weights,
                                                       std::unique_ptr<Tokenizer> tokenizer,
                                                       const EngineOptions& options);
  ~Engine();  // stops the thread (Shutdown)

  // Thread-safe. Queues a generation of `prompt` (token ids, BOS included if wanted).
  //   InvalidArgument: empty prompt, a token id outside the vocabulary, bad options, or a
  //                    request that can never fit (longer than max_model_len with an unbounded
  //                    window, or more KV than the whole pool);
  //   ResourceExhausted: max_waiting requests are already queued;
  //   Unavailable: the engine is shutting down.
  // On success every later event goes to `sink`, the last one with finished set.
  absl::StatusOr<int64_t> SubmitGenerate(std::vector<int32_t> prompt,
                                         const GenerateOptions& options, EventSink sink);

  // Thread-safe. Opens a scoring request; its text arrives through FeedScore. Errors as above.
  // `expected_tokens` (< 0: unknown) bounds the KV reservation of full-attention heads.
  absl::StatusOr<int64_t> SubmitScore(const ScoreOptions& options, int64_t expected_tokens,
                                      EventSink sink);
  // Thread-safe. Appends tokens of the text being scored (`bytes` of text they stand for);
  // `last` closes the input. NotFound for an unknown or finished request.
  absl::Status FeedScore(int64_t request_id, const std::vector<int32_t>& tokens, int64_t bytes,
                         bool last);

  // Thread-safe. The request finishes with kCancelled at the next step and its blocks are
  // freed. Unknown or finished ids are ignored.
  void Cancel(int64_t request_id);

  // Called on the engine thread after every step that ran a forward: its duration and the
  // number of tokens in the batch (for metrics). Set before Start.
  void SetStepObserver(std::function<void(double seconds, int64_t tokens)> observer) {
    step_observer_ = std::move(observer);
  }

  // Called on the engine thread after a step whose forward pass failed; its requests were
  // aborted with `error`. `fatal` when the model cannot recover (PagedModel::FailureIsFatal):
  // then every request was aborted, every later Submit fails with Unavailable, and the server
  // reports NOT_SERVING so that the orchestrator restarts it. Set before Start.
  void SetFailureObserver(std::function<void(const absl::Status& error, bool fatal)> observer) {
    failure_observer_ = std::move(observer);
  }

  // Starts the engine thread (Step in a loop, sleeping when idle).
  void Start();
  // Stops admitting; running requests are finished with kAborted; joins the thread. Idempotent.
  void Shutdown();

  // Engine thread only (or tests that never call Start): runs one step. False when idle.
  bool Step();

  EngineStats stats() const;  // thread-safe
  // The served model, KV layout, memory bounds and limits as plain values (engine_info.cc);
  // thread-safe.
  EngineInfo Info() const;
  const ModelConfig& config() const { return model_->config(); }
  int64_t num_parameters() const { return num_parameters_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineOptions& options() const { return options_; }
  KvDType kv_dtype() const { return model_->kv_dtype(); }  // the pools' element type
  at::ScalarType dtype() const { return model_->dtype(); }  // the matrix products' type
  at::ScalarType activation_dtype() const { return model_->activation_dtype(); }
  const KvCacheManager& kv() const { return kv_; }  // engine thread / tests only

 private:
  struct Request;
  struct Slot;
  struct StepBatch;
  struct StepCounts {
    int64_t prompt_tokens = 0, generated = 0, scored = 0;
  };
  // What Enqueue checks a request against, fixed at creation (gRPC threads never read kv_).
  struct GroupLimit {
    int64_t window = 0;
    int64_t total_blocks = 0;
    int64_t ring_size = 0;
  };
  Engine(std::unique_ptr<PagedModel> model, std::unique_ptr<Tokenizer> tokenizer,
         KvCacheManager kv, const EngineOptions& options);
  // Fills the batch's token rows, positions, block tables and logits rows for its slots
  // (reserving their KV blocks); server/engine/batch.cc.
  void BuildBatch(StepBatch& batch);
  // Scores, samples and streams what the step's logits give each request;
  // server/engine/outputs.cc.
  StepCounts ProcessOutputs(const StepBatch& batch, const at::Tensor& logits);
  // Queues a checked request (any thread), and moves queued requests, feeds and cancellations
  // into the engine thread's state; server/engine/submit.cc.
  absl::StatusOr<int64_t> Enqueue(std::unique_ptr<Request> request);
  void TakeIncoming();
  void Admit();
  void Finish(Request& r, FinishReason reason, absl::Status error = absl::OkStatus());
  void EmitGenerated(Request& r, const SampleResult& sample, const float* logits);
  // Prefix caching: hands the token ids of the n positions the step just wrote to the KV manager.
  void CommitTokens(Request& r, int64_t n);
  // Prefix caching of scores (server/engine/score_prefix.cc): a scoring request that has not
  // fed a position yet resumes after the longest prefix of its text whose K/V and scores are
  // cached; and each step's scores go into the cache as the request's blocks fill.
  void ResumeScoreFromCache(Request& r);
  void RecordScores(Request& r, int64_t n, const std::vector<float>& logprobs);
  // A forward that threw: aborts the batch's requests, or all of them when the model is gone.
  void FailStep(const std::vector<Request*>& batch, const std::string& what);
  void DropFinished();  // removes finished requests from running_
  void Loop();
  // Copies the queue sizes and KV accounting into stats_ (engine thread).
  void UpdateStatsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<PagedModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  KvCacheManager kv_;
  EngineOptions options_;
  std::vector<GroupLimit> group_limits_;  // immutable after construction
  Scheduler scheduler_;                    // engine thread only
  ScorePrefixCache score_cache_;           // engine thread only

  // Shared with submitting threads.
  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  std::deque<std::unique_ptr<Request>> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> cancelled_ ABSL_GUARDED_BY(mu_);
  struct Feed {
    int64_t id;
    std::vector<int32_t> tokens;
    int64_t bytes;
    bool last;
  };
  std::vector<Feed> feeds_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, bool> live_ids_ ABSL_GUARDED_BY(mu_);  // submitted and not finished
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fatal_error_ ABSL_GUARDED_BY(mu_);  // set once the model failed for good
  EngineStats stats_ ABSL_GUARDED_BY(mu_);

  // Engine thread only.
  std::deque<std::unique_ptr<Request>> waiting_;
  std::vector<std::unique_ptr<Request>> running_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::function<void(double, int64_t)> step_observer_;
  std::function<void(const absl::Status&, bool)> failure_observer_;
  int64_t num_parameters_ = 0;
};

}  // namespace mswa
