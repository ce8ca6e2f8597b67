// Number filters (filters.h): int, float, abs, round, after jinja2/filters.py.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/filter_args.h"
#include "model/tokenizer/jinja/filters.h"
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

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

}  // namespace

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

absl::StatusOr<Value> AbsFilter(const Value& input, const Args& args) {
  RETURN_IF_ERROR(BindArgs("abs", args, {}).status());
  if (input.kind() == Value::Kind::kFloat) return Value::Float(std::fabs(input.AsFloat()));
  if (input.is_number()) {
    if (input.AsInt() < 0) return Negate(input);
    return Value::Int(input.AsInt());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad operand type for abs(): '", TypeName(input), "'"));
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

}  // namespace mswa::jinja
