#include "model/tokenizer/jinja/py_string.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "model/tokenizer/utf8.h"

namespace mswa::jinja {
namespace {

// A unit of `s` at `pos`: its byte length and code point (-1 for a byte that is not UTF-8).
struct Unit {
  size_t len;
  int32_t cp;
};

Unit UnitAt(std::string_view s, size_t pos) {
  uint32_t cp = 0;
  const size_t len = DecodeUtf8(s, pos, &cp);
  if (len == 0) return {1, -1};
  return {len, static_cast<int32_t>(cp)};
}

// Appends the unit at s[pos, pos + unit.len) with its code point replaced by `mapped` (kept as
// the original bytes when the unit is not UTF-8).
void AppendMapped(std::string_view s, size_t pos, Unit unit, int32_t mapped, std::string* out) {
  if (unit.cp < 0) {
    out->append(s.substr(pos, unit.len));
  } else {
    AppendUtf8(static_cast<uint32_t>(mapped), out);
  }
}

bool IsCased(int32_t cp) {
  if (cp < 0) return false;
  const utf8proc_category_t c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

bool IsLowerCp(int32_t cp) { return cp >= 0 && utf8proc_category(cp) == UTF8PROC_CATEGORY_LL; }
bool IsUpperCp(int32_t cp) {
  if (cp < 0) return false;
  const utf8proc_category_t c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT;
}

bool IsAlphaCp(int32_t cp) {
  if (cp < 0) return false;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

bool IsDigitCp(int32_t cp) { return cp >= 0 && utf8proc_category(cp) == UTF8PROC_CATEGORY_ND; }

// Python's str.isprintable() for one code point: not in Cc, Cf, Cs, Co, Cn, Zl, Zp, and not a
// Zs other than the space.
bool IsPrintable(int32_t cp) {
  if (cp == ' ') return true;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

template <typename Predicate>
bool AllUnits(std::string_view s, Predicate pred) {
  if (s.empty()) return false;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    if (!pred(u.cp)) return false;
    pos += u.len;
  }
  return true;
}

// Line boundaries of str.splitlines(): \n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029.
bool IsLineBoundary(int32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
         cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

bool IsPySpace(uint32_t cp) { return IsUnicodeWhitespace(cp) || (cp >= 0x1C && cp <= 0x1F); }

std::vector<size_t> UnitOffsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t pos = 0; pos < s.size(); pos += Utf8UnitLength(s, pos)) offsets.push_back(pos);
  offsets.push_back(s.size());
  return offsets;
}

size_t UnitCount(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); pos += Utf8UnitLength(s, pos)) ++n;
  return n;
}

std::vector<std::string> Units(std::string_view s) {
  std::vector<std::string> units;
  for (size_t pos = 0; pos < s.size();) {
    const size_t len = Utf8UnitLength(s, pos);
    units.emplace_back(s.substr(pos, len));
    pos += len;
  }
  return units;
}

std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, bool left,
                    bool right) {
  std::vector<int32_t> strip_set;
  if (chars.has_value()) {
    for (size_t pos = 0; pos < chars->size();) {
      const Unit u = UnitAt(*chars, pos);
      strip_set.push_back(u.cp < 0 ? -1000 - static_cast<unsigned char>((*chars)[pos]) : u.cp);
      pos += u.len;
    }
  }
  const std::vector<size_t> offsets = UnitOffsets(s);
  const size_t n = offsets.size() - 1;
  const auto strippable = [&](size_t i) {
    const Unit u = UnitAt(s, offsets[i]);
    if (!chars.has_value()) return u.cp >= 0 && IsPySpace(static_cast<uint32_t>(u.cp));
    const int32_t key = u.cp < 0 ? -1000 - static_cast<unsigned char>(s[offsets[i]]) : u.cp;
    return std::find(strip_set.begin(), strip_set.end(), key) != strip_set.end();
  };
  size_t begin = 0;
  size_t end = n;
  if (left) {
    while (begin < end && strippable(begin)) ++begin;
  }
  if (right) {
    while (end > begin && strippable(end - 1)) --end;
  }
  return std::string(s.substr(offsets[begin], offsets[end] - offsets[begin]));
}

