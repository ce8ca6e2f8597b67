// Brute-force oracles for the KV-cache tests, independent of the code under test.
#pragma once

#include <cstdint>
#include <set>

#include "kernels/window.h"

namespace mswa {

// Logical blocks of a sequence of n appended positions that some query at position >= n can
// still see. A position p < n is seen (at best) by the query at n; one not yet written (p >= n,
// in the last, partial block) by its own query.
inline std::set<int64_t> NeededBlocksOracle(int64_t n, int64_t window, int64_t block_size) {
  std::set<int64_t> needed;
  for (int64_t b = 0; b * block_size < n; ++b) {
    for (int64_t p = b * block_size; p < (b + 1) * block_size; ++p) {
      if (p >= n || InWindow(n, p, window)) needed.insert(b);
    }
  }
  return needed;
}

}  // namespace mswa
