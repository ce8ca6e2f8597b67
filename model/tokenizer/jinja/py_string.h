// Python `str` semantics on UTF-8 strings, for the chat-template interpreter.
//
// Python strings are sequences of code points; here a string is UTF-8 bytes and its elements
// are "units": a well-formed UTF-8 character, or one byte that does not start one (so any byte
// string has a well-defined length and slices never split a character). Indices, lengths and
// slices count units:  "héllo" has 5 units, "héllo"[1:3] == "él".
// Case mappings are utf8proc's one-to-one simple mappings (Python's full mappings differ on a
// few characters: "ß".upper() is "SS" in Python, "ß" here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mswa::jinja {

// Python's str.isspace() for one code point (the Unicode White_Space property plus the
// separators U+001C..U+001F); also what `\s` matches in Python's `re`.
bool IsPySpace(uint32_t cp);

// Byte offset of each unit's start, then s.size(): units(s) + 1 entries.
//   "aé" -> {0, 1, 3}
std::vector<size_t> UnitOffsets(std::string_view s);
size_t UnitCount(std::string_view s);
// The units of `s` as separate strings ("aé" -> {"a", "é"}).
std::vector<std::string> Units(std::string_view s);

// str.strip / lstrip / rstrip. `chars` unset: whitespace (IsPySpace); else any unit of `chars`.
std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, bool left,
                    bool right);
// True when every unit of `s` is whitespace and s is not empty (str.isspace()).
bool PyIsSpace(std::string_view s);

// str.split / rsplit. `sep` unset: runs of whitespace, no empty strings. maxsplit < 0: no limit.
// An empty `sep` is an error in Python; callers check it.
std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep,
                                 int64_t maxsplit);
std::vector<std::string> PyRSplit(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit);
// str.splitlines(keepends) for \n, \r\n, \r and the other Python line boundaries.
std::vector<std::string> PySplitLines(std::string_view s, bool keepends);

// str.replace(old, new, count); count < 0: all. An empty `old` inserts `repl` between units.
std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl,
                      int64_t count);

// Case mappings (see the file comment on their precision).
std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
// str.capitalize(): first unit title case, the rest lower case.
std::string PyCapitalize(std::string_view s);
// str.title(): title case after an uncased unit, lower case after a cased one.
std::string PyTitle(std::string_view s);
// Jinja's `title` filter: split at runs of '-', whitespace, '(', '{', '[', '<'; each piece gets
// its first unit upper-cased and the rest lower-cased ("hello-world" -> "Hello-World").
std::string JinjaTitle(std::string_view s);
bool PyIsUpper(std::string_view s);  // has a cased unit and no lower-case one
bool PyIsLower(std::string_view s);
bool PyIsAlpha(std::string_view s);
bool PyIsDigit(std::string_view s);
bool PyIsAlnum(std::string_view s);

// The byte range [begin, end) of units [start, stop) after Python's slice-index clamping of
// possibly negative or missing bounds. Used by find / count / startswith ranges.
void UnitRangeToBytes(const std::vector<size_t>& offsets, std::optional<int64_t> start,
                      std::optional<int64_t> stop, size_t* begin, size_t* end);

// repr(str): single quotes unless the text has ' and no ", escapes \\, the quote, \n \r \t,
// other control characters as \xNN; other characters as they are; bytes that are not UTF-8
// as \xNN.
std::string PyStrRepr(std::string_view s);
// repr(float): shortest round-trip digits; fixed notation for 1e-4 <= |x| < 1e16, with ".0"
// when integral; else d.ddde+XX. "inf", "-inf", "nan".
//   1.0 -> "1.0"   0.1+0.2 -> "0.30000000000000004"   1e16 -> "1e+16"   1e-05 -> "1e-05"
std::string PyFloatRepr(double x);

}  // namespace mswa::jinja
