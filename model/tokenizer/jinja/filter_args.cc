// Argument handling shared by the filters (filter_args.h).
#include "model/tokenizer/jinja/filter_args.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {

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

absl::StatusOr<Value> StringResult(std::string s, Budget& budget) {
  RETURN_IF_ERROR(budget.CheckSize(s.size()));
  RETURN_IF_ERROR(budget.ChargeBytes(s.size()));
  return Value::String(std::move(s));
}

}  // namespace mswa::jinja
