// Filters (builtins.h), after jinja2/filters.py.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/json_io.h"
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

constexpr std::string_view kFilters[] = {
    "abs",    "capitalize", "center",     "count",      "d",        "default", "dictsort",
    "e",      "escape",     "first",      "float",      "format",   "indent",  "int",
    "items",  "join",       "last",       "length",     "list",     "lower",   "map",
    "max",    "min",        "reject",     "rejectattr", "replace",  "reverse", "round",
    "safe",   "select",     "selectattr", "sort",       "string",   "sum",     "title",
    "tojson", "trim",       "unique",     "upper",      "wordcount"};

template <size_t N>
bool In(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

absl::Status FilterError(std::string_view filter, std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("filter '", std::string(filter), "': ", std::string(message)));
}

absl::StatusOr<int64_t> IntArg(std::string_view filter, const std::optional<Value>& v,
                               int64_t fallback) {
  if (!v.has_value()) return fallback;
  if (v->kind() != Value::Kind::kInt && v->kind() != Value::Kind::kBool) {
    return FilterError(filter, absl::StrCat("expected an integer, got ", TypeName(*v)));
  }
  return v->AsInt();
}

bool BoolArg(const std::optional<Value>& v, bool fallback) {
  return v.has_value() ? Truthy(*v) : fallback;
}

// Jinja's make_attrgetter: "a.b.0" looks up a, then b, then item 0, each with GetItem.
absl::StatusOr<Value> GetPath(const Value& item, const Value& attribute,
                              const std::optional<Value>& fallback) {
  Value v = item;
  std::vector<Value> parts;
  if (attribute.is_string()) {
    for (const std::string& part : PySplit(attribute.AsString(), std::string("."), -1)) {
      const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits && part.size() < 18 ? Value::Int(std::atoll(part.c_str()))
                                                 : Value::String(part));
    }
  } else {
    parts.push_back(attribute);
  }
  for (const Value& part : parts) {
    ASSIGN_OR_RETURN(v, GetItem(v, part));
    if (fallback.has_value() && v.is_undefined()) v = *fallback;
  }
  return v;
}

// The sort key of sort / dictsort / unique / min / max: lower-cased strings unless
// case-sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::String(PyLower(v.AsString()));
  return v;
}

absl::Status SortValues(std::vector<std::pair<Value, Value>>* keyed, bool reverse) {
  absl::Status error;
  std::stable_sort(keyed->begin(), keyed->end(), [&](const auto& x, const auto& y) {
    absl::StatusOr<int> c = reverse ? Compare(y.first, x.first) : Compare(x.first, y.first);
    if (!c.ok()) {
      if (error.ok()) error = c.status();
      return false;
    }
    return *c < 0;
  });
  return error;
}

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

// Python's int(str, base) for base 10: surrounding whitespace, a sign, digits with single
// underscores between them.
std::optional<int64_t> ParseInt(const std::string& text) {
  const std::string s = PyStrip(text, std::nullopt, true, true);
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i >= s.size()) return std::nullopt;
  uint64_t v = 0;
  bool previous_digit = false;
  for (; i < s.size(); ++i) {
    if (s[i] == '_' && previous_digit && i + 1 < s.size() && s[i + 1] != '_') {
      previous_digit = false;
      continue;
    }
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
    if (v > (1ull << 63)) return std::nullopt;
    previous_digit = true;
  }
  if (!previous_digit) return std::nullopt;
  if (!negative && v == (1ull << 63)) return std::nullopt;
  return negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
}

