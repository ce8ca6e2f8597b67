#include "model/tokenizer/jinja/operators.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/py_string.h"
#include "model/tokenizer/utf8.h"

namespace mswa::jinja {
namespace {

const char* OpSymbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kFloorDiv:
      return "//";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "** or pow()";
  }
  return "?";
}

absl::Status UnsupportedOperands(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) return absl::InvalidArgumentError(a.UndefinedHint());
  if (b.is_undefined()) return absl::InvalidArgumentError(b.UndefinedHint());
  if (op == BinaryOp::kAdd && a.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("can only concatenate str (not \"", TypeName(b), "\") to str"));
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported operand type(s) for ", OpSymbol(op),
                                                 ": '", TypeName(a), "' and '", TypeName(b), "'"));
}

absl::Status Overflow() {
  return absl::InvalidArgumentError("integer result does not fit in 64 bits");
}

absl::Status DivisionByZero(BinaryOp op) {
  switch (op) {
    case BinaryOp::kDiv:
      return absl::InvalidArgumentError("division by zero");
    case BinaryOp::kFloorDiv:
      return absl::InvalidArgumentError("integer division or modulo by zero");
    case BinaryOp::kMod:
      return absl::InvalidArgumentError("integer modulo by zero");
    case BinaryOp::kAdd:
    case BinaryOp::kSub:
    case BinaryOp::kMul:
    case BinaryOp::kPow:
      break;
  }
  return absl::InvalidArgumentError("division by zero");
}

// Python's float divmod: the quotient floored, the remainder with the divisor's sign.
void FloatDivMod(double vx, double wx, double* floordiv, double* mod) {
  double m = std::fmod(vx, wx);
  double div = (vx - m) / wx;
  if (m != 0) {
    if ((wx < 0) != (m < 0)) {
      m += wx;
      div -= 1.0;
    }
  } else {
    m = std::copysign(0.0, wx);
  }
  double fd;
  if (div != 0) {
    fd = std::floor(div);
    if (div - fd > 0.5) fd += 1.0;
  } else {
    fd = std::copysign(0.0, vx / wx);
  }
  *floordiv = fd;
  *mod = m;
}

absl::StatusOr<Value> Repeat(const Value& seq, int64_t n, Budget& budget) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.AsString();
    if (!s.empty() && static_cast<uint64_t>(n) > budget.max_string_bytes() / s.size()) {
      return budget.CheckSize(budget.max_string_bytes() + 1);
    }
    RETURN_IF_ERROR(budget.ChargeBytes(s.size() * static_cast<size_t>(n)));
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::String(std::move(out));
  }
  const ListData& list = seq.AsList();
  if (!list.items.empty() && static_cast<uint64_t>(n) > kMaxListItems / list.items.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("list repetition would make more than ", kMaxListItems, " items"));
  }
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(list.items.size()) * n));
  std::vector<Value> items;
  for (int64_t i = 0; i < n; ++i) items.insert(items.end(), list.items.begin(), list.items.end());
  return list.is_tuple ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
}

absl::StatusOr<Value> IntPow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) {
      if (__builtin_mul_overflow(result, base, &result)) return Overflow();
    }
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) return Overflow();
  }
  return Value::Int(result);
}

