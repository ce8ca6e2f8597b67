// The flat batch of one engine step: every granted request's tokens, positions, block tables
// and the rows whose logits are needed.
#include "absl/strings/str_cat.h"
#include "server/engine/request_state.h"

namespace mswa {

void Engine::BuildBatch(StepBatch& batch) {
  const int64_t stride = model_->table_stride();
  batch.tables.assign(batch.slots.size() * stride, -1);
  for (size_t i = 0; i < batch.slots.size(); ++i) {
    Slot& s = batch.slots[i];
    Request& r = *s.r;
    s.begin = static_cast<int64_t>(batch.tokens.size());
    s.seq = static_cast<int32_t>(i);
    absl::Status appended = kv_.Append(r.id, s.n);
    if (!appended.ok()) {
      // Cannot happen for an admitted request (its blocks are reserved); if it ever does, the
      // request fails with the reason rather than taking the server down.
      Finish(r, FinishReason::kAborted,
             absl::InternalError(absl::StrCat("KV cache: ", appended.message())));
      s.n = 0;
      continue;
    }
    for (int64_t j = 0; j < s.n; ++j) {
      batch.tokens.push_back(r.kind == Request::Kind::kGenerate ? r.tokens[r.computed + j] : r.unfed[j]);
      batch.positions.push_back(r.computed + j);
      batch.seq_index.push_back(s.seq);
    }
    for (int g = 0; g < kv_.num_groups(); ++g) {
      const int32_t* ring = kv_.BlockTable(r.id, g);
      std::copy_n(ring, kv_.ring_size(g), batch.tables.begin() + i * stride + model_->table_offsets()[g]);
    }
    if (r.kind == Request::Kind::kScore) {
      for (int64_t j = 0; j < s.n; ++j) batch.logits_rows.push_back(s.begin + j);
    } else if (r.computed + s.n >= r.prompt_len) {
      batch.logits_rows.push_back(s.begin + s.n - 1);  // the prompt is complete: sample
    }
  }
}

}  // namespace mswa