// Python's float(str): surrounding whitespace, inf / nan words, underscores between digits.
std::optional<double> ParseFloat(const std::string& text) {
  std::string s = PyStrip(text, std::nullopt, true, true);
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    cleaned += s[i];
  }
  if (cleaned.empty()) return std::nullopt;
  const std::string lower = PyLower(cleaned);
  std::string_view body = lower;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    const double v = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -v : v;
  }
  for (char c : body) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != '+' &&
        c != '-') {
      return std::nullopt;  // strtod would also take hex and other forms Python refuses
    }
  }
  char* end = nullptr;
  const double v = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return v;
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectOrReject(std::string_view filter, const Value& input, const Args& args,
                                     bool select, bool by_attribute, Budget& budget) {
  size_t off = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) return FilterError(filter, "missing the attribute name");
    attribute = args.positional[0];
    off = 1;
  }
  std::string test;
  Args test_args;
  if (args.positional.size() > off) {
    if (!args.positional[off].is_string()) return FilterError(filter, "the test must be a name");
    test = args.positional[off].AsString();
    if (!IsKnownTest(test)) return FilterError(filter, absl::StrCat("no test named '", test, "'"));
    test_args.positional.assign(args.positional.begin() + static_cast<long>(off) + 1,
                                args.positional.end());
    test_args.keyword = args.keyword;
  }
  // Jinja iterates only a true value: select over 0, None or "" gives nothing.
  if (!Truthy(input)) return Value::List({});
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  std::vector<Value> kept;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attribute) {
      ASSIGN_OR_RETURN(subject, GetPath(item, attribute, std::nullopt));
    }
    bool pass;
    if (test.empty()) {
      pass = Truthy(subject);
    } else {
      ASSIGN_OR_RETURN(pass, ApplyTest(test, subject, test_args));
    }
    if (pass == select) kept.push_back(item);
  }
  return Value::List(std::move(kept));
}

absl::StatusOr<Value> MapFilter(const Value& input, const Args& args, Budget& budget) {
  if (!Truthy(input)) return Value::List({});  // as select: a false value maps to nothing
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  std::vector<Value> out;
  out.reserve(items.size());
  if (args.positional.empty()) {
    std::optional<Value> attribute;
    std::optional<Value> fallback;
    for (const auto& [key, value] : args.keyword) {
      if (key == "attribute") {
        attribute = value;
      } else if (key == "default") {
        fallback = value;
      } else {
        return FilterError("map", absl::StrCat("unexpected keyword argument '", key, "'"));
      }
    }
    if (!attribute.has_value()) return FilterError("map", "requires a filter argument");
    if (fallback.has_value() && fallback->is_none()) fallback.reset();
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(Value v, GetPath(item, *attribute, fallback));
      out.push_back(std::move(v));
    }
    return Value::List(std::move(out));
  }
  if (!args.positional[0].is_string()) return FilterError("map", "the filter must be a name");
  const std::string name = args.positional[0].AsString();
  if (!IsKnownFilter(name)) return FilterError("map", absl::StrCat("no filter named '", name, "'"));
  Args rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(Value v, ApplyFilter(name, item, rest, budget));
    out.push_back(std::move(v));
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> JoinFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("join", args, {"d", "attribute"}));
  const std::string sep = a[0].has_value() ? ToStr(*a[0]) : "";
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (a[1].has_value() && !a[1]->is_none()) {
      ASSIGN_OR_RETURN(item, GetPath(item, *a[1], std::nullopt));
    }
    if (i > 0) out += sep;
    out += ToStr(item);
    RETURN_IF_ERROR(budget.CheckSize(out.size()));
  }
  RETURN_IF_ERROR(budget.ChargeBytes(out.size()));
  return Value::String(std::move(out));
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

