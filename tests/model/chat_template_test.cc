// The chat-template interpreter (model/tokenizer/chat_template.h, model/tokenizer/jinja/): parse
// errors, Undefined, limits, template loading and the plain prompt. The snippets of every
// statement, filter and test are in chat_template_snippets_test.cc, the comparisons of whole
// templates with python3-jinja2 in chat_template_reference_test.cc.
#include "model/tokenizer/chat_template.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/model/chat_template_reference.h"

namespace mswa {
namespace {

using json = nlohmann::json;
using testing::Render;
using testing::ScratchFile;

// ---- errors --------------------------------------------------------------------------------

TEST(ChatTemplateParse, SyntaxErrorsNameTheLine) {
  const struct {
    const char* source;
    const char* message;  // a prefix of the status message
  } kCases[] = {
      {"{% if x %}\nno end", "line 2: unexpected end of template: the 'if' block opened on line 1"},
      {"a\n{% for x in y %}\n{% endif %}",
       "line 3: unexpected 'endif': the 'for' block opened on line 2 is still open"},
      {"line\n\n{{ x + }}", "line 3: unexpected end of print statement"},
      {"{{ x\n", "line 1: unexpected end of template: '{{' is not closed"},
      {"\n{# open comment", "line 2: comment '{#' is not closed"},
      {"{% raw %}\n{{ x }}", "line 1: '{% raw %}' is not closed"},
      {"\n\n{{ 'abc }}", "line 3: string literal is not closed"},
      {"{{ x|nosuchfilter }}", "line 1: no filter named 'nosuchfilter'"},
      {"\n{% if x is nosuchtest %}{% endif %}", "line 2: no test named 'nosuchtest'"},
      {"{% include 'other.jinja' %}", "line 1: the 'include' tag is not supported"},
      {"{% frobnicate %}", "line 1: unknown tag 'frobnicate'"},
      {"{% break %}", "line 1: 'break' outside a for loop"},
      {"{{ (1 }}", "line 1: unexpected '}', expected ')'"},
      {"{{ (1 %}", "line 1: unexpected '}', expected ')'"},
      {"{{ f(1,, 2) }}", "line 1: unexpected ','"},
      {"{{ 1 ) }}", "line 1: unexpected ')'"},
      {"{{ [1 }", "line 1: unexpected '}', expected ']'"},
      {"{{ 99999999999999999999 }}", "line 1: integer literal 99999999999999999999 does not fit"},
      {"{{ x ! y }}", "line 1: unexpected character '!'"},
      {"{% set %}", "line 1: expected a name"},
      {"{% macro f(a=1, b) %}{% endmacro %}", "line 1: non-default argument follows"},
      {"{% for x in y recursive %}{% endfor %}", "line 1: recursive for loops are not supported"},
      {"{{ f(*args) }}", "line 1: *args and **kwargs"},
      // Jinja parses these, then fails to compile them (a slice in a tuple is not Python).
      {"{{ x[1, :4] }}", "line 1: a slice cannot be one of several subscripts"},
      {"\n{{ x[::2, 0] }}", "line 2: a slice cannot be one of several subscripts"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.source);
    const absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(c.source);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(t.status().message().substr(0, std::string_view(c.message).size()), c.message)
        << t.status();
  }
}

TEST(ChatTemplateRender, ErrorsNameWhatWasUndefined) {
  const struct {
    const char* source;
    const char* context;
    const char* message;
  } kCases[] = {
      {"{{ user.name }}", "{}", "line 1: 'user' is undefined"},
      {"\n{{ messages[0].role }}", R"({"messages": []})", "line 2: list object has no element 0"},
      {"{{ m.content.strip() }}", R"({"m": {}})",
       "line 1: 'dict object' has no attribute 'content'"},
      {"{{ greet() }}", "{}", "line 1: 'greet' is undefined"},
      {"{{ 'a' + x }}", "{}", "line 1: 'x' is undefined"},
      {"{% for a in 3 %}{% endfor %}", "{}", "line 1: 'int' object is not iterable"},
      {"{{ 'a' < 1 }}", "{}", "line 1: '<' not supported between instances of 'str' and 'int'"},
      {"{{ [1].append(2) }}", "{}",
       "line 1: access to attribute 'append' of 'list' object is unsafe."},
      {"{{ 'x'.zfill(3) }}", "{}",
       "line 1: the str method 'zfill' is not supported in chat templates"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.source);
    const absl::StatusOr<std::string> out = Render(c.source, json::parse(c.context));
    ASSERT_FALSE(out.ok()) << *out;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(out.status().message(), c.message);
  }
}

TEST(ChatTemplateRender, RaiseExceptionKeepsItsMessage) {
  const absl::StatusOr<std::string> out = Render(
      "{% if messages|length > 1 %}{{ raise_exception('Only one message, got ' ~ "
      "messages|length) }}{% endif %}",
      json::parse(R"({"messages": [1, 2, 3]})"));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "Only one message, got 3");
}

TEST(ChatTemplateRender, ContextMustBeAnObject) {
  const absl::StatusOr<std::string> out = Render("x", json::array());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplateRender, OrderedJsonKeepsKeyOrder) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse("{{ d|tojson }} {{ d.keys()|list }}");
  ASSERT_TRUE(t.ok()) << t.status();
  const std::string text = R"({"d": {"z": 1, "a": {"y": 2, "b": 3}}})";
  EXPECT_EQ(*t->Render(nlohmann::ordered_json::parse(text)),
            R"({"z": 1, "a": {"y": 2, "b": 3}} ['z', 'a'])");
  EXPECT_EQ(*t->Render(json::parse(text)), R"({"a": {"b": 3, "y": 2}, "z": 1} ['a', 'z'])");
}

