// The filter table and ApplyFilter (builtins.h): maps each filter name to its implementation
// (filters.h), after jinja2/filters.py.
#include "model/tokenizer/jinja/filters.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/filter_args.h"

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

absl::StatusOr<Value> DefaultFilter(std::string_view name, const Value& input, const Args& args) {
  ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {"default_value", "boolean"}));
  const bool replace = input.is_undefined() || (BoolArg(a[1], false) && !Truthy(input));
  if (!replace) return input;
  return a[0].has_value() ? *a[0] : Value::String("");
}

}  // namespace

bool IsKnownFilter(std::string_view name) { return In(kFilters, name); }

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const Args& args,
                                  Budget& budget) {
  RETURN_IF_ERROR(budget.Charge(1));
  if (name == "tojson") return TojsonFilter(input, args, budget);
  if (name == "trim") return TrimFilter(input, args);
  if (name == "length" || name == "count") return LengthFilter(name, input, args);
  if (name == "default" || name == "d") return DefaultFilter(name, input, args);
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "string" || name == "safe" || name == "escape" || name == "e" ||
      name == "wordcount") {
    return StringConversionFilter(name, input, args, budget);
  }
  if (name == "join") return JoinFilter(input, args, budget);
  if (name == "first" || name == "last") return FirstLastFilter(name, input, args);
  if (name == "list") return ListFilter(input, args, budget);
  if (name == "items") return ItemsFilter(input, args, budget);
  if (name == "replace") return ReplaceFilter(input, args, budget);
  if (name == "map") return MapFilter(input, args, budget);
  if (name == "select" || name == "reject") {
    return SelectOrReject(name, input, args, name == "select", false, budget);
  }
  if (name == "selectattr" || name == "rejectattr") {
    return SelectOrReject(name, input, args, name == "selectattr", true, budget);
  }
  if (name == "int") return IntFilter(input, args);
  if (name == "float") return FloatFilter(input, args);
  if (name == "abs") return AbsFilter(input, args);
  if (name == "round") return RoundFilter(input, args);
  if (name == "sort") return SortFilter(input, args, budget);
  if (name == "dictsort") return DictsortFilter(input, args, budget);
  if (name == "unique") return UniqueFilter(input, args, budget);
  if (name == "min" || name == "max") return MinMaxFilter(name, input, args, budget);
  if (name == "sum") return SumFilter(input, args, budget);
  if (name == "reverse") return ReverseFilter(input, args);
  if (name == "center") return CenterFilter(input, args, budget);
  if (name == "indent") return IndentFilter(input, args, budget);
  if (name == "format") return FormatFilter(input, args, budget);
  return absl::InvalidArgumentError(absl::StrCat("no filter named '", std::string(name), "'"));
}

}  // namespace mswa::jinja