absl::StatusOr<Value> NumberOperation(BinaryOp op, const Value& a, const Value& b) {
  const bool floats = a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
  if (!floats) {
    const int64_t x = a.AsInt();
    const int64_t y = b.AsInt();
    int64_t r = 0;
    switch (op) {
      case BinaryOp::kAdd:
        if (__builtin_add_overflow(x, y, &r)) return Overflow();
        return Value::Int(r);
      case BinaryOp::kSub:
        if (__builtin_sub_overflow(x, y, &r)) return Overflow();
        return Value::Int(r);
      case BinaryOp::kMul:
        if (__builtin_mul_overflow(x, y, &r)) return Overflow();
        return Value::Int(r);
      case BinaryOp::kDiv:
        if (y == 0) return DivisionByZero(op);
        return Value::Float(static_cast<double>(x) / static_cast<double>(y));
      case BinaryOp::kFloorDiv:
      case BinaryOp::kMod: {
        if (y == 0) return DivisionByZero(op);
        if (x == std::numeric_limits<int64_t>::min() && y == -1) {
          if (op == BinaryOp::kMod) return Value::Int(0);
          return Overflow();
        }
        int64_t q = x / y;
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          q -= 1;
          m += y;
        }
        return Value::Int(op == BinaryOp::kFloorDiv ? q : m);
      }
      case BinaryOp::kPow:
        if (y >= 0) return IntPow(x, y);
        if (x == 0) {
          return absl::InvalidArgumentError("0.0 cannot be raised to a negative power");
        }
        return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
  }
  const double x = a.AsFloat();
  const double y = b.AsFloat();
  switch (op) {
    case BinaryOp::kAdd:
      return Value::Float(x + y);
    case BinaryOp::kSub:
      return Value::Float(x - y);
    case BinaryOp::kMul:
      return Value::Float(x * y);
    case BinaryOp::kDiv:
      if (y == 0) return absl::InvalidArgumentError("float division by zero");
      return Value::Float(x / y);
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0) {
        return absl::InvalidArgumentError(op == BinaryOp::kMod ? "float modulo"
                                                               : "float floor division by zero");
      }
      double fd = 0;
      double m = 0;
      FloatDivMod(x, y, &fd, &m);
      return Value::Float(op == BinaryOp::kFloorDiv ? fd : m);
    }
    case BinaryOp::kPow: {
      if (x == 0 && y < 0) {
        return absl::InvalidArgumentError("0.0 cannot be raised to a negative power");
      }
      if (x < 0 && y != std::floor(y)) {
        return absl::InvalidArgumentError("a negative number to a fractional power is complex");
      }
      return Value::Float(std::pow(x, y));
    }
  }
  return absl::InternalError("unknown operator");
}

// One printf conversion of Python's % formatting.
absl::StatusOr<std::string> FormatOne(const std::string& flags, int width, int precision, char conv,
                                      const Value& arg) {
  std::string spec = "%" + flags;
  if (width >= 0) spec += std::to_string(width);
  if (precision >= 0) spec += "." + std::to_string(precision);
  char buf[512];
  switch (conv) {
    case 's':
    case 'r': {
      std::string s = conv == 's' ? ToStr(arg) : Repr(arg);
      if (precision >= 0) {
        const std::vector<size_t> offsets = UnitOffsets(s);
        if (static_cast<size_t>(precision) + 1 < offsets.size()) s.resize(offsets[precision]);
      }
      const int pad = width - static_cast<int>(UnitCount(s));
      if (pad > 0) {
        if (flags.find('-') != std::string::npos) {
          s.append(static_cast<size_t>(pad), ' ');
        } else {
          s.insert(0, static_cast<size_t>(pad), ' ');
        }
      }
      return s;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
      if (!arg.is_number()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "%", std::string(1, conv), " format: a real number is required, not ", TypeName(arg)));
      }
      ASSIGN_OR_RETURN(int64_t v, ToInt(arg));
      spec += "ll";
      spec += conv == 'i' || conv == 'u' ? 'd' : conv;
      if ((conv == 'x' || conv == 'X' || conv == 'o') && v < 0) {
        // Python prints the sign and the magnitude.
        std::snprintf(buf, sizeof(buf), spec.c_str(), static_cast<long long>(-v));
        return "-" + std::string(buf);
      }
      std::snprintf(buf, sizeof(buf), spec.c_str(), static_cast<long long>(v));
      return std::string(buf);
    }
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G': {
      if (!arg.is_number()) {
        return absl::InvalidArgumentError(absl::StrCat("must be real number, not ", TypeName(arg)));
      }
      spec += conv;
      std::snprintf(buf, sizeof(buf), spec.c_str(), arg.AsFloat());
      return std::string(buf);
    }
    case 'c': {
      if (arg.is_string() && UnitCount(arg.AsString()) == 1) return arg.AsString();
      if (arg.kind() == Value::Kind::kInt && arg.AsInt() >= 0 && arg.AsInt() <= 0x10FFFF &&
          !(arg.AsInt() >= 0xD800 && arg.AsInt() <= 0xDFFF)) {
        std::string s;
        AppendUtf8(static_cast<uint32_t>(arg.AsInt()), &s);
        return s;
      }
      return absl::InvalidArgumentError("%c requires int or char");
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported format character '", std::string(1, conv), "'"));
}

}  // namespace

