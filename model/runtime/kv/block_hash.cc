#include "model/runtime/kv/block_hash.h"

#include <algorithm>

namespace mswa {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// splitmix64's finalizer: a bijection with full avalanche.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t BlockHash(uint64_t parent, absl::Span<const int32_t> tokens, uint64_t seed) {
  // The seed and parent enter through separate mixes so (parent, seed) pairs do not cancel.
  uint64_t h = Mix(Mix(seed + kGolden) ^ parent);
  for (int32_t token : tokens) {
    h = Mix(h + kGolden + static_cast<uint32_t>(token));
  }
  h = Mix(h ^ static_cast<uint64_t>(tokens.size()));
  return h == 0 ? 1 : h;
}

std::vector<uint64_t> ChainHashes(absl::Span<const int32_t> tokens, int64_t block_size,
                                  uint64_t seed, int64_t max_blocks) {
  const int64_t n =
      std::max<int64_t>(0, std::min<int64_t>(max_blocks, tokens.size() / block_size));
  std::vector<uint64_t> chain;
  chain.reserve(n);
  uint64_t parent = kRootHash;
  for (int64_t b = 0; b < n; ++b) {
    parent = BlockHash(parent, tokens.subspan(b * block_size, block_size), seed);
    chain.push_back(parent);
  }
  return chain;
}

}  // namespace mswa
