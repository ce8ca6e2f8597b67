// The table of family mappers.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/format/families/family.h"

namespace mswa {

absl::Status MapMswa(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapLlama(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapMistral(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapQwen2(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapQwen3(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapPhi3(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapGemma2(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapGemma3TextFamily(const json& cfg, const std::string& source, ModelConfig& c);
absl::Status MapGemma3Multimodal(const json& cfg, const std::string& source, ModelConfig& c);

namespace {

const std::vector<Family>& Families() {
  static const std::vector<Family> families = {
      {"mswa", MapMswa},       {"llama", MapLlama},
      {"mistral", MapMistral}, {"qwen2", MapQwen2},
      {"qwen3", MapQwen3},     {"phi3", MapPhi3},
      {"gemma2", MapGemma2},   {"gemma3_text", MapGemma3TextFamily},
      {"gemma3", MapGemma3Multimodal},
  };
  return families;
}

}  // namespace

const Family* FindFamily(std::string_view model_type) {
  for (const Family& f : Families()) {
    if (f.model_type == model_type) return &f;
  }
  return nullptr;
}

std::string SupportedFamilies() {
  return absl::StrJoin(Families(), ", ", [](std::string* out, const Family& f) {
    absl::StrAppend(out, "\"", std::string(f.model_type), "\"");
  });
}

}  // namespace mswa
