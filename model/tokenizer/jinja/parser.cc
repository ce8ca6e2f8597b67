// Statement parsing; expressions are in expression_parser.cc.
#include "model/tokenizer/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/expression_parser.h"
#include "model/tokenizer/jinja/lexer.h"

namespace mswa::jinja {
namespace {

class Parser : public ExpressionParser {
 public:
  explicit Parser(std::vector<Token> tokens) : ExpressionParser(std::move(tokens)) {}

  absl::StatusOr<Template> Run() {
    Template t;
    std::string found;
    ASSIGN_OR_RETURN(t.body, Subparse({}, "", 0, &found));
    return t;
  }

 private:
  absl::Status ExpectBlockEnd() { return ExpectType(TokenType::kBlockEnd, "'%}'"); }

  // ---- statements --------------------------------------------------------------------------

  // Parses until a block tag whose name is one of `end_tags` (left as the current token, *found
  // set to it) or, with no end tags, the end of the template. `opener` and `opener_line` name
  // the block being closed for the error at the end of the template.
  absl::StatusOr<Body> Subparse(std::initializer_list<std::string_view> end_tags,
                                std::string_view opener, int opener_line, std::string* found) {
    if (end_tags.size() > 0) open_blocks_.emplace_back(std::string(opener), opener_line);
    absl::StatusOr<Body> body = SubparseBody(end_tags, opener, opener_line, found);
    if (end_tags.size() > 0) open_blocks_.pop_back();
    return body;
  }

  absl::StatusOr<Body> SubparseBody(std::initializer_list<std::string_view> end_tags,
                                    std::string_view opener, int opener_line, std::string* found) {
    Body body;
    while (true) {
      const Token& t = Cur();
      switch (t.type) {
        case TokenType::kData: {
          auto s = std::make_unique<Stmt>();
          s->kind = StmtKind::kText;
          s->line = t.line;
          s->text = t.text;
          body.push_back(std::move(s));
          Next();
          break;
        }
        case TokenType::kVariableBegin: {
          const int line = t.line;
          Next();
          ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(/*with_condexpr=*/true, {}, false));
          RETURN_IF_ERROR(ExpectType(TokenType::kVariableEnd, "'}}'"));
          auto s = std::make_unique<Stmt>();
          s->kind = StmtKind::kOutput;
          s->line = line;
          s->expr = std::move(e);
          body.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          Next();
          const Token& tag = Cur();
          if (tag.type == TokenType::kName &&
              std::find(end_tags.begin(), end_tags.end(), tag.text) != end_tags.end()) {
            *found = tag.text;
            return body;
          }
          ASSIGN_OR_RETURN(StmtPtr s, ParseStatement());
          RETURN_IF_ERROR(ExpectBlockEnd());
          if (s != nullptr) body.push_back(std::move(s));
          break;
        }
        case TokenType::kEof: {
          if (end_tags.size() == 0) return body;
          std::vector<std::string> names;
          for (std::string_view n : end_tags)
            names.push_back(absl::StrCat("'", std::string(n), "'"));
          return SyntaxError(t.line,
                             absl::StrCat("unexpected end of template: the '", std::string(opener),
                                          "' block opened on line ", opener_line, " needs ",
                                          absl::StrJoin(names, " or ")));
        }
        case TokenType::kVariableEnd:
        case TokenType::kBlockEnd:
        case TokenType::kName:
        case TokenType::kString:
        case TokenType::kInteger:
        case TokenType::kFloat:
        case TokenType::kOperator:
          return SyntaxError(t.line, absl::StrCat("unexpected ", Describe(t)));
      }
    }
  }

  // `%}` then a body up to one of `end_tags`; consumes the end tag's name when `drop_needle`.
  absl::StatusOr<Body> ParseStatements(std::initializer_list<std::string_view> end_tags,
                                       std::string_view opener, int opener_line, bool drop_needle,
                                       std::string* found) {
    SkipOp(":");
    RETURN_IF_ERROR(ExpectBlockEnd());
    ASSIGN_OR_RETURN(Body body, Subparse(end_tags, opener, opener_line, found));
    if (drop_needle) Next();
    return body;
  }

