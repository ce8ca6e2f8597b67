// What one step's logits mean for each request: scores and progress for scoring requests,
// sampled tokens, text, stop strings and EOS for generating ones.
#include "server/engine/request_state.h"

namespace mswa {

Engine::StepCounts Engine::ProcessOutputs(const StepBatch& batch, const at::Tensor& logits) {
  const int32_t vocab = static_cast<int32_t>(model_->config().vocab_size);
  const float* logits_data = logits.defined() ? logits.data_ptr<float>() : nullptr;  // [rows, V]
  // The generating requests' draws and the scored tokens' log-probabilities first, all together
  // (in parallel: model/runtime/sampler.h), then each slot's outputs in order. A scoring slot
  // has a row per token; a generating slot one, once its prompt is complete
  // (server/engine/batch.cc).
  std::vector<SampleJob> jobs;
  std::vector<int64_t> scored_rows;
  std::vector<int32_t> scored_targets;
  int64_t row = 0;
  for (const Slot& s : batch.slots) {
    const Request& r = *s.r;
    if (s.n == 0) continue;
    if (r.kind == Request::Kind::kScore) {
      for (int64_t j = 0; j < s.n; ++j) {
        scored_rows.push_back(row++);
        scored_targets.push_back(r.unfed[j + 1]);
      }
    } else if (r.computed + s.n >= r.prompt_len) {
      jobs.push_back({r.sampler.get(), logits_data + (row++) * vocab, r.gen.top_logprobs});
    }
  }
  const std::vector<SampleResult> samples = SampleAll(jobs, vocab);
  std::vector<float> scored(scored_rows.size());
  LogSoftmaxAtRows(logits_data, vocab, scored_rows.data(), scored_targets.data(),
                   static_cast<int64_t>(scored.size()), scored.data());
  size_t next_sample = 0, next_scored = 0;
  row = 0;
  StepCounts counts;
  for (const Slot& s : batch.slots) {
    Request& r = *s.r;
    if (s.n == 0) continue;
    r.computed += s.n;
    if (r.use_prefix_cache) CommitTokens(r, s.n);
    kv_.FreeOutOfWindow(r.id);
    if (r.kind == Request::Kind::kScore) {
      EngineEvent e;
      e.request_id = r.id;
      std::vector<float> lps(s.n);
      for (int64_t j = 0; j < s.n; ++j, ++row) {
        const int32_t target = r.unfed[j + 1];
        r.totals.bytes_scored += static_cast<int64_t>(tokenizer_->TokenBytes(target).size());
        const float lp = scored[next_scored++];
        lps[j] = lp;
        r.totals.total_nll -= lp;
        ++r.totals.tokens;
        if (r.score.per_token_logprobs) e.token_logprobs.push_back(lp);
      }
      if (r.use_prefix_cache) RecordScores(r, s.n, lps);
      r.unfed.erase(r.unfed.begin(), r.unfed.begin() + s.n);
      counts.scored += s.n;
      r.totals.bytes = r.bytes_fed;
      e.score = r.totals;
      r.sent_first = true;
      r.sink(std::move(e));
      continue;
    }
    if (r.computed - s.n < r.prompt_len) counts.prompt_tokens += std::min(s.n, r.prompt_len - (r.computed - s.n));
    if (r.computed < r.prompt_len) continue;  // mid-prompt chunk: nothing to sample yet
    const float* row_logits = logits_data + (row++) * vocab;
    ++counts.generated;
    EmitGenerated(r, samples[next_sample++], row_logits);
  }
  return counts;
}

void Engine::CommitTokens(Request& r, int64_t n) {
  // Positions computed - n .. computed - 1 were written in every layer by this step's forward;
  // hash them before FreeOutOfWindow releases blocks that would otherwise be lost to the cache.
  std::vector<int32_t> ids;
  if (r.kind == Request::Kind::kGenerate) {
    ids.assign(r.tokens.begin() + (r.computed - n), r.tokens.begin() + r.computed);
  } else {
    ids.assign(r.unfed.begin(), r.unfed.begin() + n);
  }
  const absl::Status s = kv_.CommitTokens(r.id, ids);
  // Cannot fail for a sequence whose positions were just appended; if it ever does, the request
  // goes on without caching (its output does not depend on it).
  if (!s.ok()) r.use_prefix_cache = false;
}

void Engine::EmitGenerated(Request& r, const SampleResult& sample, const float* logits) {
  const int32_t token = sample.token;
  ++r.generated;
  r.tokens.push_back(token);
  const bool eos = !r.gen.ignore_eos && model_->config().is_eos(token);
  EngineEvent e;
  e.request_id = r.id;
  e.token_ids.push_back(token);
  if (r.gen.logprobs || r.gen.top_logprobs > 0) e.logprobs.push_back(sample);
  if (!eos) e.text = r.stop->Push(r.detok->Push(token));
  FinishReason reason = FinishReason::kNone;
  if (r.stop->matched()) {
    reason = FinishReason::kStop;
  } else if (eos) {
    reason = FinishReason::kEos;
  } else if (r.generated >= r.gen.max_tokens) {
    reason = FinishReason::kLength;
  }
  if (reason != FinishReason::kNone && reason != FinishReason::kStop) {
    // Release what the detokenizer and the stop matcher still hold.
    e.text += r.stop->Push(r.detok->Flush());
    if (r.stop->matched()) reason = FinishReason::kStop;
    e.text += r.stop->Flush();
  }
  const absl::Time now = absl::Now();
  if (!r.sent_first) {
    r.sent_first = true;
    e.timings.first_token_seconds = absl::ToDoubleSeconds(now - r.arrival);
  }
  if (reason == FinishReason::kNone) {
    r.sink(std::move(e));
    return;
  }
  // The last event carries the final text too.
  kv_.Release(r.id);
  e.finished = true;
  e.finish_reason = reason;
  e.matched_stop = r.stop->matched() ? r.stop->matched_stop() : "";
  e.prompt_tokens = r.prompt_len;
  e.completion_tokens = r.generated;
  e.timings.queue_seconds = absl::ToDoubleSeconds(r.admitted - r.arrival);
  e.timings.total_seconds = absl::ToDoubleSeconds(now - r.arrival);
  r.sink(std::move(e));
  r.sink = nullptr;
  absl::MutexLock lock(&mu_);
  live_ids_.erase(r.id);
}

}  // namespace mswa