absl::StatusOr<int64_t> ToInt(const Value& v) {
  if (v.kind() == Value::Kind::kBool || v.kind() == Value::Kind::kInt) return v.AsInt();
  if (v.kind() == Value::Kind::kFloat) {
    const double d = v.AsFloat();
    if (std::isnan(d)) return absl::InvalidArgumentError("cannot convert float NaN to integer");
    if (!(d > -9.3e18 && d < 9.3e18)) {
      return absl::InvalidArgumentError("float is too large to convert to a 64-bit integer");
    }
    return static_cast<int64_t>(d);
  }
  if (v.is_undefined()) return absl::InvalidArgumentError(v.UndefinedHint());
  return absl::InvalidArgumentError(
      absl::StrCat("int() argument must be a string, a bytes-like object or a real number, not '",
                   TypeName(v), "'"));
}

absl::StatusOr<Value> BinaryOperation(BinaryOp op, const Value& a, const Value& b, Budget& budget) {
  if (a.is_number() && b.is_number()) return NumberOperation(op, a, b);
  switch (op) {
    case BinaryOp::kAdd:
      if (a.is_string() && b.is_string()) {
        const size_t size = a.AsString().size() + b.AsString().size();
        RETURN_IF_ERROR(budget.CheckSize(size));
        RETURN_IF_ERROR(budget.ChargeBytes(size));
        return Value::String(a.AsString() + b.AsString());
      }
      if (a.is_list() && b.is_list() && a.AsList().is_tuple == b.AsList().is_tuple) {
        if (a.AsList().items.size() + b.AsList().items.size() > kMaxListItems) {
          return absl::InvalidArgumentError(
              absl::StrCat("list concatenation would make more than ", kMaxListItems, " items"));
        }
        RETURN_IF_ERROR(
            budget.Charge(static_cast<int64_t>(a.AsList().items.size() + b.AsList().items.size())));
        std::vector<Value> items = a.AsList().items;
        items.insert(items.end(), b.AsList().items.begin(), b.AsList().items.end());
        return a.AsList().is_tuple ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
      }
      break;
    case BinaryOp::kMul:
      if ((a.is_string() || a.is_list()) &&
          (b.kind() == Value::Kind::kInt || b.kind() == Value::Kind::kBool)) {
        return Repeat(a, b.AsInt(), budget);
      }
      if ((b.is_string() || b.is_list()) &&
          (a.kind() == Value::Kind::kInt || a.kind() == Value::Kind::kBool)) {
        return Repeat(b, a.AsInt(), budget);
      }
      break;
    case BinaryOp::kMod:
      if (a.is_string()) {
        ASSIGN_OR_RETURN(std::string s, PercentFormat(a.AsString(), b));
        RETURN_IF_ERROR(budget.CheckSize(s.size()));
        return Value::String(std::move(s));
      }
      break;
    case BinaryOp::kSub:
    case BinaryOp::kDiv:
    case BinaryOp::kFloorDiv:
    case BinaryOp::kPow:
      break;
  }
  return UnsupportedOperands(op, a, b);
}

absl::StatusOr<Value> Negate(const Value& v) {
  if (v.kind() == Value::Kind::kFloat) return Value::Float(-v.AsFloat());
  if (v.kind() == Value::Kind::kInt || v.kind() == Value::Kind::kBool) {
    if (v.AsInt() == std::numeric_limits<int64_t>::min()) return Overflow();
    return Value::Int(-v.AsInt());
  }
  if (v.is_undefined()) return absl::InvalidArgumentError(v.UndefinedHint());
  return absl::InvalidArgumentError(
      absl::StrCat("bad operand type for unary -: '", TypeName(v), "'"));
}

absl::StatusOr<Value> UnaryPlus(const Value& v) {
  if (v.kind() == Value::Kind::kFloat) return v;
  if (v.kind() == Value::Kind::kInt || v.kind() == Value::Kind::kBool) {
    return Value::Int(v.AsInt());
  }
  if (v.is_undefined()) return absl::InvalidArgumentError(v.UndefinedHint());
  return absl::InvalidArgumentError(
      absl::StrCat("bad operand type for unary +: '", TypeName(v), "'"));
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("'in <string>' requires string as left operand, not ", TypeName(item)));
      }
      return container.AsString().find(item.AsString()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.AsList().items) {
        if (Equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (item.is_list() && !item.AsList().is_tuple) {
        return absl::InvalidArgumentError("unhashable type: 'list'");
      }
      if (item.is_dict()) return absl::InvalidArgumentError("unhashable type: 'dict'");
      return container.AsDict().Find(item) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("argument of type '", TypeName(container), "' is not iterable"));
}

