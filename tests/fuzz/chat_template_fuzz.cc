// ChatTemplate::Parse and Render on arbitrary template source, with a fixed conversation as the
// context. Checked: neither crashes, hangs or overflows the stack whatever the template (the
// interpreter's own bounds: output bytes, steps, call and nesting depth, list sizes); a render
// that succeeds stays within the output bound, and rendering twice gives the same text (no
// state leaks from one render into the next).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "model/tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;  // real templates are a few kB; longer inputs only slow the search
  const std::string source(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<mswa::ChatTemplate> parsed = mswa::ChatTemplate::Parse(source);
  if (!parsed.ok()) return 0;

  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are brief."},
      {"role": "user", "content": "Hi <b>there</b> \u00e9"},
      {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
      {"role": "user", "content": "Windows?"}
    ],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
    "tools": null
  })");
  mswa::ChatTemplate::Limits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_steps = 200000;
  const absl::StatusOr<std::string> first = parsed->Render(context, limits);
  const absl::StatusOr<std::string> second = parsed->Render(context, limits);
  if (first.ok() != second.ok()) std::abort();
  if (!first.ok()) return 0;
  if (first->size() > limits.max_output_bytes) std::abort();
  if (*first != *second) std::abort();
  return 0;
}
