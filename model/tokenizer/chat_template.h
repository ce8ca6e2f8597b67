// A model's Jinja2 chat template, rendered the way Hugging Face transformers renders it
// (apply_chat_template): a Jinja2 ImmutableSandboxedEnvironment with trim_blocks=True,
// lstrip_blocks=True and the loopcontrols extension, plus the globals raise_exception and
// strftime_now and transformers' tojson (json.dumps with ensure_ascii=False). Checked against
// python3-jinja2 on real templates (tests/model/chat_template_test.cc).
//
// The interpreter (model/tokenizer/jinja/) implements the Jinja subset chat templates use; see
// jinja/parser.h for the statements and expressions, jinja/builtins.h for the filters, tests,
// globals and methods, jinja/evaluator.h for scoping and Undefined. Templates using anything
// else fail to parse, naming the tag, filter or test.
//
// Known differences from python3-jinja2, none of which real chat templates depend on:
//   - ints are 64-bit (overflow is an error) and there are no complex numbers;
//   - select / reject / map / items / reverse return lists where Jinja returns generators
//     (so `x|items` on a non-mapping fails even when never iterated, and printing such a
//     result without `|list` shows the list, not "<generator object ...>");
//   - slicing a literal that is not a sequence (`(1)[1:]`) fails, where Jinja's constant
//     folding quietly gives Undefined;
//   - case mappings are one-to-one ("ß".upper() stays "ß"; Python gives "SS");
//   - no Markup: `escape` returns a plain string and `safe` does nothing;
//   - `loop.changed`, recursive loops, {% call %}, caller / varargs / kwargs in macros,
//     *args / **kwargs, include / import / extends, and the str methods not listed in
//     jinja/builtins.h are not supported (an error names them).
//
// Thread-safety: a ChatTemplate is immutable; Render may be called from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace mswa {

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Bounds on one render, so no template or context can exhaust memory, time or the stack.
  // (Lists are also capped at jinja::kMaxListItems where a template can grow them, and nesting
  // at the depths in jinja/parser.h and jinja/evaluator.h.)
  struct Limits {
    // Bytes written to the prompt; text captured by {% set %} blocks, macros and filter blocks
    // counts again when printed. Also the largest string any operation may build.
    size_t max_output_bytes = 16 << 20;
    // Work: 1 step per loop iteration, call and filter, plus 1 per list item and per 64 string
    // bytes each operation reads or writes (jinja::Budget). 10M steps: well under a second;
    // rendering Qwen 3's template over 2,000 messages (a 4.8 MB prompt) takes ~0.6M.
    int64_t max_steps = 10'000'000;
    // Nested macro calls (recursion).
    int max_call_depth = 32;
  };

  // Parses a template. InvalidArgument "line N: ..." for syntax errors, unknown tags, filters
  // or tests, and templates nested too deeply (jinja/parser.h).
  static absl::StatusOr<ChatTemplate> Parse(std::string_view source);

  // Renders with `context` as the template's variables: typically
  //   {"messages": [{"role": "user", "content": "..."}, ...], "add_generation_prompt": true,
  //    "bos_token": "<s>", "eos_token": "</s>", "tools": [...], ...}.
  // Objects keep the key order of the JSON value: nlohmann::json sorts keys, so pass an
  // ordered_json where the order matters (it shows in `tojson` and `items()`).
  // InvalidArgument when `context` is not an object, when the template calls
  // raise_exception(message) (the status message is that message), and for errors while
  // rendering ("line N: 'x' is undefined", type errors, a limit exceeded).
  absl::StatusOr<std::string> Render(const nlohmann::json& context) const;
  absl::StatusOr<std::string> Render(const nlohmann::json& context, const Limits& limits) const;
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context) const;
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context,
                                     const Limits& limits) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate(std::shared_ptr<const jinja::Template> tmpl, std::string source);

  std::shared_ptr<const jinja::Template> tmpl_;
  std::string source_;
};

// The chat template of a Hugging Face model directory, parsed. Looked up in this order (as
// transformers does):
//   1. chat_template.jinja;
//   2. tokenizer_config.json "chat_template": a string, or a list of {"name", "template"}
//      whose "default" entry is used;
//   3. chat_template.json "chat_template" (processor configs).
// NotFound when none of them has a template (e.g. a null "chat_template", or a list without
// "default"); InvalidArgument, naming the file, when a file is unreadable or malformed or the
// template does not parse.
absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir);

// The prompt for models without a chat template: one "<role>: <content>\n" line per message
// (content as is; a list of parts contributes its "text" parts, concatenated), then
// "assistant: " when add_generation_prompt. For example
//   [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], true
//   -> "system: Be brief.\nuser: Hi\nassistant: "
// InvalidArgument when `messages` is not a list of objects with a string "role" and a string,
// list or null "content".
absl::StatusOr<std::string> PlainChatPrompt(const nlohmann::json& messages,
                                            bool add_generation_prompt);

}  // namespace mswa