  absl::StatusOr<StmtPtr> ParseStatement() {
    const Token& tag = Cur();
    if (tag.type != TokenType::kName) return SyntaxError(tag.line, "tag name expected");
    if (statement_depth_ >= kMaxStatementDepth) {
      return SyntaxError(tag.line,
                         absl::StrCat("blocks nested deeper than ", kMaxStatementDepth, " levels"));
    }
    DepthGuard guard(&statement_depth_);
    const std::string name = tag.text;
    const int line = tag.line;
    Next();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    std::string found;
    if (name == "if") {
      s->kind = StmtKind::kIf;
      while (true) {
        ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(/*with_condexpr=*/false, {}, false));
        ASSIGN_OR_RETURN(Body body,
                         ParseStatements({"elif", "else", "endif"}, "if", line, false, &found));
        s->branches.emplace_back(std::move(cond), std::move(body));
        Next();  // the elif / else / endif name
        if (found == "elif") continue;
        if (found == "else") {
          ASSIGN_OR_RETURN(s->else_body, ParseStatements({"endif"}, "if", line, true, &found));
        }
        break;
      }
      return s;
    }
    if (name == "for") {
      s->kind = StmtKind::kFor;
      RETURN_IF_ERROR(ParseTargets(s.get(), "in"));
      if (!SkipName("in")) return Unexpected("'in'");
      ASSIGN_OR_RETURN(s->expr, ParseTuple(/*with_condexpr=*/false, {"recursive"}, false));
      if (SkipName("if")) {
        ASSIGN_OR_RETURN(s->filter, ParseExpression(true));
      }
      if (IsName(Cur(), "recursive")) {
        return SyntaxError(Cur().line, "recursive for loops are not supported");
      }
      ++loop_depth_;
      absl::StatusOr<Body> body = ParseStatements({"endfor", "else"}, "for", line, false, &found);
      --loop_depth_;
      if (!body.ok()) return body.status();
      s->body = std::move(*body);
      Next();
      if (found == "else") {
        ASSIGN_OR_RETURN(s->else_body, ParseStatements({"endfor"}, "for", line, true, &found));
      }
      return s;
    }
    if (name == "set") {
      if (Cur().type == TokenType::kName && IsOp(Peek(), ".")) {
        s->targets.push_back(Cur().text);
        Next();
        Next();
        ASSIGN_OR_RETURN(s->attribute, ExpectName());
      } else {
        RETURN_IF_ERROR(ParseTargets(s.get(), ""));
      }
      if (SkipOp("=")) {
        s->kind = StmtKind::kSet;
        ASSIGN_OR_RETURN(s->expr, ParseTuple(/*with_condexpr=*/true, {}, false));
        return s;
      }
      s->kind = StmtKind::kSetBlock;
      if (s->targets_are_tuple) {
        return SyntaxError(line, "a {% set %} block assigns a single name");
      }
      if (IsOp(Cur(), "|")) {
        ASSIGN_OR_RETURN(s->filter, ParseFilters(nullptr, false));
      }
      ASSIGN_OR_RETURN(s->body, ParseStatements({"endset"}, "set", line, true, &found));
      return s;
    }
    if (name == "macro") {
      s->kind = StmtKind::kMacro;
      ASSIGN_OR_RETURN(s->name, ExpectName());
      RETURN_IF_ERROR(ExpectOp("("));
      bool defaults = false;
      while (!IsOp(Cur(), ")")) {
        if (!s->params.empty()) RETURN_IF_ERROR(ExpectOp(","));
        if (IsOp(Cur(), ")")) break;
        ASSIGN_OR_RETURN(std::string param, ExpectName());
        ExprPtr def;
        if (SkipOp("=")) {
          ASSIGN_OR_RETURN(def, ParseExpression(true));
          defaults = true;
        } else if (defaults) {
          return SyntaxError(Cur().line, "non-default argument follows default argument");
        }
        s->params.emplace_back(std::move(param), std::move(def));
      }
      RETURN_IF_ERROR(ExpectOp(")"));
      const int outer_loops = loop_depth_;
      loop_depth_ = 0;  // a macro body cannot break out of the loop it is defined in
      absl::StatusOr<Body> body = ParseStatements({"endmacro"}, "macro", line, true, &found);
      loop_depth_ = outer_loops;
      if (!body.ok()) return body.status();
      s->body = std::move(*body);
      return s;
    }
    if (name == "filter") {
      s->kind = StmtKind::kFilterBlock;
      ASSIGN_OR_RETURN(s->filter, ParseFilters(nullptr, true));
      ASSIGN_OR_RETURN(s->body, ParseStatements({"endfilter"}, "filter", line, true, &found));
      return s;
    }
    if (name == "with") {
      s->kind = StmtKind::kWith;
      while (Cur().type != TokenType::kBlockEnd) {
        if (!s->params.empty()) RETURN_IF_ERROR(ExpectOp(","));
        ASSIGN_OR_RETURN(std::string target, ExpectName());
        RETURN_IF_ERROR(ExpectOp("="));
        ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        s->params.emplace_back(std::move(target), std::move(value));
      }
      ASSIGN_OR_RETURN(s->body, ParseStatements({"endwith"}, "with", line, true, &found));
      return s;
    }
    if (name == "generation") {
      s->kind = StmtKind::kScope;
      ASSIGN_OR_RETURN(s->body,
                       ParseStatements({"endgeneration"}, "generation", line, true, &found));
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) {
        return SyntaxError(line, absl::StrCat("'", name, "' outside a for loop"));
      }
      s->kind = name == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      return s;
    }
    if (name == "print") {
      // {% print a, b %} writes a then b: the same as {{ a ~ b }}.
      s->kind = StmtKind::kOutput;
      auto concat = std::make_unique<Expr>();
      concat->kind = ExprKind::kConcat;
      concat->line = line;
      do {
        ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(/*with_condexpr=*/true));
        concat->depth = std::max(concat->depth, item->depth + 1);
        concat->items.push_back(std::move(item));
      } while (SkipOp(","));
      if (concat->depth > kMaxExprDepth) {
        return SyntaxError(
            line, absl::StrCat("expression nested deeper than ", kMaxExprDepth, " levels"));
      }
      s->expr = std::move(concat);
      return s;
    }
    if (name == "extends" || name == "block" || name == "include" || name == "import" ||
        name == "from" || name == "call" || name == "autoescape" || name == "do") {
      return SyntaxError(line, absl::StrCat("the '", name, "' tag is not supported"));
    }
    if (!open_blocks_.empty() && (name.rfind("end", 0) == 0 || name == "elif" || name == "else")) {
      const auto& [block, block_line] = open_blocks_.back();
      return SyntaxError(
          line, absl::StrCat("unexpected '", name, "': the '", block, "' block opened on line ",
                             block_line, " is still open"));
    }
    return SyntaxError(line, absl::StrCat("unknown tag '", name, "'"));
  }

  // Assignment targets: `a` or `a, b, ...` (optionally parenthesized), up to `end_name` (for
  // loops: "in") or '='/'|'/'%}' (set).
  absl::Status ParseTargets(Stmt* s, std::string_view end_name) {
    const bool parenthesized = SkipOp("(");
    while (true) {
      ASSIGN_OR_RETURN(std::string target, ExpectName());
      s->targets.push_back(std::move(target));
      if (!SkipOp(",")) break;
      s->targets_are_tuple = true;
      if (parenthesized && IsOp(Cur(), ")")) break;
      if (!end_name.empty() && IsName(Cur(), end_name)) break;
      if (end_name.empty() && (IsOp(Cur(), "=") || Cur().type == TokenType::kBlockEnd)) break;
    }
    if (parenthesized) {
      s->targets_are_tuple = true;
      RETURN_IF_ERROR(ExpectOp(")"));
    }
    return absl::OkStatus();
  }

  int statement_depth_ = 0;
  int loop_depth_ = 0;  // for-loop bodies around the current position
  std::vector<std::pair<std::string, int>> open_blocks_;  // (tag, line), innermost last
};

}  // namespace

absl::StatusOr<Template> Parse(std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  return Parser(std::move(tokens)).Run();
}

}  // namespace mswa::jinja
