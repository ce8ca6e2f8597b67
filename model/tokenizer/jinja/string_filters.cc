// String filters (filters.h): trim, the case and conversion filters, wordcount, replace,
// center, indent, format, tojson, after jinja2/filters.py.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/filter_args.h"
#include "model/tokenizer/jinja/filters.h"
#include "model/tokenizer/jinja/json_io.h"
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Value> TrimFilter(const Value& input, const Args& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("trim", args, {"chars"}));
  std::optional<std::string> chars;
  if (a[0].has_value() && !a[0]->is_none()) chars = ToStr(*a[0]);
  return Value::String(PyStrip(ToStr(input), chars, true, true));
}

absl::StatusOr<Value> StringConversionFilter(std::string_view name, const Value& input,
                                             const Args& args, Budget& budget) {
  RETURN_IF_ERROR(BindArgs(name, args, {}).status());
  const std::string s = ToStr(input);
  if (name == "upper") return StringResult(PyUpper(s), budget);
  if (name == "lower") return StringResult(PyLower(s), budget);
  if (name == "title") return StringResult(JinjaTitle(s), budget);
  if (name == "capitalize") return StringResult(PyCapitalize(s), budget);
  if (name == "escape" || name == "e") return StringResult(Escape(s), budget);
  if (name == "wordcount") {
    // len(re.findall(r"\w+", s)): runs of letters, digits and '_'.
    int64_t words = 0;
    bool in_word = false;
    for (const std::string& unit : Units(s)) {
      const bool word = unit == "_" || PyIsAlnum(unit);
      if (word && !in_word) ++words;
      in_word = word;
    }
    return Value::Int(words);
  }
  if (name == "string" && input.is_string()) return input;
  return StringResult(s, budget);
}

absl::StatusOr<Value> ReplaceFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("replace", args, {"old", "new", "count"}));
  if (!a[0].has_value() || !a[1].has_value()) return FilterError("replace", "needs old and new");
  ASSIGN_OR_RETURN(int64_t count, IntArg("replace", a[2], -1));
  return StringResult(PyReplace(ToStr(input), ToStr(*a[0]), ToStr(*a[1]), count), budget);
}

absl::StatusOr<Value> CenterFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("center", args, {"width"}));
  ASSIGN_OR_RETURN(int64_t width, IntArg("center", a[0], 80));
  const std::string s = ToStr(input);
  const int64_t len = static_cast<int64_t>(UnitCount(s));
  if (width <= len) return Value::String(s);
  RETURN_IF_ERROR(budget.CheckSize(static_cast<size_t>(width)));
  const int64_t pad = width - len;
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value::String(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(pad - left), ' '));
}

absl::StatusOr<Value> IndentFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("indent", args, {"width", "first", "blank"}));
  std::string indention(4, ' ');
  if (a[0].has_value()) {
    if (a[0]->is_string()) {
      indention = a[0]->AsString();
    } else {
      ASSIGN_OR_RETURN(int64_t width, IntArg("indent", a[0], 4));
      indention = std::string(static_cast<size_t>(std::clamp<int64_t>(width, 0, 10000)), ' ');
    }
  }
  if (!input.is_string()) {
    if (input.is_undefined()) return absl::InvalidArgumentError(input.UndefinedHint());
    return FilterError("indent", absl::StrCat("expects a string, not ", TypeName(input)));
  }
  const std::string s = input.AsString() + "\n";  // Jinja's quirk for splitlines
  const std::vector<std::string> lines = PySplitLines(s, false);
  std::string out;
  if (BoolArg(a[2], false)) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + indention;
      out += lines[i];
    }
  } else if (!lines.empty()) {
    out = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      out += "\n";
      if (!lines[i].empty()) out += indention;
      out += lines[i];
      RETURN_IF_ERROR(budget.CheckSize(out.size()));
    }
  }
  if (BoolArg(a[1], false)) out = indention + out;
  RETURN_IF_ERROR(budget.CheckSize(out.size()));
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FormatFilter(const Value& input, const Args& args, Budget& budget) {
  const Value format_args = Value::Tuple(args.positional);
  if (!args.keyword.empty()) {
    if (!args.positional.empty()) {
      return FilterError("format",
                         "can't handle positional and keyword arguments at the same time");
    }
    DictData mapping;
    for (const auto& [key, value] : args.keyword) mapping.Set(Value::String(key), value);
    ASSIGN_OR_RETURN(std::string s, PercentFormat(ToStr(input), Value::Dict(std::move(mapping))));
    return StringResult(std::move(s), budget);
  }
  ASSIGN_OR_RETURN(std::string s, PercentFormat(ToStr(input), format_args));
  return StringResult(std::move(s), budget);
}

absl::StatusOr<Value> TojsonFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a,
                   BindArgs("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions options;
  options.ensure_ascii = BoolArg(a[0], false);
  if (a[1].has_value() && !a[1]->is_none()) {
    if (a[1]->is_string()) {
      options.indent = a[1]->AsString();
    } else if (a[1]->kind() == Value::Kind::kInt) {
      options.indent =
          std::string(static_cast<size_t>(std::clamp<int64_t>(a[1]->AsInt(), 0, 1000)), ' ');
    } else {
      return FilterError("tojson", "indent must be an int or a str");
    }
  }
  if (a[2].has_value() && !a[2]->is_none()) {
    if (!a[2]->is_list() || a[2]->AsList().items.size() != 2 ||
        !a[2]->AsList().items[0].is_string() || !a[2]->AsList().items[1].is_string()) {
      return FilterError("tojson", "separators must be a pair of strings");
    }
    options.item_separator = a[2]->AsList().items[0].AsString();
    options.key_separator = a[2]->AsList().items[1].AsString();
  }
  options.sort_keys = BoolArg(a[3], false);
  ASSIGN_OR_RETURN(std::string text, JsonDumps(input, options, budget.max_string_bytes()));
  RETURN_IF_ERROR(budget.ChargeBytes(text.size()));
  return Value::String(std::move(text));
}

}  // namespace mswa::jinja
