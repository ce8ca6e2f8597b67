// The prompt of a chat request: the model's own chat template (model/tokenizer/chat_template.h)
// rendered as Hugging Face's apply_chat_template does, with add_generation_prompt=true and the
// bos_token / eos_token strings of tokenizer_config.json. The rendered text already holds every
// special token the template wants (Llama 3's "<|begin_of_text|>", Gemma's "<bos>"), so it is
// tokenized without adding BOS, as transformers tokenizes it (add_special_tokens=False).
//
// Models without a chat template (the byte-level models mswa-serve ships) get PlainChatPrompt's
// "role: content" lines ending in "assistant: ", after BOS like any text prompt.
//
// Immutable after Load; Render may be called from any number of threads.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "model/tokenizer/chat_template.h"

namespace mswa {

struct ChatPromptText {
  std::string text;
  bool add_bos = false;  // true for the fallback prompt only
};

class ChatPrompt {
 public:
  // The template of `model_dir` (LoadChatTemplate's lookup order) and the BOS/EOS strings of its
  // tokenizer_config.json ("" when absent). No template: the fallback. InvalidArgument naming the
  // file when a template is there but does not load.
  static absl::StatusOr<ChatPrompt> Load(const std::string& model_dir);
  // The fallback only (tests, and models without a directory).
  static ChatPrompt Plain() { return ChatPrompt(); }

  // `messages`: a list of {"role", "content"} objects whose content is a string or a list of
  // {"type": "text", "text"} parts (the caller has checked the shapes). InvalidArgument for what
  // the template refuses (its raise_exception message, e.g. "Conversation roles must
  // alternate user/assistant/user/assistant/...").
  absl::StatusOr<ChatPromptText> Render(const nlohmann::ordered_json& messages) const;

  bool has_template() const { return template_.has_value(); }

 private:
  ChatPrompt() = default;
  std::optional<ChatTemplate> template_;
  std::string bos_token;
  std::string eos_token;
};

}  // namespace mswa
