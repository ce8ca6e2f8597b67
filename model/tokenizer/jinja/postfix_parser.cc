// The postfix half of the expression grammar (expression_parser.h): what may follow a primary
// expression (`.attr`, `[subscript]`, `(call args)`, `| filter`, `is test`), after Jinja's
// parser.py parse_postfix / parse_filter_expr / parse_subscript / parse_call / parse_test.
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/expression_parser.h"

namespace mswa::jinja {

absl::StatusOr<ExprPtr> ExpressionParser::ParsePostfix(ExprPtr node) {
  while (true) {
    if (IsOp(Cur(), ".") || IsOp(Cur(), "[")) {
      ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
    } else if (IsOp(Cur(), "(")) {
      ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseFilterExpr(ExprPtr node) {
  while (true) {
    if (IsOp(Cur(), "|")) {
      ASSIGN_OR_RETURN(node, ParseFilters(std::move(node), false));
    } else if (IsName(Cur(), "is")) {
      ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else if (IsOp(Cur(), "(")) {
      ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscript(ExprPtr node) {
  const int line = Cur().line;
  if (SkipOp(".")) {
    const Token& attr = Cur();
    if (attr.type == TokenType::kName) {
      ExprPtr e = NewExpr(ExprKind::kGetAttr, line);
      e->a = std::move(node);
      e->name = attr.text;
      Next();
      return Done(std::move(e));
    }
    if (attr.type != TokenType::kInteger) return Unexpected("a name or number after '.'");
    ExprPtr index = NewExpr(ExprKind::kLiteral, attr.line);
    index->literal = Value::Int(attr.int_value);
    Next();
    ExprPtr e = NewExpr(ExprKind::kGetItem, line);
    e->a = std::move(node);
    e->b = std::move(index);
    return Done(std::move(e));
  }
  RETURN_IF_ERROR(ExpectOp("["));
  std::vector<ExprPtr> args;
  while (!IsOp(Cur(), "]")) {
    if (!args.empty()) RETURN_IF_ERROR(ExpectOp(","));
    ASSIGN_OR_RETURN(ExprPtr arg, ParseSubscribed());
    args.push_back(std::move(arg));
  }
  RETURN_IF_ERROR(ExpectOp("]"));
  if (args.empty()) return SyntaxError(line, "expected a subscript expression");
  if (args.size() > 1) {
    // x[a:b, c]: Jinja's parser accepts it, but the Python it compiles to does not (a slice
    // cannot be a tuple's item), so the template is rejected there.
    for (const ExprPtr& arg : args) {
      if (arg->kind == ExprKind::kSlice) return SyntaxError(line, "a slice cannot be one of several subscripts");
    }
  }
  if (args.size() == 1 && args[0]->kind == ExprKind::kSlice) {
    ExprPtr slice = std::move(args[0]);
    slice->a = std::move(node);
    return Done(std::move(slice));
  }
  ExprPtr index;
  if (args.size() == 1) {
    index = std::move(args[0]);
  } else {
    index = NewExpr(ExprKind::kTuple, line);
    index->items = std::move(args);
    ASSIGN_OR_RETURN(index, Done(std::move(index)));
  }
  ExprPtr e = NewExpr(ExprKind::kGetItem, line);
  e->a = std::move(node);
  e->b = std::move(index);
  return Done(std::move(e));
}

// An index expression or a slice a:b:c (any part may be omitted); a slice comes back as a
// kSlice node without its object.
absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscribed() {
  const int line = Cur().line;
  ExprPtr first;
  if (!IsOp(Cur(), ":")) {
    ASSIGN_OR_RETURN(first, ParseExpression(true));
    if (!IsOp(Cur(), ":")) return first;
  }
  Next();  // ':'
  ExprPtr slice = NewExpr(ExprKind::kSlice, line);
  slice->items.resize(3);
  slice->items[0] = std::move(first);
  if (!IsOp(Cur(), ":") && !IsOp(Cur(), "]") && !IsOp(Cur(), ",")) {
    ASSIGN_OR_RETURN(slice->items[1], ParseExpression(true));
  }
  if (SkipOp(":")) {
    if (!IsOp(Cur(), "]") && !IsOp(Cur(), ",")) {
      ASSIGN_OR_RETURN(slice->items[2], ParseExpression(true));
    }
  }
  return slice;
}

absl::Status ExpressionParser::ParseCallArgs(CallArgs* args) {
  const int line = Cur().line;
  RETURN_IF_ERROR(ExpectOp("("));
  bool require_comma = false;
  while (!IsOp(Cur(), ")")) {
    if (require_comma) {
      RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(Cur(), ")")) break;
    }
    if (IsOp(Cur(), "*") || IsOp(Cur(), "**")) {
      return SyntaxError(Cur().line, "*args and **kwargs in calls are not supported");
    }
    if (Cur().type == TokenType::kName && IsOp(Peek(), "=")) {
      std::string key = Cur().text;
      Next();
      Next();
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      args->keyword.emplace_back(std::move(key), std::move(value));
    } else {
      if (!args->keyword.empty()) {
        return SyntaxError(line, "positional argument follows keyword argument");
      }
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      args->positional.push_back(std::move(value));
    }
    require_comma = true;
  }
  return ExpectOp(")");
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCall(ExprPtr callee) {
  ExprPtr e = NewExpr(ExprKind::kCall, Cur().line);
  e->a = std::move(callee);
  RETURN_IF_ERROR(ParseCallArgs(&e->args));
  return Done(std::move(e));
}

// `| name[(args)]` repeated; with `start_inline` the first filter has no leading '|'
// ({% filter name %}).
absl::StatusOr<ExprPtr> ExpressionParser::ParseFilters(ExprPtr node, bool start_inline) {
  while (IsOp(Cur(), "|") || start_inline) {
    if (!start_inline) Next();
    start_inline = false;
    const int line = Cur().line;
    ASSIGN_OR_RETURN(std::string name, ExpectName());
    if (!IsKnownFilter(name)) {
      return SyntaxError(line, absl::StrCat("no filter named '", name, "'"));
    }
    ExprPtr e = NewExpr(ExprKind::kFilter, line);
    e->a = std::move(node);
    e->name = std::move(name);
    if (IsOp(Cur(), "(")) RETURN_IF_ERROR(ParseCallArgs(&e->args));
    ASSIGN_OR_RETURN(node, Done(std::move(e)));
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTest(ExprPtr node) {
  const int line = Cur().line;
  Next();  // 'is'
  const bool negated = SkipName("not");
  ASSIGN_OR_RETURN(std::string name, ExpectName());
  if (!IsKnownTest(name)) return SyntaxError(line, absl::StrCat("no test named '", name, "'"));
  ExprPtr e = NewExpr(ExprKind::kTest, line);
  e->a = std::move(node);
  e->name = std::move(name);
  e->negated = negated;
  const Token& t = Cur();
  if (IsOp(t, "(")) {
    RETURN_IF_ERROR(ParseCallArgs(&e->args));
  } else if ((t.type == TokenType::kName || t.type == TokenType::kString ||
              t.type == TokenType::kInteger || t.type == TokenType::kFloat || IsOp(t, "[") ||
              IsOp(t, "{")) &&
             !IsName(t, "else") && !IsName(t, "or") && !IsName(t, "and")) {
    if (IsName(t, "is")) return SyntaxError(t.line, "tests cannot be chained with 'is'");
    ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
    ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    e->args.positional.push_back(std::move(arg));
  }
  return Done(std::move(e));
}

}  // namespace mswa::jinja
