#include "model/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/logit_stats.h"

namespace mswa {
namespace {

constexpr float kInfF = std::numeric_limits<float>::infinity();

// ThreadSanitizer does not see libgomp's hand-offs between a region's threads and reports
// races on the region's shared data; its builds run the batched calls below on one thread, as
// the CPU model does its steps there.
#if defined(__SANITIZE_THREAD__)
constexpr bool kParallel = false;
#else
constexpr bool kParallel = true;
#endif

// splitmix64's output function: a bijection, so distinct counters give distinct outputs.
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct RawStats {
  bool degenerate;  // NaN or +inf present, or every logit -inf
  int32_t argmax;   // lowest id among the maxima
  double max;
  double sum;       // sum of exp(l - max) (kernels/logit_stats.h: fp32 terms, fp64 sum)
  double log_norm;  // log(sum)
};

RawStats ComputeRawStats(const float* logits, int32_t vocab) {
  const LogitStats scan = ScanLogits(logits, vocab);
  if (!scan.finite) return RawStats{true, 0, 0, 0, 0};
  return RawStats{false, scan.argmax, scan.max, scan.sum_exp, std::log(scan.sum_exp)};
}

// Lowest id among the maxima of a finite-or-(-inf) array.
int32_t Argmax(const float* values, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (values[i] > values[best]) best = i;  // strict: ties keep the lower id
  }
  return best;
}

float RawLogprob(const float* logits, int32_t id, const RawStats& raw) {
  return static_cast<float>(static_cast<double>(logits[id]) - raw.max - raw.log_norm);
}

// Raw top-n by (logit desc, id asc) with a bounded heap whose front is the worst kept entry.
std::vector<TokenLogprob> TopN(const float* logits, int32_t vocab, int32_t top_n,
                               const RawStats& raw) {
  const int32_t n = std::clamp(top_n, 0, vocab);
  std::vector<TokenLogprob> heap;
  if (n == 0) return heap;
  heap.reserve(n);
  // Holds raw logits in `logprob` until the end; a strict total order since ids are unique.
  const auto better = [](const TokenLogprob& a, const TokenLogprob& b) {
    return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
  };
  for (int32_t i = 0; i < vocab; ++i) {
    const TokenLogprob cand{i, logits[i]};
    if (static_cast<int32_t>(heap.size()) < n) {
      heap.push_back(cand);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(cand, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = cand;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  for (TokenLogprob& t : heap) t.logprob = RawLogprob(logits, t.token, raw);
  return heap;
}

// Keeps [0, sorted()) of `c` sorted by rank, with every later element ranked after all of them,
// extending on demand: nth_element on the unsorted rest, then a sort of the new chunk. Chunks
// double, so reaching position m costs O(V log(m / 64) + m log m) rather than a full sort.
template <typename T, typename Less>
class PrefixSorter {
 public:
  PrefixSorter(std::vector<T>& c, Less less) : c_(c), less_(less) {}

  void EnsureSorted(size_t count) {
    if (count <= sorted_) return;
    const size_t target = std::min(c_.size(), std::max({count, 2 * sorted_, kMinChunk}));
    const auto first = c_.begin() + sorted_;
    const auto mid = c_.begin() + target;
    if (mid != c_.end()) std::nth_element(first, mid, c_.end(), less_);
    std::sort(first, mid, less_);
    sorted_ = target;
  }

 private:
  static constexpr size_t kMinChunk = 64;
  std::vector<T>& c_;
  Less less_;
  size_t sorted_ = 0;
};

}  // namespace

// Computed from the counter alone (no carried state) so it depends on nothing but (seed, step).
// The seed is mixed first so that nearby seeds, or seeds differing by a multiple of the
// increment, do not give shifted copies of one stream.
double UniformDraw(uint64_t seed, uint64_t step) {
  const uint64_t bits = Mix64(Mix64(seed) + (step + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

absl::Status SamplingParams::Validate() const {
  // Written as !(valid) so NaN fails every check.
  if (!(std::isfinite(temperature) && temperature >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be finite and >= 0 (0 = greedy), got ", temperature));
  }
  if (top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0 (0 = off), got ", top_k));
  }
  if (!(top_p > 0 && top_p <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_p must be in (0, 1] (1 = off), got ", top_p));
  }
  if (!(min_p >= 0 && min_p <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_p must be in [0, 1] (0 = off), got ", min_p));
  }
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "repetition_penalty must be finite and > 0 (1 = off), got ", repetition_penalty));
  }
  return absl::OkStatus();
}

float LogSoftmaxAt(const float* logits, int32_t vocab, int32_t token) {
  const RawStats raw = ComputeRawStats(logits, vocab);
  if (raw.degenerate || token < 0 || token >= vocab) {
    return std::numeric_limits<float>::quiet_NaN();
  }
  return RawLogprob(logits, token, raw);
}

void LogSoftmaxAtRows(const float* logits, int32_t vocab, const int64_t* rows, const int32_t* targets,
                      int64_t n, float* out) {
#pragma omp parallel for schedule(dynamic, 4) if (kParallel && n > 1)
  for (int64_t i = 0; i < n; ++i) out[i] = LogSoftmaxAt(logits + rows[i] * vocab, vocab, targets[i]);
}

Sampler::Sampler(const SamplingParams& params, const std::vector<int32_t>& prompt_tokens)
    : params_(params),
      penalize_(std::isfinite(params.repetition_penalty) && params.repetition_penalty > 0 &&
                params.repetition_penalty != 1.0f) {
  if (penalize_) history_ = prompt_tokens;
}

void Sampler::SyncSeen(int32_t vocab) {
  if (static_cast<int32_t>(seen_.size()) == vocab) return;
  seen_.assign(vocab, 0);
  seen_ids_.clear();
  for (const int32_t id : history_) {
    if (id >= 0 && id < vocab && !seen_[id]) {
      seen_[id] = 1;
      seen_ids_.push_back(id);
    }
  }
}

void Sampler::Record(int32_t token) {
  if (!penalize_) return;
  history_.push_back(token);
  if (token >= 0 && token < static_cast<int32_t>(seen_.size()) && !seen_[token]) {
    seen_[token] = 1;
    seen_ids_.push_back(token);
  }
}

const float* Sampler::PenalizedLogits(const float* logits, int32_t vocab) {
  if (!penalize_) return logits;
  SyncSeen(vocab);
  penalized_.assign(logits, logits + vocab);
  const float rp = params_.repetition_penalty;
  for (const int32_t id : seen_ids_) {
    float& l = penalized_[id];
    const float v = l > 0 ? l / rp : l * rp;
    // l * rp can overflow to -inf, which would turn a possible token into an impossible one.
    l = v == -kInfF && l != -kInfF ? std::numeric_limits<float>::lowest() : v;
  }
  return penalized_.data();
}

int32_t Sampler::Draw(const float* penalized, int32_t vocab, double raw_sum, double u) {
  // Candidates in id order: every token with a penalized logit above -inf. Non-empty, because
  // the raw logits have a finite entry and the penalty keeps it finite.
  std::vector<Candidate>& c = candidates_;
  c.resize(vocab);
  size_t n = 0;
  float v_max = -kInfF;
  for (int32_t i = 0; i < vocab; ++i) {
    const float v = penalized[i];
    if (v == -kInfF) continue;
    c[n++] = {v, i};
    v_max = std::max(v_max, v);
  }
  c.resize(n);

  // z = v / T; the weight exp(z - z_max) is 1 for the most likely token.
  const double temperature = params_.temperature;
  const auto weight = [&](float v) {
    return std::exp((static_cast<double>(v) - static_cast<double>(v_max)) / temperature);
  };
  const auto ranks_before = [](const Candidate& a, const Candidate& b) {
    return a.v > b.v || (a.v == b.v && a.id < b.id);
  };
  PrefixSorter<Candidate, decltype(ranks_before)> sorter(c, ranks_before);
  std::vector<double>& w = weights_;
  w.clear();
  // Weight of the j-th most likely candidate, sorting and computing on demand.
  const auto sorted_weight = [&](size_t j) {
    sorter.EnsureSorted(j + 1);
    while (w.size() <= j) w.push_back(weight(c[w.size()].v));
    return w[j];
  };

  // top-k, and the mass the top-p fraction refers to. Without top-k the mass is summed in id
  // order, before any reordering, so it does not depend on the sort implementation; at T = 1
  // without a penalty those are the raw terms, whose sum ScanLogits has computed already (with
  // fp32 terms: within 2 ulp of these, which the inverse CDF below tolerates).
  const bool top_k_on = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n;
  const size_t limit = top_k_on ? static_cast<size_t>(params_.top_k) : n;
  double total = 0;
  if (top_k_on) {
    for (size_t j = 0; j < limit; ++j) total += sorted_weight(j);
  } else if (temperature == 1.0 && !penalize_) {
    total = raw_sum;
  } else {
    // The same terms, vectorized: -inf entries (no candidate) add exp(-87)-sized nothing.
    // (1 / T capped at the largest float: a tiny T must not make the maximum's term 0 * inf.)
    const double scale = std::min(1.0 / temperature, static_cast<double>(std::numeric_limits<float>::max()));
    total = SumExpShifted(penalized, vocab, v_max, static_cast<float>(scale));
  }

  size_t keep = limit;
  if (params_.top_p < 1.0f) {  // false for NaN: off
    const double threshold = static_cast<double>(params_.top_p) * total;
    double before = 0;
    for (size_t j = 0; j < keep; ++j) {
      if (before >= threshold) {
        keep = j;
        break;
      }
      before += sorted_weight(j);
    }
  }
  if (params_.min_p > 0.0f) {  // the weight is p / p_max
    for (size_t j = 0; j < keep; ++j) {
      if (sorted_weight(j) < static_cast<double>(params_.min_p)) {
        keep = j;
        break;
      }
    }
  }
  keep = std::max<size_t>(keep, 1);  // only reachable with invalid params (top_p <= 0, min_p > 1)

  double kept_total = total;
  if (keep != limit) {
    kept_total = 0;
    for (size_t j = 0; j < keep; ++j) kept_total += sorted_weight(j);
  }
  // Inverse CDF. `total` may have been summed in another order than this walk, so rounding can
  // leave `acc` just short of the target at the end: then the last token with weight wins.
  const double target = u * kept_total;
  double acc = 0;
  size_t chosen = 0;
  for (size_t j = 0; j < keep; ++j) {
    const double wj = sorted_weight(j);
    if (wj > 0) chosen = j;
    acc += wj;
    if (acc > target) break;
  }
  return c[chosen].id;
}

SampleResult Sampler::Sample(const float* logits, int32_t vocab, int32_t top_n) {
  const double u = UniformDraw(params_.seed, step_++);
  const RawStats raw = ComputeRawStats(logits, vocab);
  if (raw.degenerate) {
    Record(0);
    return {0, -kInfF, {}};
  }
  SampleResult result;
  // !(T > 0) also sends an invalid (NaN, negative) temperature to greedy.
  if (params_.temperature > 0) {
    result.token = Draw(PenalizedLogits(logits, vocab), vocab, raw.sum, u);
  } else if (penalize_) {
    result.token = Argmax(PenalizedLogits(logits, vocab), vocab);
  } else {
    result.token = raw.argmax;
  }
  result.logprob = RawLogprob(logits, result.token, raw);
  result.top = TopN(logits, vocab, top_n, raw);
  Record(result.token);
  return result;
}

std::vector<SampleResult> SampleAll(const std::vector<SampleJob>& jobs, int32_t vocab) {
  const int64_t n = static_cast<int64_t>(jobs.size());
  std::vector<SampleResult> results(jobs.size());
#pragma omp parallel for schedule(dynamic, 1) if (kParallel && n > 1)
  for (int64_t i = 0; i < n; ++i) results[i] = jobs[i].sampler->Sample(jobs[i].logits, vocab, jobs[i].top_n);
  return results;
}

}  // namespace mswa