TEST(ChatTemplateRender, StrftimeNowFormatsLocalTime) {
  const absl::StatusOr<std::string> year = Render("{{ strftime_now('%Y') }}", json::object());
  ASSERT_TRUE(year.ok()) << year.status();
  EXPECT_EQ(year->size(), 4u);
  EXPECT_GE(std::atoi(year->c_str()), 2024);
}

TEST(ChatTemplateRender, ConcurrentRendersAreIndependent) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m %}"
      "{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int k = 1; k <= 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 200; ++i) {
        const absl::StatusOr<std::string> out = t->Render(json{{"messages", {k, k, k}}});
        if (!out.ok() || *out != std::to_string(3 * k)) ++wrong;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// ---- limits --------------------------------------------------------------------------------

TEST(ChatTemplateLimits, OutputSize) {
  ChatTemplate::Limits limits;
  limits.max_output_bytes = 1000;
  const absl::StatusOr<std::string> out =
      Render("{% for i in range(200) %}0123456789{% endfor %}", json::object(), limits);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("limit of 1000 bytes"), std::string::npos) << out.status();
  // Strings built without being printed count too.
  EXPECT_FALSE(Render("{% set s = 'x' * 100000000000 %}", json::object()).ok());
  EXPECT_FALSE(Render("{% set s = ['x'] * 100000000000 %}", json::object()).ok());
  EXPECT_TRUE(
      Render("{% for i in range(50) %}0123456789{% endfor %}", json::object(), limits).ok());
}

TEST(ChatTemplateLimits, Steps) {
  ChatTemplate::Limits limits;
  limits.max_steps = 10000;
  const absl::StatusOr<std::string> out =
      Render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
             json::object(), limits);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("limit of 10000 steps"), std::string::npos) << out.status();
}

TEST(ChatTemplateLimits, MacroRecursion) {
  const absl::StatusOr<std::string> out =
      Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("nested deeper than"), std::string::npos) << out.status();
  // Fan-out recursion is cut by the step budget.
  ChatTemplate::Limits limits;
  limits.max_steps = 100000;
  EXPECT_FALSE(Render("{% macro f(n) %}{% if n < 30 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}"
                      "{% endmacro %}{{ f(0) }}",
                      json::object(), limits)
                   .ok());
}

