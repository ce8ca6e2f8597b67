// Tests (`x is name`, builtins.h), after jinja2/tests.py.
#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

constexpr std::string_view kTests[] = {
    "boolean", "callable", "defined",  "divisibleby", "eq",      "equalto",   "escaped", "even",
    "false",   "float",    "ge",       "greaterthan", "gt",      "in",        "integer", "iterable",
    "le",      "lessthan", "lower",    "lt",          "mapping", "ne",        "none",    "number",
    "odd",     "sameas",   "sequence", "string",      "true",    "undefined", "upper",   "==",
    "!=",      "<",        "<=",       ">",           ">="};

// Identity as Python's `is` sees it for values that have no shared object.
bool SameAs(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kBool:
      return a.AsBool() == b.AsBool();
    case Value::Kind::kInt:
      // CPython caches the small ints.
      return a.AsInt() == b.AsInt() && a.AsInt() >= -5 && a.AsInt() <= 256;
    case Value::Kind::kFloat:
      return false;
    case Value::Kind::kString:
    case Value::Kind::kList:
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      return a.identity() == b.identity();
  }
  return false;
}

}  // namespace

bool IsKnownTest(std::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& input, const Args& args) {
  const Value* arg = args.positional.empty() ? nullptr : &args.positional[0];
  const auto need_arg = [&]() -> absl::Status {
    if (arg == nullptr || args.positional.size() != 1 || !args.keyword.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("test '", std::string(name), "' takes one argument"));
    }
    return absl::OkStatus();
  };
  const auto no_args = [&]() -> absl::Status {
    if (!args.positional.empty() || !args.keyword.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("test '", std::string(name), "' takes no arguments"));
    }
    return absl::OkStatus();
  };
  if (name == "eq" || name == "equalto" || name == "==" || name == "ne" || name == "!=" ||
      name == "lt" || name == "lessthan" || name == "<" || name == "le" || name == "<=" ||
      name == "gt" || name == "greaterthan" || name == ">" || name == "ge" || name == ">=" ||
      name == "in") {
    RETURN_IF_ERROR(need_arg());
    CompareOp op = CompareOp::kEq;
    if (name == "ne" || name == "!=") op = CompareOp::kNe;
    if (name == "lt" || name == "lessthan" || name == "<") op = CompareOp::kLt;
    if (name == "le" || name == "<=") op = CompareOp::kLe;
    if (name == "gt" || name == "greaterthan" || name == ">") op = CompareOp::kGt;
    if (name == "ge" || name == ">=") op = CompareOp::kGe;
    if (name == "in") op = CompareOp::kIn;
    return CompareOperation(op, input, *arg);
  }
  if (name == "divisibleby") {
    RETURN_IF_ERROR(need_arg());
    Budget scratch(1 << 20, 1 << 20);
    ASSIGN_OR_RETURN(Value m, BinaryOperation(BinaryOp::kMod, input, *arg, scratch));
    return Equals(m, Value::Int(0));
  }
  if (name == "sameas") {
    RETURN_IF_ERROR(need_arg());
    return SameAs(input, *arg);
  }
  RETURN_IF_ERROR(no_args());
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "boolean") return input.kind() == Value::Kind::kBool;
  if (name == "true") return input.kind() == Value::Kind::kBool && input.AsBool();
  if (name == "false") return input.kind() == Value::Kind::kBool && !input.AsBool();
  if (name == "integer") return input.kind() == Value::Kind::kInt;
  if (name == "float") return input.kind() == Value::Kind::kFloat;
  if (name == "number") return input.is_number();
  if (name == "string") return input.is_string();
  if (name == "mapping") return input.is_dict();
  if (name == "iterable") {
    return input.is_string() || input.is_list() || input.is_dict() || input.is_undefined();
  }
  if (name == "sequence") {
    // len() and [] both work: Undefined has them too.
    return input.is_string() || input.is_list() || input.is_dict() || input.is_undefined();
  }
  if (name == "callable") {
    return input.kind() == Value::Kind::kCallable || input.is_undefined();
  }
  if (name == "escaped") return false;
  if (name == "lower") return PyIsLower(ToStr(input));
  if (name == "upper") return PyIsUpper(ToStr(input));
  if (name == "odd" || name == "even") {
    Budget scratch(1 << 20, 1 << 20);
    ASSIGN_OR_RETURN(Value m, BinaryOperation(BinaryOp::kMod, input, Value::Int(2), scratch));
    return Equals(m, Value::Int(name == "odd" ? 1 : 0));
  }
  return absl::InvalidArgumentError(absl::StrCat("no test named '", std::string(name), "'"));
}

}  // namespace mswa::jinja
