// The expression half of the parser (parser.h): a cursor over the lexer's tokens and the
// recursive-descent expression grammar. The statement parser (parser.cc) derives from it.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/ast.h"
#include "model/tokenizer/jinja/lexer.h"

namespace mswa::jinja {

// InvalidArgument "line N: message".
absl::Status SyntaxError(int line, std::string_view message);
// A token as error messages name it: "'endfor'", "end of template", ...
std::string Describe(const Token& t);
// A node of `kind` at `line`, its other fields default.
ExprPtr NewExpr(ExprKind kind, int line);

// Counts nesting for the duration of a recursive parse call.
class DepthGuard {
 public:
  explicit DepthGuard(int* depth) : depth_(depth) { ++*depth_; }
  ~DepthGuard() { --*depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int* depth_;
};

class ExpressionParser {
 public:
  // `tokens` ends with kEof (as Tokenize returns them).
  explicit ExpressionParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  // Expressions separated by commas, a tuple when there is a comma; stops before '}}', '%}',
  // ')' or a name in `extra_end_names`. `with_condexpr` false leaves `x if y` unparsed (for
  // loops and if tags use the `if` themselves).
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr,
                                     std::initializer_list<std::string_view> extra_end_names,
                                     bool explicit_parentheses);
  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr);
  // `| name[(args)]` repeated; with `start_inline` the first has no '|' ({% filter name %}).
  // Unknown filter names are errors.
  absl::StatusOr<ExprPtr> ParseFilters(ExprPtr node, bool start_inline);

 protected:
  const Token& Cur() const { return tokens_[pos_]; }
  const Token& Peek(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  void Next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  static bool IsName(const Token& t, std::string_view name) {
    return t.type == TokenType::kName && t.text == name;
  }
  static bool IsOp(const Token& t, std::string_view op) {
    return t.type == TokenType::kOperator && t.text == op;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(Cur(), op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(Cur(), name)) return false;
    Next();
    return true;
  }
  absl::Status Unexpected(std::string_view expected) const;
  absl::Status ExpectOp(std::string_view op);
  absl::Status ExpectType(TokenType type, std::string_view what);
  absl::StatusOr<std::string> ExpectName();

 private:
  // Sets e's depth from its children and enforces kMaxExprDepth.
  absl::StatusOr<ExprPtr> Done(ExprPtr e);
  absl::Status EnterNesting(int line) const;
  bool IsTupleEnd(std::initializer_list<std::string_view> extra_end_names) const;
  absl::StatusOr<ExprPtr> ParseOr();
  absl::StatusOr<ExprPtr> ParseAnd();
  absl::StatusOr<ExprPtr> ParseNot();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> Binary(BinaryOp op, ExprPtr left, ExprPtr right, int line);
  absl::StatusOr<ExprPtr> ParseMath1();
  absl::StatusOr<ExprPtr> ParseConcat();
  absl::StatusOr<ExprPtr> ParseMath2();
  absl::StatusOr<ExprPtr> ParsePow();
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);
  absl::StatusOr<ExprPtr> ParsePrimary();
  absl::StatusOr<ExprPtr> ParseList();
  absl::StatusOr<ExprPtr> ParseDict();
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr node);
  // An index expression or a slice a:b:c (parts may be omitted); a slice comes back as a kSlice
  // node without its object.
  absl::StatusOr<ExprPtr> ParseSubscribed();
  absl::Status ParseCallArgs(CallArgs* args);
  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee);
  absl::StatusOr<ExprPtr> ParseTest(ExprPtr node);

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;  // recursive expression calls in progress
};

}  // namespace mswa::jinja
