// mswa-model logits: the dense reference forward's logits for a token sequence, written as
// safetensors.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/format/weights.h"
#include "model/runtime/reference_forward.h"
#include "model/status_macros.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tools/model_cli/model_cli.h"

namespace mswa::model_cli {

absl::Status Logits(const Args& a) {
  ASSIGN_OR_RETURN(ModelConfig c, LoadModelConfig(a.dir));
  ASSIGN_OR_RETURN(ModelWeights w, LoadModelWeights(a.dir, c));
  std::vector<int32_t> tokens;
  if (a.switches.count("bos")) {
    if (c.bos_token_id < 0) return absl::InvalidArgumentError("the model has no BOS token");
    tokens.push_back(static_cast<int32_t>(c.bos_token_id));
  }
  if (a.values.count("text")) {
    ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(c.tokenizer, a.dir));
    for (int32_t t : tokenizer->Encode(a.values.at("text"))) tokens.push_back(t);
  } else if (a.values.count("tokens")) {
    for (absl::string_view part : absl::StrSplit(a.values.at("tokens"), ',')) {
      int32_t t;
      if (!absl::SimpleAtoi(part, &t) || t < 0 || t >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--tokens: \"", part, "\" is not a token id in [0, ", c.vocab_size, ")"));
      }
      tokens.push_back(t);
    }
  } else {
    return absl::InvalidArgumentError("logits needs --text or --tokens");
  }
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens to run");
  if (!a.values.count("out")) return absl::InvalidArgumentError("logits needs --out FILE");
  ASSIGN_OR_RETURN(int64_t start_pos, IntOpt(a, "start-pos", 0));
  if (start_pos < 0) return absl::InvalidArgumentError("--start-pos must be >= 0");

  at::Tensor logits = ReferenceForward(w, c, tokens, start_pos).to(at::kFloat).contiguous();
  TensorToWrite t{"logits", DType::kF32, logits.sizes().vec(), logits.data_ptr(),
                  static_cast<size_t>(logits.numel()) * 4};
  std::string token_list;
  for (size_t i = 0; i < tokens.size(); ++i) absl::StrAppend(&token_list, i ? "," : "", tokens[i]);
  return WriteSafetensors(a.values.at("out"), {t},
                          {{"tokens", token_list}, {"start_pos", absl::StrCat(start_pos)}});
}

}  // namespace mswa::model_cli
