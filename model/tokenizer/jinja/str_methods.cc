// Python's str methods (str_methods.h).
#include "model/tokenizer/jinja/str_methods.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"
#include "model/tokenizer/utf8.h"

namespace mswa::jinja {
namespace {

// Every method of Python's str: looking one up gives a bound method; the ones CallStrMethod does
// not implement fail when called, naming the method.
constexpr std::string_view kStrMethods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};

absl::StatusOr<std::string> StrArg(std::string_view callee, const std::optional<Value>& v,
                                   std::string_view what) {
  if (!v.has_value() || !v->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(callee), ": ", std::string(what),
                                                   " must be str, not ",
                                                   v.has_value() ? TypeName(*v) : "nothing"));
  }
  return v->AsString();
}

// An optional str argument (None or unset: unset).
absl::StatusOr<std::optional<std::string>> OptionalStrArg(std::string_view callee,
                                                          const std::optional<Value>& v) {
  if (!v.has_value() || v->is_none()) return std::optional<std::string>();
  if (!v->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(callee), ": argument must be str or None, not ", TypeName(*v)));
  }
  return std::optional<std::string>(v->AsString());
}

absl::StatusOr<std::optional<int64_t>> OptionalIntArg(std::string_view callee,
                                                      const std::optional<Value>& v) {
  if (!v.has_value() || v->is_none()) return std::optional<int64_t>();
  if (v->kind() != Value::Kind::kInt && v->kind() != Value::Kind::kBool) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(callee), ": '", TypeName(*v),
                                                   "' object cannot be interpreted as an integer"));
  }
  return std::optional<int64_t>(v->AsInt());
}

Value StringList(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const std::string& p : parts) items.push_back(Value::String(p));
  return Value::List(std::move(items));
}

// str.ljust / rjust / center (and the `center` filter): pads to `width` units with `fill`.
std::string Pad(const std::string& s, int64_t width, char align, const std::string& fill) {
  const int64_t len = static_cast<int64_t>(UnitCount(s));
  if (width <= len) return s;
  const int64_t pad = width - len;
  int64_t left = 0;
  if (align == '>') left = pad;
  if (align == '^') left = pad / 2 + (pad & width & 1);  // CPython's centering
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < pad - left; ++i) out += fill;
  return out;
}

// Applies a format spec of Python's mini-language ([[fill]align][sign][0][width][.precision]
// [type]) to one value; grouping, '#' and 'n' are not supported.
absl::StatusOr<std::string> ApplyFormatSpec(const Value& v, std::string_view spec) {
  if (spec.empty()) return ToStr(v);
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  const auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  const std::vector<size_t> offsets = UnitOffsets(spec);
  if (offsets.size() > 2 && is_align(spec[offsets[1]])) {
    fill = std::string(spec.substr(0, offsets[1]));
    align = spec[offsets[1]];
    i = offsets[1] + 1;
  } else if (is_align(spec[0])) {
    align = spec[0];
    i = 1;
  }
  char sign = 0;
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  if (i < spec.size() && spec[i] == '0') {
    if (align == 0) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  int64_t width = 0;
  while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
    width = width * 10 + (spec[i++] - '0');
    if (width > 100000) return absl::InvalidArgumentError("format width too large");
  }
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    precision = 0;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
      precision = precision * 10 + (spec[i++] - '0');
      if (precision > 1000) return absl::InvalidArgumentError("format precision too large");
    }
  }
  char type = 0;
  if (i < spec.size()) type = spec[i++];
  if (i != spec.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported format spec '", std::string(spec), "'"));
  }
  std::string body;
  std::string sign_text;
  if (v.is_string() && (type == 0 || type == 's')) {
    body = v.AsString();
    if (precision >= 0) {
      const std::vector<size_t> units = UnitOffsets(body);
      if (static_cast<size_t>(precision) + 1 < units.size()) body.resize(units[precision]);
    }
    if (align == 0) align = '<';
  } else if (v.is_number() && type != 's') {
    std::string printf_spec = "%";
    if (precision >= 0) printf_spec += "." + std::to_string(precision);
    double magnitude = std::fabs(v.AsFloat());
    bool negative = v.AsFloat() < 0;
    char buf[512];
    if ((type == 0 || type == 'd') && v.kind() != Value::Kind::kFloat) {
      const int64_t n = v.AsInt();
      negative = n < 0;
      body = std::to_string(n);
      if (negative) body.erase(0, 1);
    } else if (type == 'x' || type == 'X' || type == 'o' || type == 'b') {
      ASSIGN_OR_RETURN(int64_t n, ToInt(v));
      if (v.kind() == Value::Kind::kFloat) {
        return absl::InvalidArgumentError("unknown format code for object of type 'float'");
      }
      negative = n < 0;
      uint64_t u = negative ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
      const int base = type == 'o' ? 8 : type == 'b' ? 2 : 16;
      const char* digits = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
      do {
        body.insert(body.begin(), digits[u % base]);
        u /= base;
      } while (u != 0);
    } else if (type == 0 && v.kind() == Value::Kind::kFloat && precision < 0) {
      body = PyFloatRepr(magnitude);
    } else {
      char conv = type == 0 ? 'g' : type;
      if (conv == '%') {
        magnitude *= 100;
        conv = 'f';
      }
      if (std::string_view("fFeEgG").find(conv) == std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown format code '", std::string(1, type), "'"));
      }
      if (precision < 0) printf_spec += ".6";
      printf_spec += conv;
      std::snprintf(buf, sizeof(buf), printf_spec.c_str(), magnitude);
      body = buf;
      if (type == '%') body += '%';
    }
    if (negative) {
      sign_text = "-";
    } else if (sign == '+' || sign == ' ') {
      sign_text = std::string(1, sign);
    }
    if (align == 0) align = '>';
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported format spec '", std::string(spec), "' for a ", TypeName(v)));
  }
  if (align == '=') {
    const int64_t len = static_cast<int64_t>(UnitCount(body) + UnitCount(sign_text));
    std::string out = sign_text;
    for (int64_t k = len; k < width; ++k) out += fill;
    return out + body;
  }
  return Pad(sign_text + body, width, align, fill);
}

