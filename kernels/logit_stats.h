// One row of logits summarized for log-softmax and sampling: whether it is usable, its maximum
// (and where), and the normalizer sum exp(l - max). Vectorized: a libm exp per vocabulary entry
// cost ~1.5 ms per token at Gemma's 262,144 entries, for every sampled and every scored token.
#pragma once

#include <cstdint>

namespace mswa {

struct LogitStats {
  // false when n <= 0, some entry is NaN or +inf, or every entry is -inf; nothing else is set.
  bool finite = false;
  int32_t argmax = 0;  // the lowest index among the maxima
  float max = 0.f;
  // sum over the row of exp(l - max): each term in fp32 within 2 ulp (terms below exp(-87),
  // -inf entries included, count as exp(-87) ~ 1.6e-38, nothing next to the maximum's 1),
  // summed in fp64 in a fixed order, so the same row always gives the same bits.
  double sum_exp = 0.0;
};

LogitStats ScanLogits(const float* logits, int32_t n);

// sum over i < n of exp((x[i] - shift) * scale), for x[i] <= shift (or -inf) and scale > 0 (a
// softmax's normalizer at temperature 1 / scale), with sum_exp's accuracy and order.
double SumExpShifted(const float* x, int32_t n, float shift, float scale);

}  // namespace mswa
