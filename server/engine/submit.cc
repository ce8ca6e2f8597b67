// What other threads call: submitting requests (checked before they are queued), feeding a
// score's text and cancelling, all through the mutex-guarded queues; and TakeIncoming, where the
// engine thread picks them up at the start of a step.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/engine/request_state.h"

namespace mswa {

absl::StatusOr<int64_t> Engine::Enqueue(std::unique_ptr<Request> r) {
  // Requests that could never be admitted are refused now rather than waiting forever.
  for (size_t g = 0; g < group_limits_.size(); ++g) {
    const GroupLimit& limit = group_limits_[g];
    if (limit.window == 0 && (r->kv_max_tokens < 0 || r->kv_max_tokens > options_.max_model_len)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the model has full-attention heads, so a request may hold at most ", options_.max_model_len,
          " tokens (--max_model_len); this one needs ",
          r->kv_max_tokens < 0 ? std::string("an unknown number") : absl::StrCat(r->kv_max_tokens)));
    }
    const int64_t needed =
        r->kv_max_tokens < 0 ? limit.ring_size
                             : BlocksForLength(limit.window, r->kv_max_tokens,
                                               options_.max_tokens_per_step, options_.block_size);
    if (needed > limit.total_blocks) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the request needs more KV memory than the whole cache holds (window group ", g,
          " needs ", needed, " blocks of ", limit.total_blocks,
          "); raise --kv_cache_bytes or shorten the request"));
    }
  }
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  if (!fatal_error_.ok()) return fatal_error_;
  if (static_cast<int32_t>(incoming_.size() + stats_.waiting) >= options_.max_waiting) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many waiting requests (", options_.max_waiting, "); retry later"));
  }
  r->id = next_id_++;
  r->arrival = absl::Now();
  const int64_t id = r->id;
  live_ids_[id] = r->kind == Request::Kind::kScore;
  incoming_.push_back(std::move(r));
  wake_.Signal();
  return id;
}

absl::StatusOr<int64_t> Engine::SubmitGenerate(std::vector<int32_t> prompt,
                                               const GenerateOptions& options, EventSink sink) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  const int64_t vocab = model_->config().vocab_size;
  for (int32_t t : prompt) {
    if (t < 0 || t >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token id ", t, " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  RETURN_IF_ERROR(options.sampling.Validate());
  if (options.max_tokens < 1 || options.max_tokens > options_.max_new_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be in [1, ",
                                                   options_.max_new_tokens, "], got ",
                                                   options.max_tokens));
  }
  if (options.top_logprobs < 0 || options.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs must be in [0, ", kMaxTopLogprobs,
                                                   "], got ", options.top_logprobs));
  }
  auto r = std::make_unique<Request>();
  r->kind = Request::Kind::kGenerate;
  r->sink = std::move(sink);
  r->gen = options;
  r->prompt_len = static_cast<int64_t>(prompt.size());
  r->kv_max_tokens = r->prompt_len + options.max_tokens;
  r->use_prefix_cache = options_.enable_prefix_caching && options.use_prefix_cache;
  r->sampler = std::make_unique<Sampler>(options.sampling, prompt);
  r->detok = std::make_unique<StreamingDetokenizer>(*tokenizer_);
  r->stop = std::make_unique<StopMatcher>(options.stop);
  r->tokens = std::move(prompt);
  return Enqueue(std::move(r));
}

absl::StatusOr<int64_t> Engine::SubmitScore(const ScoreOptions& options, int64_t expected_tokens,
                                            EventSink sink) {
  auto r = std::make_unique<Request>();
  r->kind = Request::Kind::kScore;
  r->sink = std::move(sink);
  r->score = options;
  // A score needs every position's logits, so a cached prefix saves it nothing; its blocks are
  // left for a Generate that continues the same text.
  r->use_prefix_cache = options_.enable_prefix_caching;
  if (expected_tokens >= 0) r->kv_max_tokens = expected_tokens + (options.add_bos ? 1 : 0);
  if (options.add_bos) {
    const int64_t bos = model_->config().bos_token_id;
    if (bos < 0) {
      return absl::InvalidArgumentError("add_bos is set but the model has no BOS token");
    }
    r->unfed.push_back(static_cast<int32_t>(bos));
  }
  return Enqueue(std::move(r));
}

absl::Status Engine::FeedScore(int64_t request_id, const std::vector<int32_t>& tokens,
                               int64_t bytes, bool last) {
  const int64_t vocab = model_->config().vocab_size;
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", t, " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  absl::MutexLock lock(&mu_);
  auto it = live_ids_.find(request_id);
  if (it == live_ids_.end() || !it->second) {
    return absl::NotFoundError(absl::StrCat("no open scoring request ", request_id));
  }
  feeds_.push_back(Feed{request_id, tokens, bytes, last});
  wake_.Signal();
  return absl::OkStatus();
}

void Engine::Cancel(int64_t request_id) {
  absl::MutexLock lock(&mu_);
  if (live_ids_.count(request_id) == 0) return;
  cancelled_.push_back(request_id);
  wake_.Signal();
}

void Engine::TakeIncoming() {
  std::deque<std::unique_ptr<Request>> incoming;
  std::vector<int64_t> cancelled;
  std::vector<Feed> feeds;
  {
    absl::MutexLock lock(&mu_);
    incoming.swap(incoming_);
    cancelled.swap(cancelled_);
    feeds.swap(feeds_);
  }
  for (auto& r : incoming) waiting_.push_back(std::move(r));
  auto find = [&](int64_t id) -> Request* {
    for (auto& r : running_) {
      if (r->id == id) return r.get();
    }
    for (auto& r : waiting_) {
      if (r->id == id) return r.get();
    }
    return nullptr;
  };
  for (Feed& f : feeds) {
    if (Request* r = find(f.id)) {
      r->unfed.insert(r->unfed.end(), f.tokens.begin(), f.tokens.end());
      r->bytes_fed += f.bytes;
      r->input_closed = r->input_closed || f.last;
    }
  }
  for (int64_t id : cancelled) {
    if (Request* r = find(id)) r->cancelled = true;
  }
}

}  // namespace mswa
