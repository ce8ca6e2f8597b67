#include "model/tokenizer/jinja/json_io.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/py_string.h"
#include "model/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace mswa::jinja {
namespace {

template <typename Json>
absl::StatusOr<Value> Convert(const Json& j, int depth) {
  if (depth > kMaxValueDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nested deeper than ", kMaxValueDepth, " levels"));
  }
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return Value::None();
    case nlohmann::json::value_t::boolean:
      return Value::Bool(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::Int(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Value::Float(static_cast<double>(u));
      }
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::Float(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::String(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const Json& item : j) {
        ASSIGN_OR_RETURN(Value v, Convert(item, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      DictData dict;
      for (auto it = j.begin(); it != j.end(); ++it) {
        ASSIGN_OR_RETURN(Value v, Convert(it.value(), depth + 1));
        dict.Set(Value::String(it.key()), std::move(v));
      }
      return Value::Dict(std::move(dict));
    }
    case nlohmann::json::value_t::binary:
      return absl::InvalidArgumentError("binary JSON values are not supported");
  }
  return absl::InvalidArgumentError("unknown JSON value type");
}

// Python's json.encoder string escaping.
void AppendJsonString(std::string_view s, bool ensure_ascii, std::string* out) {
  char buf[16];
  *out += '"';
  for (size_t pos = 0; pos < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[pos]);
    switch (b) {
      case '"':
        *out += "\\\"";
        ++pos;
        continue;
      case '\\':
        *out += "\\\\";
        ++pos;
        continue;
      case '\n':
        *out += "\\n";
        ++pos;
        continue;
      case '\r':
        *out += "\\r";
        ++pos;
        continue;
      case '\t':
        *out += "\\t";
        ++pos;
        continue;
      case '\b':
        *out += "\\b";
        ++pos;
        continue;
      case '\f':
        *out += "\\f";
        ++pos;
        continue;
      default:
        break;
    }
    if (b < 0x20 || (ensure_ascii && b == 0x7F)) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", b);
      *out += buf;
      ++pos;
      continue;
    }
    if (b < 0x80 || !ensure_ascii) {
      *out += static_cast<char>(b);
      ++pos;
      continue;
    }
    uint32_t cp = 0;
    size_t len = DecodeUtf8(s, pos, &cp);
    if (len == 0) {
      // Not UTF-8: Python's surrogateescape code point for the byte.
      cp = 0xDC00 + b;
      len = 1;
    }
    if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    } else {
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
    }
    *out += buf;
    pos += len;
  }
  *out += '"';
}

std::string JsonFloat(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return PyFloatRepr(d);
}

class Dumper {
 public:
  Dumper(const JsonDumpOptions& options, size_t max_bytes)
      : options_(options),
        max_bytes_(max_bytes),
        item_sep_(options.item_separator.value_or(options.indent.has_value() ? "," : ", ")),
        key_sep_(options.key_separator.value_or(": ")) {}

  absl::Status Dump(const Value& v, int level) {
    switch (v.kind()) {
      case Value::Kind::kNone:
        out_ += "null";
        break;
      case Value::Kind::kBool:
        out_ += v.AsBool() ? "true" : "false";
        break;
      case Value::Kind::kInt:
        out_ += std::to_string(v.AsInt());
        break;
      case Value::Kind::kFloat:
        out_ += JsonFloat(v.AsFloat());
        break;
      case Value::Kind::kString:
        AppendJsonString(v.AsString(), options_.ensure_ascii, &out_);
        break;
      case Value::Kind::kList:
        RETURN_IF_ERROR(DumpList(v.AsList(), level));
        break;
      case Value::Kind::kDict:
        RETURN_IF_ERROR(DumpDict(v.AsDict(), level));
        break;
      case Value::Kind::kUndefined:
      case Value::Kind::kNamespace:
      case Value::Kind::kCallable:
        return absl::InvalidArgumentError(
            absl::StrCat("Object of type ", TypeName(v), " is not JSON serializable"));
    }
    if (out_.size() > max_bytes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("tojson output exceeds the limit of ", max_bytes_, " bytes"));
    }
    return absl::OkStatus();
  }

  std::string& out() { return out_; }

 private:
  void NewLine(int level) {
    if (!options_.indent.has_value()) return;
    out_ += '\n';
    for (int i = 0; i < level; ++i) out_ += *options_.indent;
  }

  absl::Status DumpList(const ListData& list, int level) {
    if (list.items.empty()) {
      out_ += "[]";
      return absl::OkStatus();
    }
    out_ += '[';
    for (size_t i = 0; i < list.items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      NewLine(level + 1);
      RETURN_IF_ERROR(Dump(list.items[i], level + 1));
    }
    NewLine(level);
    out_ += ']';
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> KeyString(const Value& key) {
    switch (key.kind()) {
      case Value::Kind::kString:
        return key.AsString();
      case Value::Kind::kInt:
        return std::to_string(key.AsInt());
      case Value::Kind::kFloat:
        return JsonFloat(key.AsFloat());
      case Value::Kind::kBool:
        return std::string(key.AsBool() ? "true" : "false");
      case Value::Kind::kNone:
        return std::string("null");
      case Value::Kind::kUndefined:
      case Value::Kind::kList:
      case Value::Kind::kDict:
      case Value::Kind::kNamespace:
      case Value::Kind::kCallable:
        break;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("keys must be str, int, float, bool or None, not ", TypeName(key)));
  }

  absl::Status DumpDict(const DictData& dict, int level) {
    if (dict.size() == 0) {
      out_ += "{}";
      return absl::OkStatus();
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& entry : dict.entries()) entries.push_back(&entry);
    if (options_.sort_keys) {
      absl::Status error;
      std::stable_sort(entries.begin(), entries.end(), [&](const auto* a, const auto* b) {
        absl::StatusOr<int> c = Compare(a->first, b->first);
        if (!c.ok()) {
          error = c.status();
          return false;
        }
        return *c < 0;
      });
      RETURN_IF_ERROR(error);
    }
    out_ += '{';
    bool first = true;
    for (const auto* entry : entries) {
      if (!first) out_ += item_sep_;
      first = false;
      NewLine(level + 1);
      ASSIGN_OR_RETURN(std::string key, KeyString(entry->first));
      AppendJsonString(key, options_.ensure_ascii, &out_);
      out_ += key_sep_;
      RETURN_IF_ERROR(Dump(entry->second, level + 1));
    }
    NewLine(level);
    out_ += '}';
    return absl::OkStatus();
  }

  const JsonDumpOptions& options_;
  const size_t max_bytes_;
  const std::string item_sep_;
  const std::string key_sep_;
  std::string out_;
};

}  // namespace

absl::StatusOr<Value> FromJson(const nlohmann::json& j) { return Convert(j, 0); }
absl::StatusOr<Value> FromJson(const nlohmann::ordered_json& j) { return Convert(j, 0); }

absl::StatusOr<std::string> JsonDumps(const Value& v, const JsonDumpOptions& options,
                                      size_t max_bytes) {
  if (v.depth() > kMaxValueDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("tojson: value nested deeper than ", kMaxValueDepth, " levels"));
  }
  Dumper dumper(options, max_bytes);
  RETURN_IF_ERROR(dumper.Dump(v, 0));
  return std::move(dumper.out());
}

}  // namespace mswa::jinja
