// Shared by the chat-template tests: rendering a snippet with our interpreter, and with
// python3-jinja2 itself through chat_template_reference.py (configured as transformers configures
// Jinja). Needs MSWA_PYTHON and MSWA_SOURCE_DIR defined by the test target.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/chat_template.h"
#include "nlohmann/json.hpp"

namespace mswa::testing {

// Parses and renders `source` with our interpreter; the parse or render error otherwise.
template <typename Json>
absl::StatusOr<std::string> Render(std::string_view source, const Json& context,
                                   const ChatTemplate::Limits& limits = {}) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source);
  if (!t.ok()) return t.status();
  return t->Render(context, limits);
}

// True when MSWA_PYTHON can import jinja2 (checked once per process).
bool HaveJinja2();

// A fresh path in the test's temporary directory, unique within the process; nothing is created.
std::string ScratchFile(const std::string& stem);

struct Case {
  std::string label;
  std::string source;
  nlohmann::ordered_json context;  // the key order python3-jinja2 sees too
};

struct Rendered {
  bool ok = false;
  std::string text;  // the output, or the error
};

// Renders every case with python3-jinja2 in one process, one result per case in order. Empty
// (and a test failure) when the script does not run.
std::vector<Rendered> RenderWithJinja2(const std::vector<Case>& cases);

// Ours and python3-jinja2's renders of every case must be identical, or both must fail.
void ExpectSameAsJinja2(const std::vector<Case>& cases);

}  // namespace mswa::testing
