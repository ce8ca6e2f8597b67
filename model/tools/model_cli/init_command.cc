// mswa-model init: a model directory (config.json + model.safetensors) with deterministic random
// weights, the bytes tokenizer and a window schedule.
#include <cstdint>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "model/format/weights.h"
#include "model/status_macros.h"
#include "model/tools/model_cli/model_cli.h"

namespace mswa::model_cli {

absl::Status Init(const Args& a) {
  ModelConfig c;
  ASSIGN_OR_RETURN(c.hidden_size, IntOpt(a, "hidden", 256));
  ASSIGN_OR_RETURN(c.num_hidden_layers, IntOpt(a, "layers", 6));
  ASSIGN_OR_RETURN(c.num_attention_heads, IntOpt(a, "heads", 8));
  ASSIGN_OR_RETURN(c.num_key_value_heads, IntOpt(a, "kv-heads", c.num_attention_heads));
  if (c.num_attention_heads <= 0) return absl::InvalidArgumentError("--heads must be > 0");
  ASSIGN_OR_RETURN(c.head_dim, IntOpt(a, "head-dim", c.hidden_size / c.num_attention_heads));
  // SwiGLU convention: ~8/3 of hidden, rounded up to a multiple of 64.
  ASSIGN_OR_RETURN(c.intermediate_size,
                   IntOpt(a, "intermediate", (8 * c.hidden_size / 3 + 63) / 64 * 64));
  ASSIGN_OR_RETURN(c.vocab_size, IntOpt(a, "vocab", 258));
  ASSIGN_OR_RETURN(c.rope_theta, DoubleOpt(a, "rope-theta", 10000.0));
  c.tie_word_embeddings = a.switches.count("untied") == 0;
  c.tokenizer.type = TokenizerSpec::Type::kBytes;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  if (c.vocab_size < 258) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vocab must be >= 258 for the bytes tokenizer (256 bytes + BOS + EOS), got ",
        c.vocab_size));
  }
  ASSIGN_OR_RETURN(WindowScheduleOptions s, ScheduleOptions(a, c, 256));
  ASSIGN_OR_RETURN(c.attention_windows, MakeWindowSchedule(s));
  RETURN_IF_ERROR(c.Validate());
  ASSIGN_OR_RETURN(int64_t seed, IntOpt(a, "seed", 0));
  ASSIGN_OR_RETURN(DType dtype, DTypeOpt(a, "dtype", DType::kF32));
  ModelWeights w = RandomModelWeights(c, static_cast<uint64_t>(seed));
  RETURN_IF_ERROR(WriteModelDirectory(a.dir, c, w, dtype));
  std::cout << "wrote " << a.dir << " (" << s.preset << ", " << w.num_parameters()
            << " parameters)\n";
  return absl::OkStatus();
}

}  // namespace mswa::model_cli
