#include "model/tokenizer/jinja/lexer.h"

#include <utf8proc.h>

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/py_string.h"
#include "model/tokenizer/utf8.h"

namespace mswa::jinja {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Length of the identifier character at s[pos] (Python's XID_Start, or XID_Continue when
// `start` is false, approximated by Unicode categories), 0 when there is none.
size_t NameCharLength(std::string_view s, size_t pos, bool start) {
  const char c = s[pos];
  if (IsAsciiNameStart(c) || (!start && IsDigit(c))) return 1;
  if (static_cast<unsigned char>(c) < 0x80) return 0;
  uint32_t cp = 0;
  const size_t len = DecodeUtf8(s, pos, &cp);
  if (len == 0) return 0;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
      return len;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return start ? 0 : len;
    default:
      return 0;
  }
}

absl::Status SyntaxError(int line, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(message)));
}

// \r\n and \r become \n; one trailing newline is dropped (keep_trailing_newline=False).
std::string NormalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      const size_t tag = FindTagStart(pos_);
      if (tag == std::string::npos) {
        EmitData(src_.substr(pos_), pos_);
        break;
      }
      RETURN_IF_ERROR(LexTag(tag));
    }
    Token eof{TokenType::kEof, ""};
    eof.line = LineAt(src_.size());
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  // Earliest "{{", "{%" or "{#" at or after `from`.
  size_t FindTagStart(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
        return p;
      }
    }
    return std::string::npos;
  }

  int LineAt(size_t pos) {
    // Positions are visited in increasing order, so the count is advanced incrementally.
    if (pos < line_pos_) {
      line_pos_ = 0;
      line_ = 1;
    }
    for (; line_pos_ < pos && line_pos_ < src_.size(); ++line_pos_) {
      if (src_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }

  bool IsSpaceAt(size_t pos, size_t* len) const {
    const unsigned char c = static_cast<unsigned char>(src_[pos]);
    if (c < 0x80) {
      *len = 1;
      return IsPySpace(c);
    }
    uint32_t cp = 0;
    *len = DecodeUtf8(src_, pos, &cp);
    if (*len == 0) {
      *len = 1;
      return false;
    }
    return IsPySpace(cp);
  }

  size_t SkipSpace(size_t pos) const {
    size_t len = 0;
    while (pos < src_.size() && IsSpaceAt(pos, &len)) pos += len;
    return pos;
  }

  void EmitData(std::string text, size_t at) {
    if (text.empty()) return;
    Token t{TokenType::kData, std::move(text)};
    t.line = LineAt(at);
    tokens_.push_back(std::move(t));
  }

  void Emit(TokenType type, std::string text, size_t at) {
    Token t{type, std::move(text)};
    t.line = LineAt(at);
    tokens_.push_back(std::move(t));
  }

  // Whitespace control of the text before a tag: '-' strips all trailing whitespace; otherwise
  // (unless '+' or a {{ tag) lstrip_blocks drops the whitespace between the last line start and
  // the tag.
  std::string StripBefore(std::string text, char sign, bool is_variable) const {
    if (sign == '-') return PyStrip(text, std::nullopt, false, true);
    if (sign == '+' || is_variable) return text;
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
    if ((l_pos > 0 || line_starting_) && PyIsSpace(std::string_view(text).substr(l_pos))) {
      text.resize(l_pos);
    }
    return text;
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` at `tag`; returns the end of the match or npos.
  size_t MatchRawBegin(size_t tag, bool* trailing_strip) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = SkipSpace(p);
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p = SkipSpace(p + 3);
    if (src_.compare(p, 3, "-%}") == 0) {
      *trailing_strip = true;
      return SkipSpace(p + 3);
    }
    if (src_.compare(p, 2, "%}") == 0) {
      *trailing_strip = false;
      return p + 2;
    }
    return std::string::npos;
  }

  // `{%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)` at `p`: its end, or npos.
  size_t MatchRawEnd(size_t p, char* sign) const {
    if (src_.compare(p, 2, "{%") != 0) return std::string::npos;
    size_t q = p + 2;
    *sign = 0;
    if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) *sign = src_[q++];
    q = SkipSpace(q);
    if (src_.compare(q, 6, "endraw") != 0) return std::string::npos;
    q = SkipSpace(q + 6);
    if (src_.compare(q, 3, "+%}") == 0) return q + 3;
    if (src_.compare(q, 3, "-%}") == 0) return SkipSpace(q + 3);
    if (src_.compare(q, 2, "%}") == 0) {
      q += 2;
      if (q < src_.size() && src_[q] == '\n') ++q;
      return q;
    }
    return std::string::npos;
  }

  void SetLineStarting(size_t match_end) {
    line_starting_ = match_end > 0 && src_[match_end - 1] == '\n';
  }

  absl::Status LexTag(size_t tag) {
    const char kind = src_[tag + 1];
    char sign = 0;
    if (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) {
      sign = src_[tag + 2];
    }
    std::string text = src_.substr(pos_, tag - pos_);
    EmitData(StripBefore(std::move(text), sign, kind == '{'), pos_);
    line_starting_ = false;
    const size_t body = tag + 2 + (sign != 0 ? 1 : 0);

    if (kind == '#') return LexComment(tag, body);
    if (kind == '%') {
      bool raw_strip = false;
      const size_t raw_end = MatchRawBegin(tag, &raw_strip);
      if (raw_end != std::string::npos) return LexRaw(tag, raw_end);
    }
    return LexExpressionTag(tag, body, kind == '{');
  }

  absl::Status LexComment(size_t tag, size_t body) {
    if (body >= src_.size()) {
      // Jinja's lexer stops without an error when the template ends right after "{#".
      pos_ = src_.size();
      return absl::OkStatus();
    }
    for (size_t p = body; p < src_.size(); ++p) {
      if (src_.compare(p, 3, "+#}") == 0) {
        pos_ = p + 3;
      } else if (src_.compare(p, 3, "-#}") == 0) {
        pos_ = SkipSpace(p + 3);
      } else if (src_.compare(p, 2, "#}") == 0) {
        pos_ = p + 2;
        if (pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
      } else {
        continue;
      }
      SetLineStarting(pos_);
      return absl::OkStatus();
    }
    return SyntaxError(LineAt(tag), "comment '{#' is not closed with '#}'");
  }

  absl::Status LexRaw(size_t tag, size_t content) {
    SetLineStarting(content);
    if (content >= src_.size()) {
      // As for comments: "{% raw %}" ending the template is accepted and produces nothing.
      pos_ = src_.size();
      return absl::OkStatus();
    }
    for (size_t p = src_.find("{%", content); p != std::string::npos; p = src_.find("{%", p + 1)) {
      char sign = 0;
      const size_t end = MatchRawEnd(p, &sign);
      if (end == std::string::npos) continue;
      EmitData(StripBefore(src_.substr(content, p - content), sign, false), content);
      pos_ = end;
      SetLineStarting(end);
      return absl::OkStatus();
    }
    return SyntaxError(LineAt(tag), "'{% raw %}' is not closed with '{% endraw %}'");
  }

  // The end delimiter of a tag at `p` (only when brackets are balanced): its end, or npos.
  size_t MatchTagEnd(size_t p, bool is_variable) const {
    if (!brackets_.empty()) return std::string::npos;
    if (is_variable) {
      if (src_.compare(p, 3, "-}}") == 0) return SkipSpace(p + 3);
      if (src_.compare(p, 2, "}}") == 0) return p + 2;
      return std::string::npos;
    }
    if (src_.compare(p, 3, "+%}") == 0) return p + 3;
    if (src_.compare(p, 3, "-%}") == 0) return SkipSpace(p + 3);
    if (src_.compare(p, 2, "%}") == 0) {
      size_t q = p + 2;
      if (q < src_.size() && src_[q] == '\n') ++q;  // trim_blocks
      return q;
    }
    return std::string::npos;
  }

  absl::Status LexExpressionTag(size_t tag, size_t body, bool is_variable) {
    Emit(is_variable ? TokenType::kVariableBegin : TokenType::kBlockBegin, "", tag);
    brackets_.clear();
    size_t p = body;
    while (true) {
      if (p >= src_.size()) {
        return SyntaxError(LineAt(tag),
                           absl::StrCat("unexpected end of template: '", is_variable ? "{{" : "{%",
                                        "' is not closed with '", is_variable ? "}}" : "%}", "'"));
      }
      const size_t end = MatchTagEnd(p, is_variable);
      if (end != std::string::npos) {
        Emit(is_variable ? TokenType::kVariableEnd : TokenType::kBlockEnd, "", p);
        pos_ = end;
        SetLineStarting(end);
        return absl::OkStatus();
      }
      size_t len = 0;
      if (IsSpaceAt(p, &len)) {
        p += len;
        continue;
      }
      ASSIGN_OR_RETURN(p, LexExpressionToken(p));
    }
  }

  // `(\d+_)*\d+` at p: its end, or p when there is no digit.
  size_t MatchDigits(size_t p) const {
    size_t q = p;
    while (q < src_.size() && IsDigit(src_[q])) ++q;
    if (q == p) return p;
    while (q + 1 < src_.size() && src_[q] == '_' && IsDigit(src_[q + 1])) {
      ++q;
      while (q < src_.size() && IsDigit(src_[q])) ++q;
    }
    return q;
  }

  // Jinja's float_re at p (not after a '.'): its end, or p.
  size_t MatchFloat(size_t p) const {
    if (p > 0 && src_[p - 1] == '.') return p;
    const size_t int_end = MatchDigits(p);
    if (int_end == p) return p;
    size_t q = int_end;
    bool fraction = false;
    if (q + 1 < src_.size() && src_[q] == '.' && IsDigit(src_[q + 1])) {
      q = MatchDigits(q + 1);
      fraction = true;
    }
    if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t e = q + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      const size_t exp_end = MatchDigits(e);
      if (exp_end != e) return exp_end;
    }
    return fraction ? q : p;
  }

  // Jinja's integer_re at p: its end, or p. Sets *base.
  size_t MatchInteger(size_t p, int* base) const {
    const auto run = [&](size_t q, auto is_digit) {
      // (_?digit)+
      size_t r = q;
      while (true) {
        size_t s = r;
        if (s < src_.size() && src_[s] == '_') ++s;
        if (s < src_.size() && is_digit(src_[s])) {
          r = s + 1;
        } else {
          return r;
        }
      }
    };
    if (src_[p] == '0' && p + 1 < src_.size()) {
      const char x = static_cast<char>(src_[p + 1] | 0x20);
      const auto bin = [](char c) { return c == '0' || c == '1'; };
      const auto oct = [](char c) { return c >= '0' && c <= '7'; };
      const auto hex = [](char c) {
        return IsDigit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
      };
      size_t end = p + 2;
      if (x == 'b' && (end = run(p + 2, bin)) > p + 2) return *base = 2, end;
      if (x == 'o' && (end = run(p + 2, oct)) > p + 2) return *base = 8, end;
      if (x == 'x' && (end = run(p + 2, hex)) > p + 2) return *base = 16, end;
    }
    *base = 10;
    if (src_[p] >= '1' && src_[p] <= '9') return run(p + 1, [](char c) { return IsDigit(c); });
    if (src_[p] == '0') return run(p + 1, [](char c) { return c == '0'; });
    return p;
  }

  absl::StatusOr<size_t> LexExpressionToken(size_t p) {
    const char c = src_[p];
    const int line = LineAt(p);
    if (IsDigit(c)) {
      size_t end = MatchFloat(p);
      if (end > p) {
        std::string digits;
        for (size_t i = p; i < end; ++i) {
          if (src_[i] != '_') digits += src_[i];
        }
        Token t{TokenType::kFloat, src_.substr(p, end - p)};
        t.float_value = std::strtod(digits.c_str(), nullptr);
        t.line = line;
        tokens_.push_back(std::move(t));
        return end;
      }
      int base = 10;
      end = MatchInteger(p, &base);
      std::string digits;
      for (size_t i = p + (base == 10 ? 0 : 2); i < end; ++i) {
        if (src_[i] != '_') digits += src_[i];
      }
      errno = 0;
      const unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
      if (errno == ERANGE ||
          v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) {
        return SyntaxError(line, absl::StrCat("integer literal ", src_.substr(p, end - p),
                                              " does not fit in 64 bits"));
      }
      Token t{TokenType::kInteger, src_.substr(p, end - p)};
      t.int_value = static_cast<int64_t>(v);
      t.line = line;
      tokens_.push_back(std::move(t));
      return end;
    }
    if (const size_t first = NameCharLength(src_, p, true); first > 0) {
      size_t end = p + first;
      for (size_t len; end < src_.size() && (len = NameCharLength(src_, end, false)) > 0;) {
        end += len;
      }
      Token t{TokenType::kName, src_.substr(p, end - p)};
      t.line = line;
      tokens_.push_back(std::move(t));
      return end;
    }
    if (c == '\'' || c == '"') return LexString(p);
    return LexOperator(p);
  }

  absl::StatusOr<size_t> LexString(size_t p) {
    const char quote = src_[p];
    const int line = LineAt(p);
    size_t end = p + 1;
    while (end < src_.size() && src_[end] != quote) {
      end += src_[end] == '\\' ? 2 : 1;
    }
    if (end >= src_.size()) return SyntaxError(line, "string literal is not closed");
    ASSIGN_OR_RETURN(std::string value,
                     Unescape(std::string_view(src_).substr(p + 1, end - p - 1), line));
    Token t{TokenType::kString, std::move(value)};
    t.line = line;
    tokens_.push_back(std::move(t));
    return end + 1;
  }

  // Python's "unicode-escape" decoding, which Jinja applies to string literals.
  static absl::StatusOr<std::string> Unescape(std::string_view s, int line) {
    std::string out;
    out.reserve(s.size());
    const auto hex_value = [](char h) -> int {
      if (h >= '0' && h <= '9') return h - '0';
      h = static_cast<char>(h | 0x20);
      if (h >= 'a' && h <= 'f') return h - 'a' + 10;
      return -1;
    };
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 >= s.size()) {
        out += s[i];
        continue;
      }
      const char e = s[++i];
      switch (e) {
        case '\n':
          break;
        case '\\':
        case '\'':
        case '"':
          out += e;
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < digits; ++k) {
            const int h = i + 1 + k < s.size() ? hex_value(s[i + 1 + k]) : -1;
            if (h < 0) {
              return SyntaxError(line, absl::StrCat("truncated \\", std::string(1, e),
                                                    " escape in a string literal"));
            }
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          i += digits;
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return SyntaxError(line, "string escape is not a Unicode scalar value");
          }
          AppendUtf8(cp, &out);
          break;
        }
        case 'N':
          return SyntaxError(line, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(s[++i] - '0');
            }
            AppendUtf8(cp, &out);
          } else {
            out += '\\';
            out += e;
          }
          break;
      }
    }
    return out;
  }

  absl::StatusOr<size_t> LexOperator(size_t p) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    const int line = LineAt(p);
    std::string op;
    for (const char* two : kTwo) {
      if (src_.compare(p, 2, two) == 0) op = two;
    }
    if (op.empty()) {
      const char c = src_[p];
      if (std::string_view("+-/*%~[](){}=.:|,;<>").find(c) == std::string_view::npos) {
        size_t len = Utf8UnitLength(src_, p);
        return SyntaxError(
            line, absl::StrCat("unexpected character '", src_.substr(p, len), "' in a tag"));
      }
      op = std::string(1, c);
      if (c == '(' || c == '[' || c == '{') {
        brackets_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (c == ')' || c == ']' || c == '}') {
        if (brackets_.empty()) return SyntaxError(line, absl::StrCat("unexpected '", op, "'"));
        if (brackets_.back() != c) {
          return SyntaxError(line, absl::StrCat("unexpected '", op, "', expected '",
                                                std::string(1, brackets_.back()), "'"));
        }
        brackets_.pop_back();
      }
    }
    Token t{TokenType::kOperator, op};
    t.line = line;
    tokens_.push_back(std::move(t));
    return p + op.size();
  }

  const std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::string brackets_;  // expected closing brackets, innermost last
  std::vector<Token> tokens_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source) {
  return Lexer(NormalizeNewlines(source)).Run();
}

}  // namespace mswa::jinja