absl::StatusOr<Value> IntFilter(const Value& input, const Args& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("int", args, {"default", "base"}));
  const Value fallback = a[0].has_value() ? *a[0] : Value::Int(0);
  ASSIGN_OR_RETURN(int64_t base, IntArg("int", a[1], 10));
  if (input.is_undefined()) return absl::InvalidArgumentError(input.UndefinedHint());
  if (input.is_string()) {
    if (base == 10) {
      if (std::optional<int64_t> v = ParseInt(input.AsString())) return Value::Int(*v);
    } else {
      char* end = nullptr;
      const std::string s = PyStrip(input.AsString(), std::nullopt, true, true);
      errno = 0;
      const long long v = std::strtoll(s.c_str(), &end, static_cast<int>(base));
      if (!s.empty() && errno == 0 && end == s.c_str() + s.size()) return Value::Int(v);
    }
    // "42.23"|int gives 42, as Jinja retries through float.
    if (std::optional<double> d = ParseFloat(input.AsString())) {
      absl::StatusOr<int64_t> v = ToInt(Value::Float(*d));
      if (v.ok()) return Value::Int(*v);
    }
    return fallback;
  }
  if (input.is_number()) {
    absl::StatusOr<int64_t> v = ToInt(input);
    if (v.ok()) return Value::Int(*v);
  }
  return fallback;
}

absl::StatusOr<Value> FloatFilter(const Value& input, const Args& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("float", args, {"default"}));
  const Value fallback = a[0].has_value() ? *a[0] : Value::Float(0.0);
  if (input.is_undefined()) return absl::InvalidArgumentError(input.UndefinedHint());
  if (input.is_number()) return Value::Float(input.AsFloat());
  if (input.is_string()) {
    if (std::optional<double> d = ParseFloat(input.AsString())) return Value::Float(*d);
  }
  return fallback;
}

absl::StatusOr<Value> RoundFilter(const Value& input, const Args& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs("round", args, {"precision", "method"}));
  ASSIGN_OR_RETURN(int64_t precision, IntArg("round", a[0], 0));
  const std::string method = a[1].has_value() ? ToStr(*a[1]) : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    return FilterError("round", "method must be common, ceil or floor");
  }
  if (!input.is_number()) {
    if (input.is_undefined()) return absl::InvalidArgumentError(input.UndefinedHint());
    return FilterError("round",
                       absl::StrCat("type ", TypeName(input), " doesn't define __round__ method"));
  }
  precision = std::clamp<int64_t>(precision, -308, 308);
  if (method == "common") {
    if (input.kind() != Value::Kind::kFloat && precision >= 0) return Value::Int(input.AsInt());
    const double x = input.AsFloat();
    if (precision >= 0 && std::isfinite(x)) {
      // printf rounds the exact binary value half-to-even, as Python's round() does.
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(precision, 100)),
                    x);
      return Value::Float(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, static_cast<double>(precision));
    return Value::Float(std::nearbyint(x * scale) / scale);
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = input.AsFloat() * scale;
  return Value::Float((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

absl::StatusOr<Value> SortFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("sort", args, {"reverse", "case_sensitive", "attribute"}));
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) {
    Value key = item;
    if (a[2].has_value() && !a[2]->is_none()) {
      ASSIGN_OR_RETURN(key, GetPath(item, *a[2], std::nullopt));
    }
    keyed.emplace_back(SortKey(key, BoolArg(a[1], false)), item);
  }
  RETURN_IF_ERROR(SortValues(&keyed, BoolArg(a[0], false)));
  std::vector<Value> out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return Value::List(std::move(out));
}

absl::StatusOr<Value> DictsortFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("dictsort", args, {"case_sensitive", "by", "reverse"}));
  if (!input.is_dict()) return FilterError("dictsort", "can only sort a mapping");
  const std::string by = a[1].has_value() ? ToStr(*a[1]) : "key";
  if (by != "key" && by != "value")
    return FilterError("dictsort", "You can only sort by either 'key' or 'value'");
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(input.AsDict().size())));
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [key, value] : input.AsDict().entries()) {
    keyed.emplace_back(SortKey(by == "key" ? key : value, BoolArg(a[0], false)),
                       Value::Tuple({key, value}));
  }
  RETURN_IF_ERROR(SortValues(&keyed, BoolArg(a[2], false)));
  std::vector<Value> out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return Value::List(std::move(out));
}

