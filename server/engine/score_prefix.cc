// Prefix caching for scoring requests: resuming a score after a cached prefix needs the prefix's
// K/V (the KV manager's blocks) and its tokens' log-probabilities (ScorePrefixCache), both keyed
// by the blocks' chain hashes.
#include <algorithm>
#include <vector>

#include "model/runtime/kv/block_hash.h"
#include "server/engine/request_state.h"

namespace mswa {

void Engine::ResumeScoreFromCache(Request& r) {
  r.prefix_looked_up = true;
  if (r.computed != 0) return;
  const int64_t B = kv_.block_size();
  const std::vector<int32_t> tokens(r.unfed.begin(), r.unfed.end());
  const int64_t known = static_cast<int64_t>(tokens.size());
  const std::vector<uint64_t> chain =
      ChainHashes(tokens, B, kv_.prefix_cache_seed(), known / B);
  // Resuming at P scores tokens 1 .. P from the cache: the entries of blocks 0 .. P / B (token P
  // opens block P / B), and P <= known - 1 so that position P, fed next, has its target.
  std::vector<const std::vector<float>*> scores;
  for (uint64_t hash : chain) {
    const std::vector<float>* entry = score_cache_.Get(hash);
    if (entry == nullptr) break;
    scores.push_back(entry);
  }
  const int64_t bound =
      std::min<int64_t>((static_cast<int64_t>(scores.size()) - 1) * B, known - 1);
  const int64_t cached =
      bound < B ? 0 : kv_.LongestCachedPrefix(absl::MakeConstSpan(tokens).subspan(0, bound + 1));
  // With nothing cached this still counts the lookup (queried tokens) and changes nothing else.
  if (!kv_.AdoptCachedPrefix(r.id, tokens, cached).ok() || cached == 0) return;

  EngineEvent e;
  e.request_id = r.id;
  for (int64_t q = 1; q <= cached; ++q) {
    const float lp = (*scores[q / B])[q % B];
    r.totals.bytes_scored += static_cast<int64_t>(tokenizer_->TokenBytes(tokens[q]).size());
    r.totals.total_nll -= lp;
    ++r.totals.tokens;
    if (r.score.per_token_logprobs) e.token_logprobs.push_back(lp);
  }
  r.computed = cached;
  r.lp_chain = chain[cached / B - 1];
  r.lp_ids.clear();
  r.lp_vals.clear();
  r.next_lp = (*scores[cached / B])[0];
  r.unfed.erase(r.unfed.begin(), r.unfed.begin() + cached);
  r.totals.bytes = r.bytes_fed;
  e.score = r.totals;
  r.sent_first = true;
  r.sink(std::move(e));
}

void Engine::RecordScores(Request& r, int64_t n, const std::vector<float>& logprobs) {
  // Positions computed - n .. computed - 1 were fed with tokens unfed[0 .. n); the token at a
  // position got its log-probability from the row before it (the previous step's last row for
  // the first, none for position 0).
  const int64_t B = kv_.block_size();
  for (int64_t j = 0; j < n; ++j) {
    r.lp_ids.push_back(r.unfed[j]);
    r.lp_vals.push_back(j == 0 ? r.next_lp : logprobs[j - 1]);
    if (static_cast<int64_t>(r.lp_ids.size()) < B) continue;
    r.lp_chain = BlockHash(r.lp_chain, r.lp_ids, kv_.prefix_cache_seed());
    score_cache_.Put(r.lp_chain, r.lp_vals);
    r.lp_ids.clear();
    r.lp_vals.clear();
  }
  r.next_lp = logprobs[n - 1];
}

}  // namespace mswa
