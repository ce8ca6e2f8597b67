// The one window-membership predicate of mswa-serve. The attention mask (reference forward,
// CPU and CUDA kernels) and KV-cache eviction all call it, so they cannot disagree.
//
// A window W is the number of keys a query sees INCLUDING ITSELF: the query at absolute position
// t attends to keys at positions p with  t - W < p <= t.  W == 0 means unbounded (causal).
//
//   W = 3, query at t = 10:  keys 8, 9, 10 are visible; 7 is not.
//   W = 1:                   a token sees only itself.
//
// FlashAttention/FlashInfer's `window_left` is W - 1 (keys strictly left of the query).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MSWA_HOST_DEVICE __host__ __device__
#else
#define MSWA_HOST_DEVICE
#endif

namespace mswa {

// True when the query at absolute position `q_pos` attends to the key at `k_pos` under `window`.
// Positions are absolute token indices (>= 0); window >= 0.
MSWA_HOST_DEVICE constexpr inline bool InWindow(int64_t q_pos, int64_t k_pos, int64_t window) {
  return k_pos <= q_pos && (window == 0 || q_pos - k_pos < window);
}

// The oldest absolute position still visible to a query at `q_pos` (0 when unbounded).
// Every key at a position < OldestVisible(q_pos, W) is outside the window of q_pos and of every
// later query, which is what makes evicting it safe.
MSWA_HOST_DEVICE constexpr inline int64_t OldestVisible(int64_t q_pos, int64_t window) {
  return (window == 0 || q_pos - window + 1 < 0) ? 0 : q_pos - window + 1;
}

}  // namespace mswa
