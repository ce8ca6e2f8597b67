// Jinja2 template lexer with the options transformers compiles chat templates with:
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False (Jinja's lexer.py).
//
// Text between tags becomes kData tokens with whitespace control applied:
//   {%- / {{- / {#-   strip all whitespace (newlines included) before the tag;
//   -%} / -}} / -#}   strip all whitespace after it;
//   trim_blocks       one newline right after %} or #} is dropped (not after }}); "+%}" keeps it;
//   lstrip_blocks     spaces and tabs between a line start and {% or {# are dropped (not before
//                     {{); "{%+" keeps them;
//   a single newline at the very end of the template is dropped;
//   \r\n and \r become \n.
// {# comments #} produce nothing; {% raw %}...{% endraw %} produces its content as kData.
// Tags produce kBlockBegin/kVariableBegin, expression tokens, then kBlockEnd/kVariableEnd;
// an end delimiter inside unbalanced (), [] or {} is read as operators, as Jinja does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mswa::jinja {

enum class TokenType {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,    // `text` is the decoded value
  kInteger,   // `int_value`
  kFloat,     // `float_value`
  kOperator,  // `text`: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { } ;
  kEof,
};

struct Token {
  TokenType type;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;  // 1-based line of the token's first character
};

// InvalidArgument "line N: ..." for an unterminated tag, comment, string or raw block, an
// unexpected character, unbalanced brackets or an integer literal beyond 64 bits.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source);

}  // namespace mswa::jinja
