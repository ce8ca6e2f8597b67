#include "model/tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/ast.h"
#include "model/tokenizer/jinja/evaluator.h"
#include "model/tokenizer/jinja/json_io.h"
#include "model/tokenizer/jinja/parser.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path.string()));
  return buffer.str();
}

absl::StatusOr<ChatTemplate> ParseFrom(const std::string& source, const std::string& where) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source);
  if (!t.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", t.status().message()));
  }
  return t;
}

// The "chat_template" field of a JSON config: a string, or a list of {name, template}.
// Unset when absent or null; NotFound for a list without a "default" entry.
absl::StatusOr<std::optional<std::string>> TemplateField(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), " is not a JSON object"));
  }
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::vector<std::string> names;
    for (const nlohmann::json& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
          !entry.contains("template") || !entry["template"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.string(),
                         ": chat_template list entries must be {\"name\": str, \"template\": "
                         "str}"));
      }
      names.push_back(entry["name"].get<std::string>());
      if (names.back() == "default") return entry["template"].get<std::string>();
    }
    return absl::NotFoundError(absl::StrCat(
        path.string(),
        ": chat_template has no \"default\" entry (has: ", absl::StrJoin(names, ", "), ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path.string(), ": chat_template must be a string or a list"));
}

template <typename Json>
absl::StatusOr<std::string> RenderJson(const jinja::Template& tmpl, const Json& context,
                                       const ChatTemplate::Limits& limits) {
  if (!context.is_object()) {
    return absl::InvalidArgumentError("chat template context must be a JSON object");
  }
  ASSIGN_OR_RETURN(jinja::Value value, jinja::FromJson(context));
  const jinja::RenderLimits render_limits{limits.max_output_bytes, limits.max_steps,
                                          limits.max_call_depth};
  return jinja::RenderTemplate(tmpl, value, render_limits);
}

}  // namespace

ChatTemplate::ChatTemplate(std::shared_ptr<const jinja::Template> tmpl, std::string source)
    : tmpl_(std::move(tmpl)), source_(std::move(source)) {}

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Parse(source));
  return ChatTemplate(std::make_shared<const jinja::Template>(std::move(tmpl)),
                      std::string(source));
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& context) const {
  return Render(context, Limits());
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& context,
                                                 const Limits& limits) const {
  return RenderJson(*tmpl_, context, limits);
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  return Render(context, Limits());
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context,
                                                 const Limits& limits) const {
  return RenderJson(*tmpl_, context, limits);
}

absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  const std::filesystem::path jinja_file = dir / "chat_template.jinja";
  std::error_code ec;
  if (std::filesystem::exists(jinja_file, ec)) {
    ASSIGN_OR_RETURN(std::string source, ReadFile(jinja_file));
    return ParseFrom(source, jinja_file.string());
  }
  for (const char* name : {"tokenizer_config.json", "chat_template.json"}) {
    const std::filesystem::path path = dir / name;
    if (!std::filesystem::exists(path, ec)) continue;
    ASSIGN_OR_RETURN(std::optional<std::string> source, TemplateField(path));
    if (!source.has_value()) continue;
    return ParseFrom(*source, absl::StrCat(path.string(), " chat_template"));
  }
  return absl::NotFoundError(
      absl::StrCat(model_dir,
                   " has no chat template (no chat_template.jinja, and no chat_template in "
                   "tokenizer_config.json or chat_template.json)"));
}

absl::StatusOr<std::string> PlainChatPrompt(const nlohmann::json& messages,
                                            bool add_generation_prompt) {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages must be a list");
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "] must be an object with a string \"role\""));
    }
    std::string content;
    const auto it = m.find("content");
    if (it != m.end() && it->is_string()) {
      content = it->get<std::string>();
    } else if (it != m.end() && it->is_array()) {
      for (const nlohmann::json& part : *it) {
        if (part.is_object() && part.contains("text") && part["text"].is_string()) {
          content += part["text"].get<std::string>();
        }
      }
    } else if (it != m.end() && !it->is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].content must be a string, a list or null"));
    }
    absl::StrAppend(&prompt, m["role"].get<std::string>(), ": ", content, "\n");
  }
  if (add_generation_prompt) prompt += "assistant: ";
  return prompt;
}

}  // namespace mswa
