// The syntax tree of a parsed template: statements (text, output, if, for, set, macro, ...)
// holding expressions. Nodes are plain structs with the fields their kind uses; the parser
// builds them and the evaluator only reads them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // items
  kTuple,     // items
  kDict,      // items: key, value, key, value, ...
  kGetAttr,   // a.name: an attribute or method first, else the item `name`
  kGetItem,   // a[b]: the item first, else (for a str b) the attribute
  kSlice,     // a[items[0]:items[1]:items[2]] (null items are omitted bounds)
  kNeg,       // -a
  kPos,       // +a
  kNot,       // not a
  kBinary,    // a op b: op is + - * / // % **
  kConcat,    // items joined with ~
  kAnd,       // a and b
  kOr,        // a or b
  kCompare,   // a, then each (compare_ops[i], items[i])
  kTest,      // a is [not] name(args)
  kFilter,    // a | name(args); a is null in a filter block or `{% set x | f %}`
  kCall,      // a(args)
  kCondExpr,  // b if a else c (c may be null)
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value literal;
  std::string name;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  BinaryOp binary_op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  CallArgs args;
  bool negated = false;  // kTest: `is not`
  int depth = 1;         // 1 + the deepest child's depth
};

enum class StmtKind {
  kText,      // text
  kOutput,    // expr
  kIf,        // branches (condition, body) for if / elif; else_body
  kFor,       // targets in expr [if filter]: body, else_body
  kSet,       // targets = expr, or targets[0].attribute = expr
  kSetBlock,  // targets[0] = rendered body, through filter (null: none)
  kMacro,     // name(params): body
  kBreak,
  kContinue,
  kFilterBlock,  // body rendered, then through filter
  kWith,         // params (name = expr) visible in body only
  kScope,        // body in a scope of its own ({% generation %})
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  // kFor / kSet / kSetBlock: the names bound; unpacking when targets_are_tuple.
  std::vector<std::string> targets;
  bool targets_are_tuple = false;
  std::string attribute;  // kSet / kSetBlock on a namespace: targets[0].attribute
  ExprPtr filter;         // kFor: the `if` condition; kSetBlock / kFilterBlock: the filter chain
  std::string name;       // kMacro
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro defaults (null: none); kWith
};

struct Template {
  Body body;
};

}  // namespace mswa::jinja
