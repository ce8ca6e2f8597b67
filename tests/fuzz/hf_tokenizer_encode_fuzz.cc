// HfTokenizer::Encode on arbitrary bytes with two fixed tokenizers cut from real ones
// (tests/fuzz/data): byte-level BPE in Llama 3's layout (regex Split, ByteLevel, no
// normalizer) and BPE with byte fallback in Gemma 3's (" " -> "▁", ByteFallback decoder).
// Checked: ids are in [0, vocab_size) and Decode(Encode(x)) == x, which both tokenizers promise
// for any bytes (valid UTF-8 or not) except where x holds a special token's literal (decoded as
// "") or, for the byte-fallback one, a literal "▁" (decoded as a space).
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/hf_tokenizer.h"

namespace {

std::unique_ptr<mswa::HfTokenizer> LoadOrDie(const std::string& name) {
  const std::string path = std::string(MSWA_SOURCE_DIR) + "/tests/fuzz/data/" + name;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::unique_ptr<mswa::HfTokenizer>> tokenizer =
      mswa::HfTokenizer::FromJson(text.str(), "", path);
  if (!tokenizer.ok()) {
    fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
    std::abort();
  }
  return std::move(*tokenizer);
}

// True when `text` contains the literal of a special added token: PreTokens gives each added
// token matched in the text as its content.
bool HasSpecialLiteral(const mswa::HfTokenizer& tokenizer, std::string_view text) {
  for (const std::string& piece : tokenizer.PreTokens(text)) {
    const int32_t id = tokenizer.TokenId(piece);
    if (id >= 0 && tokenizer.IsSpecial(id)) return true;
  }
  return false;
}

void Check(const mswa::HfTokenizer& tokenizer, std::string_view text, bool byte_fallback) {
  const std::vector<int32_t> ids = tokenizer.Encode(text);
  for (int32_t id : ids) {
    if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
  }
  const std::string decoded = tokenizer.Decode(ids);
  if (decoded == text) return;
  if (byte_fallback && text.find("\xE2\x96\x81") != std::string_view::npos) return;
  if (HasSpecialLiteral(tokenizer, text)) return;
  fprintf(stderr, "round trip differs: %zu bytes in, %zu out (%s)\n", text.size(), decoded.size(),
          tokenizer.kind().c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<mswa::HfTokenizer> byte_level =
      LoadOrDie("byte_level_tokenizer.json");
  static const std::unique_ptr<mswa::HfTokenizer> byte_fallback =
      LoadOrDie("byte_fallback_tokenizer.json");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Check(*byte_level, text, false);
  Check(*byte_fallback, text, true);
  return 0;
}
