// JSON in and out of template values: the render context arrives as nlohmann JSON, and the
// `tojson` filter writes what Python's json.dumps writes (transformers binds `tojson` to
// json.dumps with ensure_ascii=False).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/value.h"
#include "nlohmann/json_fwd.hpp"

namespace mswa::jinja {

// Objects become dicts in the JSON value's own key order (nlohmann::json iterates keys sorted,
// nlohmann::ordered_json in insertion order), arrays lists, integers ints (an unsigned value
// above INT64_MAX becomes a float), and binary values are refused. InvalidArgument when nested
// deeper than kMaxValueDepth.
absl::StatusOr<Value> FromJson(const nlohmann::json& j);
absl::StatusOr<Value> FromJson(const nlohmann::ordered_json& j);

// json.dumps's parameters.
struct JsonDumpOptions {
  // unset: one line; else each nested item on a new line prefixed by `indent` per level (an
  // int n in Python is n spaces).
  std::optional<std::string> indent;
  // unset: ", " and ": ", or "," and ": " with an indent.
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
  bool ensure_ascii = false;  // escape everything outside printable ASCII as \uXXXX
};

// json.dumps(v): str, int, float (NaN, Infinity), bool, None, list / tuple, dict (keys str, or
// int / float / bool / None written as strings). InvalidArgument for anything else ("Object of
// type Undefined is not JSON serializable"), for keys that cannot be sorted, and when the text
// would exceed `max_bytes`.
absl::StatusOr<std::string> JsonDumps(const Value& v, const JsonDumpOptions& options,
                                      size_t max_bytes);

}  // namespace mswa::jinja
