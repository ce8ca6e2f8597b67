// Expression parsing (expression_parser.h), after the parse_* methods of Jinja's parser.py:
// the operator grammar down to primaries. What follows a primary (subscripts, calls, filters,
// tests) is in postfix_parser.cc.
#include "model/tokenizer/jinja/expression_parser.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/parser.h"

namespace mswa::jinja {
namespace {

int ChildDepth(const ExprPtr& e) { return e == nullptr ? 0 : e->depth; }

}  // namespace

ExprPtr NewExpr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

absl::Status SyntaxError(int line, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(message)));
}

std::string Describe(const Token& t) {
  switch (t.type) {
    case TokenType::kData:
      return "template text";
    case TokenType::kVariableBegin:
      return "'{{'";
    case TokenType::kVariableEnd:
      return "end of print statement '}}'";
    case TokenType::kBlockBegin:
      return "'{%'";
    case TokenType::kBlockEnd:
      return "end of statement block '%}'";
    case TokenType::kName:
    case TokenType::kOperator:
    case TokenType::kInteger:
    case TokenType::kFloat:
      return "'" + t.text + "'";
    case TokenType::kString:
      return "a string";
    case TokenType::kEof:
      return "end of template";
  }
  return "token";
}

absl::Status ExpressionParser::Unexpected(std::string_view expected) const {
  return SyntaxError(Cur().line,
                     absl::StrCat("expected ", std::string(expected), ", got ", Describe(Cur())));
}

absl::Status ExpressionParser::ExpectOp(std::string_view op) {
  if (!SkipOp(op)) return Unexpected(absl::StrCat("'", std::string(op), "'"));
  return absl::OkStatus();
}

absl::Status ExpressionParser::ExpectType(TokenType type, std::string_view what) {
  if (Cur().type != type) return Unexpected(what);
  Next();
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExpressionParser::ExpectName() {
  if (Cur().type != TokenType::kName) return Unexpected("a name");
  std::string name = Cur().text;
  Next();
  return name;
}

// Sets e's depth from its children and enforces kMaxExprDepth.
absl::StatusOr<ExprPtr> ExpressionParser::Done(ExprPtr e) {
  int d = std::max({ChildDepth(e->a), ChildDepth(e->b), ChildDepth(e->c)});
  for (const ExprPtr& item : e->items) d = std::max(d, ChildDepth(item));
  for (const ExprPtr& arg : e->args.positional) d = std::max(d, ChildDepth(arg));
  for (const auto& kw : e->args.keyword) d = std::max(d, ChildDepth(kw.second));
  e->depth = d + 1;
  if (e->depth > kMaxExprDepth) {
    return SyntaxError(e->line,
                       absl::StrCat("expression nested deeper than ", kMaxExprDepth, " levels"));
  }
  return e;
}

absl::Status ExpressionParser::EnterNesting(int line) const {
  if (nesting_ > kMaxExprDepth) {
    return SyntaxError(line,
                       absl::StrCat("expression nested deeper than ", kMaxExprDepth, " levels"));
  }
  return absl::OkStatus();
}

bool ExpressionParser::IsTupleEnd(std::initializer_list<std::string_view> extra_end_names) const {
  const Token& t = Cur();
  if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || IsOp(t, ")")) {
    return true;
  }
  for (std::string_view n : extra_end_names) {
    if (IsName(t, n)) return true;
  }
  return false;
}