absl::StatusOr<Value> UniqueFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("unique", args, {"case_sensitive", "attribute"}));
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  // Quadratic: charge it as such.
  RETURN_IF_ERROR(
      budget.Charge(static_cast<int64_t>(items.size() * items.size() / 64 + items.size())));
  std::vector<Value> seen;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value key = item;
    if (a[1].has_value() && !a[1]->is_none()) {
      ASSIGN_OR_RETURN(key, GetPath(item, *a[1], std::nullopt));
    }
    key = SortKey(key, BoolArg(a[0], false));
    if (key.is_dict() || (key.is_list() && !key.AsList().is_tuple)) {
      // Jinja keeps the seen keys in a set.
      return FilterError("unique", absl::StrCat("unhashable type: '", TypeName(key), "'"));
    }
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, key); })) {
      continue;
    }
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> MinMaxFilter(std::string_view filter, const Value& input, const Args& args,
                                   Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs(filter, args, {"case_sensitive", "attribute"}));
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  const Value* best = nullptr;
  Value best_key;
  for (const Value& item : items) {
    Value key = item;
    if (a[1].has_value() && !a[1]->is_none()) {
      ASSIGN_OR_RETURN(key, GetPath(item, *a[1], std::nullopt));
    }
    key = SortKey(key, BoolArg(a[0], false));
    if (best != nullptr) {
      ASSIGN_OR_RETURN(int c, Compare(key, best_key));
      if (filter == "min" ? c >= 0 : c <= 0) continue;
    }
    best = &item;
    best_key = key;
  }
  return *best;
}

absl::StatusOr<Value> SumFilter(const Value& input, const Args& args, Budget& budget) {
  ASSIGN_OR_RETURN(auto a, BindArgs("sum", args, {"attribute", "start"}));
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  Value total = a[1].has_value() ? *a[1] : Value::Int(0);
  for (const Value& item : items) {
    Value v = item;
    if (a[0].has_value() && !a[0]->is_none()) {
      ASSIGN_OR_RETURN(v, GetPath(item, *a[0], std::nullopt));
    }
    if (total.is_string()) return FilterError("sum", "can't sum strings");
    ASSIGN_OR_RETURN(total, BinaryOperation(BinaryOp::kAdd, total, v, budget));
  }
  return total;
}

absl::StatusOr<Value> FirstLast(std::string_view filter, const Value& input) {
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  if (items.empty()) {
    return Value::Undefined(absl::StrCat("No ", std::string(filter), " item, sequence was empty."));
  }
  return filter == "first" ? items.front() : items.back();
}

absl::StatusOr<Value> Length(const Value& input) {
  switch (input.kind()) {
    case Value::Kind::kString:
      return Value::Int(static_cast<int64_t>(UnitCount(input.AsString())));
    case Value::Kind::kList:
      return Value::Int(static_cast<int64_t>(input.AsList().items.size()));
    case Value::Kind::kDict:
      return Value::Int(static_cast<int64_t>(input.AsDict().size()));
    case Value::Kind::kUndefined:
      return Value::Int(0);
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("object of type '", TypeName(input), "' has no len()"));
}

absl::StatusOr<Value> StringResult(std::string s, Budget& budget) {
  RETURN_IF_ERROR(budget.CheckSize(s.size()));
  RETURN_IF_ERROR(budget.ChargeBytes(s.size()));
  return Value::String(std::move(s));
}

}  // namespace