TEST(ChatTemplateLimits, NestingDepth) {
  const std::string parens = std::string(1000, '(') + "1" + std::string(1000, ')');
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse("{{ " + parens + " }}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("nested deeper than"), std::string::npos) << t.status();

  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  t = ChatTemplate::Parse(chain + " }}");
  EXPECT_FALSE(t.ok());
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 100000; ++i) filters += "|upper";
  EXPECT_FALSE(ChatTemplate::Parse(filters + " }}").ok());
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_FALSE(ChatTemplate::Parse(nots + "1 }}").ok());

  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  t = ChatTemplate::Parse(blocks);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("blocks nested deeper than"), std::string::npos);

  // A moderately deep template is fine.
  EXPECT_EQ(
      *Render("{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}", json::object()),
      "1");
}

TEST(ChatTemplateLimits, NamespaceChains) {
  // Namespaces are mutable, so they can form chains of any length and cycles; printing one
  // stops at a repeat or at the depth limit, and neither printing nor releasing a chain of
  // 100,000 links recurses once per link (which would overflow the stack).
  ChatTemplate::Limits limits;
  limits.max_steps = 10000000;
  const std::string chain =
      "{% set ns = namespace(next=none) %}{% for i in range(100000) %}"
      "{% set ns.next = namespace(prev=[ns.next], i=i) %}{% endfor %}";
  absl::StatusOr<std::string> out =
      Render(chain + "{{ ns.next.i }} {{ ns.next.prev[0].i }}{% set ns.next = none %}", json::object(), limits);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "99999 99998");
  out = Render(chain + "{{ ns }}", json::object(), limits);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->rfind("<Namespace {'next': <Namespace {'prev': [<Namespace {'prev': [", 0), 0u) << out->substr(0, 200);
  EXPECT_TRUE(out->find("[...]") != std::string::npos || out->find("{...}") != std::string::npos);
  EXPECT_LT(out->size(), size_t{100000});

  out = Render("{% set a = namespace() %}{% set b = namespace(a=[a]) %}{% set a.b = (b, 1) %}{{ a }}",
               json::object());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<Namespace {'b': (<Namespace {'a': [<Namespace {...}>]}>, 1)}>");
}

TEST(ChatTemplateLimits, ValueDepth) {
  // A value nested by a loop, deeper than anything can print or compare.
  const absl::StatusOr<std::string> out = Render(
      "{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}"
      "{% endfor %}{{ ns.v }}",
      json::object());
  EXPECT_FALSE(out.ok());
  json deep = json::array();
  for (int i = 0; i < 1000; ++i) deep = json::array({deep});
  EXPECT_FALSE(Render("{{ x|length }}", json{{"x", deep}}).ok());
}

// Random edits of real-world-like templates: every one parses or fails cleanly, and renders or
// fails cleanly.
TEST(ChatTemplateLimits, MutatedTemplatesNeverCrash) {
  const std::string base =
      "{%- set ns = namespace(n=0) -%}{% for m in messages if m.role != 'x' %}{% set ns.n = "
      "ns.n + 1 %}{{ '<|' ~ m['role'] ~ '|>' }}{{ m.content|trim|replace('a', 'b') }}{% if "
      "loop.last and add_generation_prompt %}{{ ([1, 2] + [3])[::-1]|tojson(indent=1) }}{% "
      "endif %}{% else %}{{ raise_exception('none') }}{% endfor %}{{ ns.n }}{# c #}{% raw %}r{% "
      "endraw %}{% macro f(a, b=2) %}{{ a * b }}{% endmacro %}{{ f(3) }}{{ {'k': none}.k is "
      "none }}";
  const json context = {{"messages", {{{"role", "user"}, {"content", "hi a"}}}},
                        {"add_generation_prompt", true}};
  ASSERT_TRUE(Render(base, context).ok()) << Render(base, context).status();
  const std::string alphabet = "{}%#-+()[]'\"|.~,:=*/ \n0123456789abcdefgiklmnorstuxy";
  std::mt19937 rng(12345);
  ChatTemplate::Limits limits;
  limits.max_steps = 100000;
  limits.max_output_bytes = 1 << 20;
  int rendered = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t pos = rng() % s.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          s.erase(pos, 1);
          break;
        case 1:
          s.insert(pos, 1, c);
          break;
        default:
          s[pos] = c;
      }
    }
    absl::StatusOr<std::string> out = Render(s, context, limits);
    if (out.ok()) ++rendered;
  }
  EXPECT_GT(rendered, 100);  // the mutations reach the evaluator too
}