// Expressions separated by commas: a tuple when there is a comma.
absl::StatusOr<ExprPtr> ExpressionParser::ParseTuple(
    bool with_condexpr, std::initializer_list<std::string_view> extra_end_names,
    bool explicit_parentheses) {
  const int line = Cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsTupleEnd(extra_end_names)) break;
    ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(with_condexpr));
    items.push_back(std::move(e));
    if (IsOp(Cur(), ",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parentheses) return Unexpected("an expression");
  }
  ExprPtr t = NewExpr(ExprKind::kTuple, line);
  t->items = std::move(items);
  return Done(std::move(t));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseExpression(bool with_condexpr) {
  RETURN_IF_ERROR(EnterNesting(Cur().line));
  DepthGuard guard(&nesting_);
  if (!with_condexpr) return ParseOr();
  const int line = Cur().line;
  ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
  while (SkipName("if")) {
    ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
    ExprPtr otherwise;
    if (SkipName("else")) {
      ASSIGN_OR_RETURN(otherwise, ParseExpression(true));
    }
    ExprPtr e = NewExpr(ExprKind::kCondExpr, line);
    e->a = std::move(cond);
    e->b = std::move(expr);
    e->c = std::move(otherwise);
    ASSIGN_OR_RETURN(expr, Done(std::move(e)));
  }
  return expr;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseOr() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
  while (IsName(Cur(), "or")) {
    const int line = Cur().line;
    Next();
    ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
    ExprPtr e = NewExpr(ExprKind::kOr, line);
    e->a = std::move(left);
    e->b = std::move(right);
    ASSIGN_OR_RETURN(left, Done(std::move(e)));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseAnd() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
  while (IsName(Cur(), "and")) {
    const int line = Cur().line;
    Next();
    ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
    ExprPtr e = NewExpr(ExprKind::kAnd, line);
    e->a = std::move(left);
    e->b = std::move(right);
    ASSIGN_OR_RETURN(left, Done(std::move(e)));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseNot() {
  if (IsName(Cur(), "not")) {
    const int line = Cur().line;
    Next();
    RETURN_IF_ERROR(EnterNesting(line));
    DepthGuard guard(&nesting_);
    ExprPtr e = NewExpr(ExprKind::kNot, line);
    ASSIGN_OR_RETURN(e->a, ParseNot());
    return Done(std::move(e));
  }
  return ParseCompare();
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCompare() {
  const int line = Cur().line;
  ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
  ExprPtr e;
  while (true) {
    CompareOp op;
    const Token& t = Cur();
    if (IsOp(t, "==")) {
      op = CompareOp::kEq;
    } else if (IsOp(t, "!=")) {
      op = CompareOp::kNe;
    } else if (IsOp(t, "<")) {
      op = CompareOp::kLt;
    } else if (IsOp(t, "<=")) {
      op = CompareOp::kLe;
    } else if (IsOp(t, ">")) {
      op = CompareOp::kGt;
    } else if (IsOp(t, ">=")) {
      op = CompareOp::kGe;
    } else if (IsName(t, "in")) {
      op = CompareOp::kIn;
    } else if (IsName(t, "not") && IsName(Peek(), "in")) {
      op = CompareOp::kNotIn;
      Next();
    } else {
      break;
    }
    Next();
    if (e == nullptr) {
      e = NewExpr(ExprKind::kCompare, line);
      e->a = std::move(first);
    }
    ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
    e->compare_ops.push_back(op);
    e->items.push_back(std::move(operand));
  }
  if (e == nullptr) return first;
  return Done(std::move(e));
}

absl::StatusOr<ExprPtr> ExpressionParser::Binary(BinaryOp op, ExprPtr left, ExprPtr right,
                                                 int line) {
  ExprPtr e = NewExpr(ExprKind::kBinary, line);
  e->binary_op = op;
  e->a = std::move(left);
  e->b = std::move(right);
  return Done(std::move(e));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseMath1() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
  while (IsOp(Cur(), "+") || IsOp(Cur(), "-")) {
    const BinaryOp op = Cur().text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
    const int line = Cur().line;
    Next();
    ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
    ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), line));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseConcat() {
  const int line = Cur().line;
  ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
  if (!IsOp(Cur(), "~")) return first;
  ExprPtr e = NewExpr(ExprKind::kConcat, line);
  e->items.push_back(std::move(first));
  while (SkipOp("~")) {
    ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
    e->items.push_back(std::move(next));
  }
  return Done(std::move(e));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseMath2() {
  ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
  while (true) {
    BinaryOp op;
    if (IsOp(Cur(), "*")) {
      op = BinaryOp::kMul;
    } else if (IsOp(Cur(), "/")) {
      op = BinaryOp::kDiv;
    } else if (IsOp(Cur(), "//")) {
      op = BinaryOp::kFloorDiv;
    } else if (IsOp(Cur(), "%")) {
      op = BinaryOp::kMod;
    } else {
      break;
    }
    const int line = Cur().line;
    Next();
    ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
    ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), line));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePow() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
  while (IsOp(Cur(), "**")) {
    const int line = Cur().line;
    Next();
    ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
    ASSIGN_OR_RETURN(left, Binary(BinaryOp::kPow, std::move(left), std::move(right), line));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseUnary(bool with_filter) {
  const int line = Cur().line;
  RETURN_IF_ERROR(EnterNesting(line));
  DepthGuard guard(&nesting_);
  ExprPtr node;
  if (IsOp(Cur(), "-") || IsOp(Cur(), "+")) {
    const ExprKind kind = Cur().text == "-" ? ExprKind::kNeg : ExprKind::kPos;
    Next();
    ExprPtr e = NewExpr(kind, line);
    ASSIGN_OR_RETURN(e->a, ParseUnary(false));
    ASSIGN_OR_RETURN(node, Done(std::move(e)));
  } else {
    ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePrimary() {
  const Token& t = Cur();
  const int line = t.line;
  switch (t.type) {
    case TokenType::kName: {
      ExprPtr e = NewExpr(ExprKind::kLiteral, line);
      if (t.text == "true" || t.text == "True") {
        e->literal = Value::Bool(true);
      } else if (t.text == "false" || t.text == "False") {
        e->literal = Value::Bool(false);
      } else if (t.text == "none" || t.text == "None") {
        e->literal = Value::None();
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
      }
      Next();
      return Done(std::move(e));
    }
    case TokenType::kString: {
      std::string s;
      while (Cur().type == TokenType::kString) {
        s += Cur().text;
        Next();
      }
      ExprPtr e = NewExpr(ExprKind::kLiteral, line);
      e->literal = Value::String(std::move(s));
      return Done(std::move(e));
    }
    case TokenType::kInteger: {
      ExprPtr e = NewExpr(ExprKind::kLiteral, line);
      e->literal = Value::Int(t.int_value);
      Next();
      return Done(std::move(e));
    }
    case TokenType::kFloat: {
      ExprPtr e = NewExpr(ExprKind::kLiteral, line);
      e->literal = Value::Float(t.float_value);
      Next();
      return Done(std::move(e));
    }
    case TokenType::kOperator:
      if (t.text == "(") {
        Next();
        ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(/*with_condexpr=*/true, {}, true));
        RETURN_IF_ERROR(ExpectOp(")"));
        return e;
      }
      if (t.text == "[") return ParseList();
      if (t.text == "{") return ParseDict();
      break;
    case TokenType::kData:
    case TokenType::kVariableBegin:
    case TokenType::kVariableEnd:
    case TokenType::kBlockBegin:
    case TokenType::kBlockEnd:
    case TokenType::kEof:
      break;
  }
  return SyntaxError(line, absl::StrCat("unexpected ", Describe(t)));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseList() {
  ExprPtr e = NewExpr(ExprKind::kList, Cur().line);
  RETURN_IF_ERROR(ExpectOp("["));
  while (!IsOp(Cur(), "]")) {
    if (!e->items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp(Cur(), "]")) break;
    ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
    e->items.push_back(std::move(item));
  }
  RETURN_IF_ERROR(ExpectOp("]"));
  return Done(std::move(e));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseDict() {
  ExprPtr e = NewExpr(ExprKind::kDict, Cur().line);
  RETURN_IF_ERROR(ExpectOp("{"));
  while (!IsOp(Cur(), "}")) {
    if (!e->items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp(Cur(), "}")) break;
    ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
    RETURN_IF_ERROR(ExpectOp(":"));
    ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
    e->items.push_back(std::move(key));
    e->items.push_back(std::move(value));
  }
  RETURN_IF_ERROR(ExpectOp("}"));
  return Done(std::move(e));
}

}  // namespace mswa::jinja
