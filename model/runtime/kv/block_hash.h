// Content hashes of full KV blocks, for prefix caching.
//
// Logical block b of a token sequence holds the ids of positions [b*B, (b+1)*B). Its CHAIN hash
// covers everything the block's K/V depends on: the block's own B token ids, every earlier
// token (through the parent's chain hash) and the model (through `seed`, so two models or two
// weight versions never share entries):
//
//   chain[0] = BlockHash(kRootHash, tokens[0, B),    seed)
//   chain[b] = BlockHash(chain[b-1], tokens[bB, bB+B), seed)
//
// Example, B = 2, tokens 5 6 7 8 9: chain[0] hashes (root, 5 6), chain[1] hashes (chain[0], 7 8);
// position 4 (token 9) is in a partial block and has no hash.
//
// The mixing is splitmix64's finalizer applied after absorbing each token (a bijection of the
// 64-bit state, so every bit of every token reaches every bit of the result). It is not
// cryptographic: with n distinct blocks cached the chance that any two collide is about
// n^2 / 2^65 (1e-9 at n = 2e5); a collision would let a prompt reuse the wrong K/V. It is
// deterministic across processes and machines (no per-process randomness, unlike absl::Hash),
// so hashes are reproducible in tests and logs. Never 0: 0 means "no hash" in BlockPool.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace mswa {

inline constexpr uint64_t kRootHash = 0;  // parent of logical block 0

// The chain hash of one full block given its parent's chain hash. tokens.size() is B.
uint64_t BlockHash(uint64_t parent, absl::Span<const int32_t> tokens, uint64_t seed);

// chain[0 .. n) for the first n = min(max_blocks, tokens.size() / block_size) full blocks of
// `tokens`. block_size >= 1.
std::vector<uint64_t> ChainHashes(absl::Span<const int32_t> tokens, int64_t block_size,
                                  uint64_t seed, int64_t max_blocks);

}  // namespace mswa
