// Argument handling shared by the filter implementations (filters.h): Jinja's error wording,
// integer and boolean arguments, attribute paths, and string results charged to the budget.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

// InvalidArgument "filter '<filter>': <message>".
absl::Status FilterError(std::string_view filter, std::string_view message);

// An optional integer argument: `fallback` when unset, the value for an int or bool, else
// FilterError naming `filter`.
absl::StatusOr<int64_t> IntArg(std::string_view filter, const std::optional<Value>& v,
                               int64_t fallback);

// An optional boolean argument: its truthiness, or `fallback` when unset.
bool BoolArg(const std::optional<Value>& v, bool fallback);

// Jinja's make_attrgetter: "a.b.0" looks up a, then b, then item 0, each with GetItem; a
// non-string `attribute` is one key. Where `fallback` is set it replaces every Undefined step.
absl::StatusOr<Value> GetPath(const Value& item, const Value& attribute,
                              const std::optional<Value>& fallback);

// `s` as a string value after checking it against the budget's size limit and charging its
// bytes.
absl::StatusOr<Value> StringResult(std::string s, Budget& budget);

}  // namespace mswa::jinja