// ---- loading -------------------------------------------------------------------------------

class LoadChatTemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ScratchFile("model");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_;
};

TEST_F(LoadChatTemplateTest, StringField) {
  Write("tokenizer_config.json", R"({"chat_template": "{{ messages|length }}"})");
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(dir_);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t->Render(json{{"messages", {1, 2}}}), "2");
}

TEST_F(LoadChatTemplateTest, NamedListUsesDefault) {
  Write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "tools"},
                              {"name": "default", "template": "default"}]})");
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(dir_);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->source(), "default");
}

TEST_F(LoadChatTemplateTest, JinjaFileWins) {
  Write("tokenizer_config.json", R"({"chat_template": "from config"})");
  Write("chat_template.jinja", "from file\n");
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(dir_);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t->Render(json::object()), "from file");
}

TEST_F(LoadChatTemplateTest, ProcessorChatTemplateJson) {
  Write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  Write("chat_template.json", R"({"chat_template": "processor"})");
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(dir_);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->source(), "processor");
}

TEST_F(LoadChatTemplateTest, NotFound) {
  EXPECT_TRUE(absl::IsNotFound(LoadChatTemplate(dir_).status()));
  Write("tokenizer_config.json", R"({"chat_template": null})");
  EXPECT_TRUE(absl::IsNotFound(LoadChatTemplate(dir_).status()));
  Write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  const absl::Status status = LoadChatTemplate(dir_).status();
  EXPECT_TRUE(absl::IsNotFound(status));
  EXPECT_NE(status.message().find("no \"default\" entry (has: rag)"), std::string::npos) << status;
}

TEST_F(LoadChatTemplateTest, MalformedFilesAreNamed) {
  Write("tokenizer_config.json", "{not json");
  absl::Status status = LoadChatTemplate(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("tokenizer_config.json is not a JSON object"), std::string::npos);
  Write("tokenizer_config.json", R"({"chat_template": "ok\n{% if %}"})");
  status = LoadChatTemplate(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("tokenizer_config.json chat_template: line 2: "),
            std::string::npos)
      << status;
  Write("tokenizer_config.json", R"({"chat_template": 3})");
  EXPECT_EQ(LoadChatTemplate(dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlainChatPrompt, RoleLinesThenAssistant) {
  const json messages = json::parse(R"([
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"},
                                   {"type": "text", "text": " there"}]},
      {"role": "assistant", "content": null}])");
  EXPECT_EQ(*PlainChatPrompt(messages, true),
            "system: Be brief.\nuser: Hi there\nassistant: \nassistant: ");
  EXPECT_EQ(*PlainChatPrompt(messages, false), "system: Be brief.\nuser: Hi there\nassistant: \n");
  EXPECT_EQ(*PlainChatPrompt(json::array(), true), "assistant: ");
  EXPECT_FALSE(PlainChatPrompt(json::object(), true).ok());
  EXPECT_FALSE(PlainChatPrompt(json::parse(R"([{"content": "no role"}])"), true).ok());
  EXPECT_FALSE(PlainChatPrompt(json::parse(R"([{"role": "user", "content": 5}])"), true).ok());
}

}  // namespace
}  // namespace mswa