bool PyIsSpace(std::string_view s) {
  return AllUnits(s, [](int32_t cp) { return cp >= 0 && IsPySpace(static_cast<uint32_t>(cp)); });
}

std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep,
                                 int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep.has_value()) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t found = s.find(*sep, start);
      if (found == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, found - start));
      start = found + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  size_t pos = 0;
  const auto is_space_at = [&](size_t p) {
    const Unit u = UnitAt(s, p);
    return u.cp >= 0 && IsPySpace(static_cast<uint32_t>(u.cp));
  };
  while (true) {
    while (pos < s.size() && is_space_at(pos)) pos += UnitAt(s, pos).len;
    if (pos >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      // The rest, with trailing whitespace kept (Python keeps it after the last split).
      parts.emplace_back(s.substr(pos));
      break;
    }
    const size_t start = pos;
    while (pos < s.size() && !is_space_at(pos)) pos += UnitAt(s, pos).len;
    parts.emplace_back(s.substr(start, pos - start));
  }
  return parts;
}

std::vector<std::string> PyRSplit(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit) {
  if (maxsplit < 0) return PySplit(s, sep, maxsplit);
  std::vector<std::string> parts;
  if (sep.has_value()) {
    size_t end = s.size();
    while (static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t found = s.rfind(*sep, end - sep->size());
      if (found == std::string_view::npos) break;
      parts.emplace_back(s.substr(found + sep->size(), end - found - sep->size()));
      end = found;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
    return parts;
  }
  const std::vector<size_t> offsets = UnitOffsets(s);
  const auto is_space = [&](size_t i) {
    const Unit u = UnitAt(s, offsets[i]);
    return u.cp >= 0 && IsPySpace(static_cast<uint32_t>(u.cp));
  };
  size_t i = offsets.size() - 1;  // units [0, i) remain
  while (true) {
    while (i > 0 && is_space(i - 1)) --i;
    if (i == 0) break;
    if (static_cast<int64_t>(parts.size()) == maxsplit) {
      parts.emplace_back(s.substr(0, offsets[i]));
      break;
    }
    const size_t end = i;
    while (i > 0 && !is_space(i - 1)) --i;
    parts.emplace_back(s.substr(offsets[i], offsets[end] - offsets[i]));
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> PySplitLines(std::string_view s, bool keepends) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    if (!IsLineBoundary(u.cp)) {
      pos += u.len;
      continue;
    }
    size_t end = pos + u.len;
    if (u.cp == '\r' && end < s.size() && s[end] == '\n') ++end;
    lines.emplace_back(s.substr(start, (keepends ? end : pos) - start));
    start = pos = end;
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl,
                      int64_t count) {
  std::string out;
  int64_t done = 0;
  if (old.empty()) {
    size_t pos = 0;
    while (true) {
      if (count < 0 || done < count) {
        out.append(repl);
        ++done;
      }
      if (pos >= s.size()) break;
      const size_t len = Utf8UnitLength(s, pos);
      out.append(s.substr(pos, len));
      pos += len;
    }
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t found = s.find(old, start);
    if (found == std::string_view::npos) break;
    out.append(s.substr(start, found - start));
    out.append(repl);
    start = found + old.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

std::string PyUpper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    AppendMapped(s, pos, u, u.cp < 0 ? 0 : utf8proc_toupper(u.cp), &out);
    pos += u.len;
  }
  return out;
}

std::string PyLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    AppendMapped(s, pos, u, u.cp < 0 ? 0 : utf8proc_tolower(u.cp), &out);
    pos += u.len;
  }
  return out;
}

std::string PyCapitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool first = true;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    const int32_t mapped = u.cp < 0 ? 0 : first ? utf8proc_totitle(u.cp) : utf8proc_tolower(u.cp);
    AppendMapped(s, pos, u, mapped, &out);
    first = false;
    pos += u.len;
  }
  return out;
}

