// HfTokenizer::FromJson on arbitrary tokenizer.json text; bytes after the first NUL, when there is
// one, are the tokenizer_config.json. Checked: loading never crashes, and a tokenizer that loads
// encodes the input text into ids inside [0, vocab_size) whose TokenBytes and Decode do not
// crash either.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view tokenizer_json = input.substr(0, nul);
  const std::string_view config_json =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  absl::StatusOr<std::unique_ptr<mswa::HfTokenizer>> tokenizer =
      mswa::HfTokenizer::FromJson(tokenizer_json, config_json, "fuzz");
  if (!tokenizer.ok()) return 0;

  const mswa::HfTokenizer& t = **tokenizer;
  const int32_t vocab = t.vocab_size();
  if (t.bos_id() < -1 || t.bos_id() >= vocab || t.eos_id() < -1 || t.eos_id() >= vocab) {
    std::abort();
  }
  // The tokenizer's own text is a varied input for it: vocabulary entries, added tokens, JSON.
  const std::string_view text = tokenizer_json.substr(0, 512);
  const std::vector<int32_t> ids = t.Encode(text);
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) std::abort();
    (void)t.TokenBytes(id);
    (void)t.IsSpecial(id);
  }
  (void)t.Decode(ids);
  (void)t.PreTokens(text);
  (void)t.TokenBytes(-1);
  (void)t.TokenBytes(vocab);
  return 0;
}