// str.format(*args, **kwargs) with {} / {0} / {name}, .attr and [key] in fields, !s / !r
// conversions and ApplyFormatSpec specs.
absl::StatusOr<std::string> StrFormat(std::string_view fmt, const Args& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      return absl::InvalidArgumentError("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = fmt.find('}', i);
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("Single '{' encountered in format string");
    }
    std::string_view field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string_view spec;
    if (const size_t colon = field.find(':'); colon != std::string_view::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    char conversion = 0;
    if (const size_t bang = field.find('!'); bang != std::string_view::npos) {
      if (bang + 2 != field.size()) return absl::InvalidArgumentError("invalid conversion");
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    size_t name_end = field.find_first_of(".[");
    if (name_end == std::string_view::npos) name_end = field.size();
    const std::string_view name = field.substr(0, name_end);
    Value v;
    if (name.empty() ||
        std::all_of(name.begin(), name.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      const size_t index = name.empty() ? auto_index++ : std::stoul(std::string(name));
      if (index >= args.positional.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("Replacement index ", index, " out of range for positional args tuple"));
      }
      v = args.positional[index];
    } else {
      bool found = false;
      for (const auto& [key, value] : args.keyword) {
        if (key == name) {
          v = value;
          found = true;
        }
      }
      if (!found)
        return absl::InvalidArgumentError(absl::StrCat("KeyError: '", std::string(name), "'"));
    }
    for (size_t p = name_end; p < field.size();) {
      if (field[p] == '.') {
        size_t end = field.find_first_of(".[", p + 1);
        if (end == std::string_view::npos) end = field.size();
        const std::string_view attr = field.substr(p + 1, end - p - 1);
        if (attr.substr(0, 1) == "_") {
          return absl::InvalidArgumentError(
              absl::StrCat("access to attribute '", std::string(attr), "' is unsafe"));
        }
        ASSIGN_OR_RETURN(v, GetAttr(v, std::string(attr)));
        p = end;
      } else {
        const size_t end = field.find(']', p);
        if (end == std::string_view::npos)
          return absl::InvalidArgumentError("Missing ']' in format string");
        const std::string key(field.substr(p + 1, end - p - 1));
        Value k = Value::String(key);
        if (!key.empty() &&
            std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; })) {
          k = Value::Int(std::stoll(key));
        }
        ASSIGN_OR_RETURN(v, GetItem(v, k));
        p = end + 1;
      }
    }
    if (conversion == 'r') {
      v = Value::String(Repr(v));
    } else if (conversion == 's') {
      v = Value::String(ToStr(v));
    } else if (conversion != 0) {
      return absl::InvalidArgumentError("Unknown conversion specifier");
    }
    ASSIGN_OR_RETURN(std::string piece, ApplyFormatSpec(v, spec));
    out += piece;
  }
  return out;
}

