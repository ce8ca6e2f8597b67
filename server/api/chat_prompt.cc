#include "server/api/chat_prompt.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace mswa {
namespace {

// tokenizer_config.json writes a special token as a string or as {"content": ..., ...}.
std::string TokenString(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return "";
}

}  // namespace

absl::StatusOr<ChatPrompt> ChatPrompt::Load(const std::string& model_dir) {
  ChatPrompt prompt;
  absl::StatusOr<ChatTemplate> tmpl = LoadChatTemplate(model_dir);
  if (absl::IsNotFound(tmpl.status())) return prompt;
  if (!tmpl.ok()) return tmpl.status();
  prompt.template_ = std::move(tmpl).value();
  const std::string path = model_dir + "/tokenizer_config.json";
  std::ifstream in(path, std::ios::binary);
  if (in.good()) {
    std::stringstream ss;
    ss << in.rdbuf();
    const nlohmann::json config = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
    }
    if (config.is_object()) {
      prompt.bos_token = TokenString(config, "bos_token");
      prompt.eos_token = TokenString(config, "eos_token");
    }
  }
  return prompt;
}

absl::StatusOr<ChatPromptText> ChatPrompt::Render(const nlohmann::ordered_json& messages) const {
  ChatPromptText out;
  if (!template_.has_value()) {
    absl::StatusOr<std::string> text =
        PlainChatPrompt(nlohmann::json::parse(messages.dump()), /*add_generation_prompt=*/true);
    if (!text.ok()) return text.status();
    out.text = std::move(text).value();
    out.add_bos = true;
    return out;
  }
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = messages;
  context["add_generation_prompt"] = true;
  context["bos_token"] = bos_token;
  context["eos_token"] = eos_token;
  absl::StatusOr<std::string> text = template_->Render(context);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("messages: the model's chat template refused them: ",
                                                   text.status().message()));
  }
  out.text = std::move(text).value();
  return out;
}

}  // namespace mswa
