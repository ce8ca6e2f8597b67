// Token sampling for one generating request: repetition penalty, temperature, top-k, top-p,
// min-p, a seeded counter-based RNG and raw top-N logprobs.
//
// Pipeline (the HF / vLLM order), over logits l[0..vocab):
//   1. repetition penalty (CTRL): for every id seen in the prompt or output so far,
//      l' = l > 0 ? l / rp : l * rp in float (l' = l for unseen ids; overflow clamps to -FLT_MAX)
//   2. temperature: z = l' / T; w = exp(z - max z) in double, so the most likely token has w = 1
//   3. order the tokens by (z desc, id asc) -- the same as (probability desc, id asc), but
//      without the ties that exp() underflow would create; every filter keeps a prefix of it:
//      top-k: the first k;
//      top-p: the shortest prefix whose mass reaches top_p of the mass left by top-k
//             (a token is kept when the mass strictly before it is < top_p);
//      min-p: tokens with p >= min_p * p_max, i.e. w >= min_p;
//      the first token always survives.
//   4. renormalize over the kept prefix and pick by inverse CDF with one uniform u in [0, 1):
//      the first token whose cumulative weight exceeds u * (kept weight).
// Worked example: l = {2, 1, 0, -inf}, T = 1, top_p = 0.8:
//   p = {0.665, 0.245, 0.090, 0}; masses before each: {0, 0.665, 0.910} -> keeps ids {0, 1};
//   renormalized {0.731, 0.269}; u = 0.75 -> cumulative {0.731, 1.0} -> id 1.
//
// Determinism: draw i of a request is a pure function of (seed, i) (splitmix64 over a counter),
// so the same seed and the same logits give the same tokens on every platform, whatever else is
// batched. Every Sample call consumes exactly one draw, greedy ones included.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace mswa {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy (argmax, ties -> lowest id)
  int32_t top_k = 0;                // 0 = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1]; 0 = off; drops p < min_p * p_max
  float repetition_penalty = 1.0f;  // > 0; 1 = off; see step 1 above
  uint64_t seed = 0;

  // InvalidArgument naming the first bad field: temperature negative or not finite, top_k < 0,
  // top_p outside (0, 1], min_p outside [0, 1], repetition_penalty not finite or <= 0.
  absl::Status Validate() const;
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct SampleResult {
  int32_t token;
  // log-softmax of the RAW logits (no penalty, no temperature, no filter) at `token`, in nats.
  float logprob;
  // The top_n most likely tokens under the raw distribution, most likely first, ties by lower id.
  std::vector<TokenLogprob> top;
};

// Per-request sampling state: the request's RNG position and the ids it has seen (prompt and
// output, for the repetition penalty). One per request; not thread-safe (the engine thread owns
// it).
//
// Params should have passed Validate(). An invalid field is treated as off (an invalid
// temperature as greedy) rather than trusted, so a bug upstream cannot crash the engine.
class Sampler {
 public:
  // Ids in `prompt_tokens` outside [0, vocab) of a later Sample call are ignored there.
  Sampler(const SamplingParams& params, const std::vector<int32_t>& prompt_tokens);

  // Samples from logits[0..vocab) (not modified, not retained), records the token as seen and
  // consumes one RNG draw. top_n is clamped to [0, vocab].
  //
  // -inf is a valid logit (an impossible token; it is never sampled). When the distribution is
  // undefined -- any NaN or +inf logit, every logit -inf, or vocab <= 0 -- the result is
  // token 0 with logprob -inf and an empty `top`, so callers can detect it (a sampled token's
  // logprob is otherwise finite for any logits within +-1e38). It still consumes a draw and
  // records token 0.
  //
  // Cost, vocab V: two O(V) passes and V exp() for the raw logprobs (shared with greedy when
  // there is no penalty); O(V log top_n) for `top`; with a penalty, a V-float copy. Then
  // greedy: one O(V) pass; top_k = k: O(V) nth_element + O(k log k) + k exp(); otherwise V
  // exp() (none at T = 1 without penalty: the raw sum is reused) and a lazy sort that stops
  // where the cumulative mass reaches u or the top-p/min-p cut: a handful of tokens when
  // peaked, O(V log V) at worst (flat).
  SampleResult Sample(const float* logits, int32_t vocab, int32_t top_n);

 private:
  // 8 bytes so that the partial sorts over the vocabulary move little memory.
  struct Candidate {
    float v;  // penalized logit; the order (v desc, id asc) is the order (z desc, id asc)
    int32_t id;
  };

  void SyncSeen(int32_t vocab);
  void Record(int32_t token);
  // `logits` itself without a penalty, else a penalized copy (valid until the next call): a
  // memcpy plus O(distinct seen ids), so later passes need no per-token branch.
  const float* PenalizedLogits(const float* logits, int32_t vocab);
  // `raw_sum`: sum of exp(l - max l) over the raw logits (kernels/logit_stats.h: fp32 terms).
  int32_t Draw(const float* penalized, int32_t vocab, double raw_sum, double u);

  SamplingParams params_;
  bool penalize_;
  uint64_t step_ = 0;
  // Every id seen, prompt first (kept only when penalizing). `seen_` is its membership mask over
  // [0, vocab) and `seen_ids_` its distinct in-range ids; both are rebuilt if vocab changes.
  std::vector<int32_t> history_;
  std::vector<uint8_t> seen_;
  std::vector<int32_t> seen_ids_;
  std::vector<float> penalized_;
  // Reused across calls to avoid V-sized allocations per token.
  std::vector<Candidate> candidates_;
  std::vector<double> weights_;  // exp(z - max z) of the sorted candidate prefix
};

// Draw `step` (0-based) of the stream for `seed`: uniform in [0, 1), 53 random bits. Pure; it is
// the u of step 4 above, exposed so tests and tools can reproduce a Sampler's choices.
// One Sample call of a step: a request's sampler and its row of logits.
struct SampleJob {
  Sampler* sampler;
  const float* logits;  // [vocab]
  int32_t top_n;
};
// Runs every job's Sample and returns the results in job order. Jobs run in parallel on the
// calling thread's OpenMP threads when there are several: at batch 32 on a 49,152-token
// vocabulary, sampling one row after another took 3% of a step while the model's other threads
// waited. Each job's sampler must appear once (a sampler is not safe to share between threads);
// the results are those of calling the jobs one by one, since a draw depends only on its own
// sampler's seed and step.
std::vector<SampleResult> SampleAll(const std::vector<SampleJob>& jobs, int32_t vocab);

double UniformDraw(uint64_t seed, uint64_t step);

// log-softmax of logits[0..vocab) at `token`, computed in double (stable for any finite logits,
// e.g. 1e4). NaN when undefined: token outside [0, vocab), a NaN or +inf logit, or all -inf.
// -inf for a -inf logit when some other logit is finite. Thread-safe (pure).
float LogSoftmaxAt(const float* logits, int32_t vocab, int32_t token);
// LogSoftmaxAt for n rows at once: out[i] = LogSoftmaxAt(logits + rows[i] * vocab, vocab,
// targets[i]), the rows split among the calling thread's OpenMP threads. A scoring step's
// tokens each scan the whole vocabulary, one row after another on one thread until this.
void LogSoftmaxAtRows(const float* logits, int32_t vocab, const int64_t* rows, const int32_t* targets,
                      int64_t n, float* out);

}  // namespace mswa