absl::Status TooManyParts() {
  return absl::InvalidArgumentError(
      absl::StrCat("splitting would make more than ", kMaxListItems, " parts"));
}

// Refuses splits into more than kMaxListItems parts before building them (a long string of
// separators would otherwise allocate a string per byte).
absl::Status CheckSplitCount(const std::string& s, const std::optional<std::string>& sep,
                             int64_t maxsplit) {
  if (s.size() <= kMaxListItems ||
      (maxsplit >= 0 && static_cast<uint64_t>(maxsplit) < kMaxListItems)) {
    return absl::OkStatus();
  }
  size_t parts = 1;
  if (sep.has_value()) {
    for (size_t p = s.find(*sep); p != std::string::npos; p = s.find(*sep, p + sep->size())) {
      ++parts;
    }
  } else {
    parts = 0;
    bool in_space = true;
    for (size_t pos = 0; pos < s.size();) {
      uint32_t cp = 0;
      const size_t len = DecodeUtf8(s, pos, &cp);
      const bool space = len > 0 && IsPySpace(cp);
      if (!space && in_space) ++parts;
      in_space = space;
      pos += len == 0 ? 1 : len;
    }
  }
  return parts > kMaxListItems ? TooManyParts() : absl::OkStatus();
}

// Unit index of byte offset `byte` in `s`.
int64_t UnitIndex(const std::string& s, size_t byte) {
  return static_cast<int64_t>(UnitCount(std::string_view(s).substr(0, byte)));
}

}  // namespace

bool IsStrMethod(std::string_view name) {
  return std::find(std::begin(kStrMethods), std::end(kStrMethods), name) != std::end(kStrMethods);
}