std::string PyTitle(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool previous_cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    int32_t mapped = 0;
    if (u.cp >= 0) mapped = previous_cased ? utf8proc_tolower(u.cp) : utf8proc_totitle(u.cp);
    AppendMapped(s, pos, u, mapped, &out);
    previous_cased = IsCased(u.cp);
    pos += u.len;
  }
  return out;
}

std::string JinjaTitle(std::string_view s) {
  const auto is_separator = [](int32_t cp) {
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' ||
           (cp >= 0 && IsPySpace(static_cast<uint32_t>(cp)));
  };
  std::string out;
  out.reserve(s.size());
  bool piece_start = true;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    if (is_separator(u.cp)) {
      out.append(s.substr(pos, u.len));
      piece_start = true;
    } else {
      const int32_t mapped = u.cp < 0      ? 0
                             : piece_start ? utf8proc_toupper(u.cp)
                                           : utf8proc_tolower(u.cp);
      AppendMapped(s, pos, u, mapped, &out);
      piece_start = false;
    }
    pos += u.len;
  }
  return out;
}

bool PyIsUpper(std::string_view s) {
  bool cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    if (IsLowerCp(u.cp)) return false;
    cased = cased || IsUpperCp(u.cp);
    pos += u.len;
  }
  return cased;
}

bool PyIsLower(std::string_view s) {
  bool cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    if (IsUpperCp(u.cp)) return false;
    cased = cased || IsLowerCp(u.cp);
    pos += u.len;
  }
  return cased;
}

bool PyIsAlpha(std::string_view s) { return AllUnits(s, IsAlphaCp); }
bool PyIsDigit(std::string_view s) { return AllUnits(s, IsDigitCp); }
bool PyIsAlnum(std::string_view s) {
  return AllUnits(s, [](int32_t cp) { return IsAlphaCp(cp) || IsDigitCp(cp); });
}

void UnitRangeToBytes(const std::vector<size_t>& offsets, std::optional<int64_t> start,
                      std::optional<int64_t> stop, size_t* begin, size_t* end) {
  const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
  const auto clamp = [n](std::optional<int64_t> index, int64_t fallback) {
    if (!index.has_value()) return fallback;
    int64_t i = *index;
    if (i < 0) i = std::max<int64_t>(0, i + n);
    return std::min(i, n);
  };
  const int64_t b = clamp(start, 0);
  const int64_t e = std::max(b, clamp(stop, n));
  *begin = offsets[static_cast<size_t>(b)];
  *end = offsets[static_cast<size_t>(e)];
}

std::string PyStrRepr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  char buf[16];
  for (size_t pos = 0; pos < s.size();) {
    const Unit u = UnitAt(s, pos);
    if (u.cp < 0) {
      // Python cannot hold such a byte; show it as the escape of its byte value.
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(s[pos]));
      out += buf;
    } else if (u.cp == '\\') {
      out += "\\\\";
    } else if (u.cp == quote) {
      out += '\\';
      out += quote;
    } else if (u.cp == '\n') {
      out += "\\n";
    } else if (u.cp == '\r') {
      out += "\\r";
    } else if (u.cp == '\t') {
      out += "\\t";
    } else if (!IsPrintable(u.cp)) {
      if (u.cp < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", u.cp);
      } else if (u.cp < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", u.cp);
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", u.cp);
      }
      out += buf;
    } else {
      out.append(s.substr(pos, u.len));
    }
    pos += u.len;
  }
  out += quote;
  return out;
}

std::string PyFloatRepr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  // Shortest round-trip digits in scientific form: "-1.2345e+02".
  const std::to_chars_result r =
      std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  const size_t e_pos = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_pos);
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  std::string out;
  if (!mantissa.empty() && mantissa[0] == '-') {
    out += '-';
    mantissa.remove_prefix(1);
  }
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  const int decpt = exponent + 1;  // digits[0] sits at 10^(decpt-1)
  const int ndigits = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= ndigits) {
      out += digits;
      out.append(static_cast<size_t>(decpt - ndigits), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out += '.';
      out += digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits[0];
  if (ndigits > 1) {
    out += '.';
    out += digits.substr(1);
  }
  std::snprintf(buf, sizeof(buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out += buf;
  return out;
}

}  // namespace mswa::jinja
