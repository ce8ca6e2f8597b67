// The engine thread's state of one request and of one step's flat batch. Shared by the
// engine's translation units (engine.cc, batch.cc, outputs.cc); engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "model/runtime/paged_model.h"
#include "model/runtime/sampler.h"
#include "model/runtime/stop_matcher.h"
#include "model/tokenizer/streaming_detokenizer.h"
#include "server/engine.h"

namespace mswa {

// The engine thread's view of one request.
struct Engine::Request {
  enum class Kind { kGenerate, kScore };
  Kind kind = Kind::kGenerate;
  int64_t id = 0;
  EventSink sink;
  absl::Time arrival;
  absl::Time admitted;
  bool sent_first = false;
  bool cancelled = false;
  int64_t kv_max_tokens = -1;  // reservation bound handed to the KV manager
  int64_t computed = 0;        // tokens in the KV cache (positions 0 .. computed-1)
  // Prefix caching on for this request: a Generate resumes after a cached prefix, and every
  // request commits its tokens so later ones can hit its blocks.
  bool use_prefix_cache = false;

  // Generate: prompt then sampled tokens; tokens[computed..] still to be fed.
  GenerateOptions gen;
  std::vector<int32_t> tokens;
  int64_t prompt_len = 0;
  int64_t generated = 0;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamingDetokenizer> detok;
  std::unique_ptr<StopMatcher> stop;

  // Score: unfed holds positions computed .. known-1; a position is fed only once the token
  // after it (its target) is known, so every fed row is scored.
  ScoreOptions score;
  std::deque<int32_t> unfed;
  int64_t bytes_fed = 0;
  bool input_closed = false;
  ScoreTotals totals;
  // Prefix caching of scores (score_prefix.cc): the chain hash of the last full block fed, the
  // token ids and log-probabilities of the positions fed after it, the log-probability of the
  // next position's token (computed by the last row fed; NaN before any), and whether the
  // cache was looked up (once, before the first position is fed).
  uint64_t lp_chain = 0;
  std::vector<int32_t> lp_ids;
  std::vector<float> lp_vals;
  float next_lp = std::numeric_limits<float>::quiet_NaN();
  bool prefix_looked_up = false;

  // Tokens that can go into this step.
  int64_t Feedable() const {
    if (kind == Kind::kGenerate) return static_cast<int64_t>(tokens.size()) - computed;
    return unfed.empty() ? 0 : static_cast<int64_t>(unfed.size()) - 1;
  }
  bool decoding() const { return kind == Kind::kGenerate && computed >= prompt_len; }
};

// One request's part of a step: `n` tokens from row `begin` of the flat batch, block-table row
// `seq`.
struct Engine::Slot {
  Request* r = nullptr;
  int64_t begin = 0;
  int64_t n = 0;
  int32_t seq = 0;
};

// The flat batch of one step and where each request's rows are.
struct Engine::StepBatch {
  std::vector<Slot> slots;
  std::vector<int32_t> tokens, seq_index, tables;
  std::vector<int64_t> positions, logits_rows;

  StepInput Input() const {
    StepInput in;
    in.num_tokens = static_cast<int64_t>(tokens.size());
    in.tokens = tokens.data();
    in.positions = positions.data();
    in.seq_index = seq_index.data();
    in.block_tables = tables.data();
    in.num_logits = static_cast<int64_t>(logits_rows.size());
    in.logits_rows = logits_rows.data();
    return in;
  }
};

}  // namespace mswa