absl::StatusOr<Value> CallStrMethod(const std::string& s, std::string_view name, const Args& args,
                                    Budget& budget) {
  const std::string callee = absl::StrCat("str.", std::string(name), "()");
  RETURN_IF_ERROR(budget.ChargeBytes(s.size()));
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"chars"}));
    ASSIGN_OR_RETURN(std::optional<std::string> chars, OptionalStrArg(callee, a[0]));
    return Value::String(PyStrip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"sep", "maxsplit"}));
    ASSIGN_OR_RETURN(std::optional<std::string> sep, OptionalStrArg(callee, a[0]));
    ASSIGN_OR_RETURN(std::optional<int64_t> maxsplit, OptionalIntArg(callee, a[1]));
    if (sep.has_value() && sep->empty()) return absl::InvalidArgumentError("empty separator");
    const int64_t limit = maxsplit.value_or(-1);
    RETURN_IF_ERROR(CheckSplitCount(s, sep, limit));
    return StringList(name == "split" ? PySplit(s, sep, limit) : PyRSplit(s, sep, limit));
  }
  if (name == "splitlines") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"keepends"}));
    if (s.size() > kMaxListItems &&
        static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) > kMaxListItems) {
      return TooManyParts();
    }
    return StringList(PySplitLines(s, a[0].has_value() && Truthy(*a[0])));
  }
  if (name == "startswith" || name == "endswith") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"prefix", "start", "end"}));
    ASSIGN_OR_RETURN(std::optional<int64_t> start, OptionalIntArg(callee, a[1]));
    ASSIGN_OR_RETURN(std::optional<int64_t> end, OptionalIntArg(callee, a[2]));
    std::vector<Value> candidates;
    if (a[0].has_value() && a[0]->is_list() && a[0]->AsList().is_tuple) {
      candidates = a[0]->AsList().items;
    } else if (a[0].has_value()) {
      candidates.push_back(*a[0]);
    }
    size_t begin = 0;
    size_t stop = s.size();
    UnitRangeToBytes(UnitOffsets(s), start, end, &begin, &stop);
    const std::string_view range = std::string_view(s).substr(begin, stop - begin);
    for (const Value& c : candidates) {
      ASSIGN_OR_RETURN(std::string affix, StrArg(callee, c, "the prefix"));
      if (range.size() < affix.size()) continue;
      if (name == "startswith" ? range.substr(0, affix.size()) == affix
                               : range.substr(range.size() - affix.size()) == affix) {
        return Value::Bool(true);
      }
    }
    if (candidates.empty()) return absl::InvalidArgumentError(callee + " takes a prefix");
    return Value::Bool(false);
  }
  if (name == "upper") return Value::String(PyUpper(s));
  if (name == "lower") return Value::String(PyLower(s));
  if (name == "title") return Value::String(PyTitle(s));
  if (name == "capitalize") return Value::String(PyCapitalize(s));
  if (name == "isalnum") return Value::Bool(PyIsAlnum(s));
  if (name == "isalpha") return Value::Bool(PyIsAlpha(s));
  if (name == "isdigit") return Value::Bool(PyIsDigit(s));
  if (name == "islower") return Value::Bool(PyIsLower(s));
  if (name == "isupper") return Value::Bool(PyIsUpper(s));
  if (name == "isspace") return Value::Bool(PyIsSpace(s));
  if (name == "replace") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"old", "new", "count"}));
    ASSIGN_OR_RETURN(std::string old, StrArg(callee, a[0], "old"));
    ASSIGN_OR_RETURN(std::string repl, StrArg(callee, a[1], "new"));
    ASSIGN_OR_RETURN(std::optional<int64_t> count, OptionalIntArg(callee, a[2]));
    std::string out = PyReplace(s, old, repl, count.value_or(-1));
    RETURN_IF_ERROR(budget.CheckSize(out.size()));
    return Value::String(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"affix"}));
    ASSIGN_OR_RETURN(std::string affix, StrArg(callee, a[0], "the argument"));
    if (name == "removeprefix" && s.compare(0, affix.size(), affix) == 0) {
      return Value::String(s.substr(affix.size()));
    }
    if (name == "removesuffix" && s.size() >= affix.size() &&
        s.compare(s.size() - affix.size(), affix.size(), affix) == 0) {
      return Value::String(s.substr(0, s.size() - affix.size()));
    }
    return Value::String(s);
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"sub", "start", "end"}));
    ASSIGN_OR_RETURN(std::string sub, StrArg(callee, a[0], "the substring"));
    ASSIGN_OR_RETURN(std::optional<int64_t> start, OptionalIntArg(callee, a[1]));
    ASSIGN_OR_RETURN(std::optional<int64_t> end, OptionalIntArg(callee, a[2]));
    size_t begin = 0;
    size_t stop = s.size();
    UnitRangeToBytes(UnitOffsets(s), start, end, &begin, &stop);
    const std::string_view range = std::string_view(s).substr(begin, stop - begin);
    if (name == "count") {
      if (sub.empty()) return Value::Int(static_cast<int64_t>(UnitCount(range)) + 1);
      int64_t n = 0;
      for (size_t p = range.find(sub); p != std::string_view::npos;
           p = range.find(sub, p + sub.size())) {
        ++n;
      }
      return Value::Int(n);
    }
    const size_t found = name == "find" || name == "index" ? range.find(sub) : range.rfind(sub);
    if (found == std::string_view::npos) {
      if (name == "index" || name == "rindex") {
        return absl::InvalidArgumentError("substring not found");
      }
      return Value::Int(-1);
    }
    return Value::Int(UnitIndex(s, begin + found));
  }
  if (name == "join") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"iterable"}));
    if (!a[0].has_value()) return absl::InvalidArgumentError(callee + " takes an iterable");
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(*a[0]));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sequence item ", i, ": expected str instance, ", TypeName(items[i]), " found"));
      }
      if (i > 0) out += s;
      out += items[i].AsString();
      RETURN_IF_ERROR(budget.CheckSize(out.size()));
    }
    return Value::String(std::move(out));
  }
  if (name == "ljust" || name == "rjust" || name == "center") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"width", "fillchar"}));
    ASSIGN_OR_RETURN(std::optional<int64_t> width, OptionalIntArg(callee, a[0]));
    std::string fill = " ";
    if (a[1].has_value()) {
      ASSIGN_OR_RETURN(fill, StrArg(callee, a[1], "the fill character"));
      if (UnitCount(fill) != 1) {
        return absl::InvalidArgumentError("The fill character must be exactly one character long");
      }
    }
    RETURN_IF_ERROR(budget.CheckSize(static_cast<size_t>(std::max<int64_t>(0, width.value_or(0)))));
    const char align = name == "ljust" ? '<' : name == "rjust" ? '>' : '^';
    return Value::String(Pad(s, width.value_or(0), align, fill));
  }
  if (name == "format") {
    ASSIGN_OR_RETURN(std::string out, StrFormat(s, args));
    RETURN_IF_ERROR(budget.CheckSize(out.size()));
    return Value::String(std::move(out));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the str method '", std::string(name), "' is not supported in chat templates"));
}

}  // namespace mswa::jinja
