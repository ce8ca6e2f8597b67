// List and sequence filters (filters.h): length, first, last, list, items, join, map, select
// and friends, sort, dictsort, unique, min, max, sum, reverse, after jinja2/filters.py.
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
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

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

}  // namespace

absl::StatusOr<Value> LengthFilter(std::string_view name, const Value& input, const Args& args) {
  RETURN_IF_ERROR(BindArgs(name, args, {}).status());
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

absl::StatusOr<Value> FirstLastFilter(std::string_view name, const Value& input, const Args& args) {
  RETURN_IF_ERROR(BindArgs(name, args, {}).status());
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  if (items.empty()) {
    return Value::Undefined(absl::StrCat("No ", std::string(name), " item, sequence was empty."));
  }
  return name == "first" ? items.front() : items.back();
}

absl::StatusOr<Value> ListFilter(const Value& input, const Args& args, Budget& budget) {
  RETURN_IF_ERROR(BindArgs("list", args, {}).status());
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(input));
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> ItemsFilter(const Value& input, const Args& args, Budget& budget) {
  RETURN_IF_ERROR(BindArgs("items", args, {}).status());
  if (input.is_undefined()) return Value::List({});
  if (!input.is_dict()) return FilterError("items", "Can only get item pairs from a mapping.");
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(input.AsDict().size())));
  std::vector<Value> pairs;
  for (const auto& [key, value] : input.AsDict().entries()) {
    pairs.push_back(Value::Tuple({key, value}));
  }
  return Value::List(std::move(pairs));
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

absl::StatusOr<Value> ReverseFilter(const Value& input, const Args& args) {
  RETURN_IF_ERROR(BindArgs("reverse", args, {}).status());
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

}  // namespace mswa::jinja