bool IsKnownFilter(std::string_view name) { return In(kFilters, name); }

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const Args& args,
                                  Budget& budget) {
  RETURN_IF_ERROR(budget.Charge(1));
  if (name == "tojson") return TojsonFilter(input, args, budget);
  if (name == "trim") {
    ASSIGN_OR_RETURN(auto a, BindArgs("trim", args, {"chars"}));
    std::optional<std::string> chars;
    if (a[0].has_value() && !a[0]->is_none()) chars = ToStr(*a[0]);
    return Value::String(PyStrip(ToStr(input), chars, true, true));
  }
  if (name == "length" || name == "count") {
    RETURN_IF_ERROR(BindArgs(name, args, {}).status());
    return Length(input);
  }
  if (name == "default" || name == "d") {
    ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {"default_value", "boolean"}));
    const bool replace = input.is_undefined() || (BoolArg(a[1], false) && !Truthy(input));
    if (!replace) return input;
    return a[0].has_value() ? *a[0] : Value::String("");
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "string" || name == "safe" || name == "escape" || name == "e" ||
      name == "wordcount") {
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
  if (name == "join") return JoinFilter(input, args, budget);
  if (name == "first" || name == "last") {
    RETURN_IF_ERROR(BindArgs(name, args, {}).status());
    return FirstLast(name, input);
  }
  if (name == "list") {
    RETURN_IF_ERROR(BindArgs(name, args, {}).status());
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
    RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
    return Value::List(std::move(items));
  }
  if (name == "items") {
    RETURN_IF_ERROR(BindArgs(name, args, {}).status());
    if (input.is_undefined()) return Value::List({});
    if (!input.is_dict()) return FilterError("items", "Can only get item pairs from a mapping.");
    RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(input.AsDict().size())));
    std::vector<Value> pairs;
    for (const auto& [key, value] : input.AsDict().entries()) {
      pairs.push_back(Value::Tuple({key, value}));
    }
    return Value::List(std::move(pairs));
  }
  if (name == "replace") {
    ASSIGN_OR_RETURN(auto a, BindArgs("replace", args, {"old", "new", "count"}));
    if (!a[0].has_value() || !a[1].has_value()) return FilterError("replace", "needs old and new");
    ASSIGN_OR_RETURN(int64_t count, IntArg("replace", a[2], -1));
    return StringResult(PyReplace(ToStr(input), ToStr(*a[0]), ToStr(*a[1]), count), budget);
  }
  if (name == "map") return MapFilter(input, args, budget);
  if (name == "select" || name == "reject") {
    return SelectOrReject(name, input, args, name == "select", false, budget);
  }
  if (name == "selectattr" || name == "rejectattr") {
    return SelectOrReject(name, input, args, name == "selectattr", true, budget);
  }
  if (name == "int") return IntFilter(input, args);
  if (name == "float") return FloatFilter(input, args);
  if (name == "abs") {
    RETURN_IF_ERROR(BindArgs(name, args, {}).status());
    if (input.kind() == Value::Kind::kFloat) return Value::Float(std::fabs(input.AsFloat()));
    if (input.is_number()) {
      if (input.AsInt() < 0) return Negate(input);
      return Value::Int(input.AsInt());
    }
    return absl::InvalidArgumentError(
        absl::StrCat("bad operand type for abs(): '", TypeName(input), "'"));
  }
  if (name == "round") return RoundFilter(input, args);
  if (name == "sort") return SortFilter(input, args, budget);
  if (name == "dictsort") return DictsortFilter(input, args, budget);
  if (name == "unique") return UniqueFilter(input, args, budget);
  if (name == "min" || name == "max") return MinMaxFilter(name, input, args, budget);
  if (name == "sum") return SumFilter(input, args, budget);
  if (name == "reverse") {
    RETURN_IF_ERROR(BindArgs(name, args, {}).status());
    if (input.is_string()) {
      std::vector<std::string> units = Units(input.AsString());
      std::string out;
      for (auto it = units.rbegin(); it != units.rend(); ++it) out += *it;
      return Value::String(std::move(out));
    }
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (name == "center") {
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
  if (name == "indent") return IndentFilter(input, args, budget);
  if (name == "format") {
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
  return absl::InvalidArgumentError(absl::StrCat("no filter named '", std::string(name), "'"));
}

}  // namespace mswa::jinja