absl::StatusOr<bool> CompareOperation(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return Equals(a, b);
    case CompareOp::kNe:
      return !Equals(a, b);
    case CompareOp::kIn:
      return Contains(b, a);
    case CompareOp::kNotIn: {
      ASSIGN_OR_RETURN(bool in, Contains(b, a));
      return !in;
    }
    case CompareOp::kLt:
    case CompareOp::kLe:
    case CompareOp::kGt:
    case CompareOp::kGe:
      break;
  }
  if (a.is_undefined()) return absl::InvalidArgumentError(a.UndefinedHint());
  if (b.is_undefined()) return absl::InvalidArgumentError(b.UndefinedHint());
  absl::StatusOr<int> c = Compare(a, b);
  if (!c.ok()) {
    const char* symbol = op == CompareOp::kLt   ? "<"
                         : op == CompareOp::kLe ? "<="
                         : op == CompareOp::kGt ? ">"
                                                : ">=";
    return absl::InvalidArgumentError(absl::StrCat("'", symbol,
                                                   "' not supported between instances of '",
                                                   TypeName(a), "' and '", TypeName(b), "'"));
  }
  // NaN is unordered: every comparison with it is false.
  if ((a.kind() == Value::Kind::kFloat && std::isnan(a.AsFloat())) ||
      (b.kind() == Value::Kind::kFloat && std::isnan(b.AsFloat()))) {
    return false;
  }
  switch (op) {
    case CompareOp::kLt:
      return *c < 0;
    case CompareOp::kLe:
      return *c <= 0;
    case CompareOp::kGt:
      return *c > 0;
    case CompareOp::kGe:
      return *c >= 0;
    case CompareOp::kEq:
    case CompareOp::kNe:
    case CompareOp::kIn:
    case CompareOp::kNotIn:
      break;
  }
  return false;
}

absl::StatusOr<std::string> PercentFormat(std::string_view format, const Value& args) {
  std::vector<Value> positional;
  const DictData* mapping = nullptr;
  if (args.is_list() && args.AsList().is_tuple) {
    positional = args.AsList().items;
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args.AsDict();
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    ++i;
    if (i >= format.size()) return absl::InvalidArgumentError("incomplete format");
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    const Value* arg = nullptr;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string_view::npos)
        return absl::InvalidArgumentError("incomplete format key");
      if (mapping == nullptr) return absl::InvalidArgumentError("format requires a mapping");
      const std::string key(format.substr(i + 1, close - i - 1));
      arg = mapping->FindString(key);
      if (arg == nullptr) return absl::InvalidArgumentError(absl::StrCat("KeyError: '", key, "'"));
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() &&
           std::string_view("-+ 0#").find(format[i]) != std::string_view::npos) {
      flags += format[i++];
    }
    int width = -1;
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
      width = std::max(width, 0) * 10 + (format[i++] - '0');
      if (width > 10000) return absl::InvalidArgumentError("format width too large");
    }
    int precision = -1;
    if (i < format.size() && format[i] == '.') {
      ++i;
      precision = 0;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        precision = precision * 10 + (format[i++] - '0');
        if (precision > 10000) return absl::InvalidArgumentError("format precision too large");
      }
    }
    if (i < format.size() && (format[i] == 'l' || format[i] == 'h' || format[i] == 'L')) ++i;
    if (i >= format.size()) return absl::InvalidArgumentError("incomplete format");
    if (arg == nullptr) {
      if (next >= positional.size()) {
        return absl::InvalidArgumentError("not enough arguments for format string");
      }
      arg = &positional[next++];
    }
    ASSIGN_OR_RETURN(std::string piece, FormatOne(flags, width, precision, format[i], *arg));
    out += piece;
  }
  // CPython treats a non-tuple, non-str argument with __getitem__ (dict, list) as a possible
  // mapping and then does not require it to be used.
  const bool mapping_like = args.is_dict() || (args.is_list() && !args.AsList().is_tuple);
  if (!used_mapping && !mapping_like && next < positional.size()) {
    return absl::InvalidArgumentError("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace mswa::jinja
