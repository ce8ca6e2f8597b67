#include "model/tokenizer/jinja/evaluator.h"

#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/operators.h"

namespace mswa::jinja {

// Variables of one scope; lookups continue in the parent.
struct Scope {
  std::shared_ptr<Scope> parent;
  absl::flat_hash_map<std::string, Value> vars;
};

namespace {

constexpr char kLinePayload[] = "mswa.jinja.line";

// Prefixes "line N: " once (the innermost node that knows its line wins); raise_exception's
// message stays as the template wrote it.
absl::Status AtLine(absl::Status status, int line) {
  if (status.ok() || IsRaisedByTemplate(status) || status.GetPayload(kLinePayload).has_value()) {
    return status;
  }
  absl::Status out(status.code(), absl::StrCat("line ", line, ": ", status.message()));
  out.SetPayload(kLinePayload, absl::Cord("1"));
  return out;
}

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  explicit Renderer(const RenderLimits& limits)
      : limits_(limits), budget_(limits.max_output_bytes, limits.max_steps) {}

  absl::StatusOr<std::string> Run(const Template& tmpl, const Value& context) {
    root_ = std::make_shared<Scope>();
    if (context.is_dict()) {
      for (const auto& [key, value] : context.AsDict().entries()) {
        if (key.is_string()) root_->vars[key.AsString()] = value;
      }
    }
    scope_ = root_;
    std::string out;
    RETURN_IF_ERROR(ExecBody(tmpl.body, &out).status());
    return out;
  }

 private:
  // Counts nested frames for the duration of one Eval / ExecBody / macro call.
  class Frame {
   public:
    explicit Frame(Renderer* r) : r_(r) { ++r_->depth_; }
    ~Frame() { --r_->depth_; }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;
    bool too_deep() const { return r_->depth_ > kMaxRenderDepth; }

   private:
    Renderer* r_;
  };

  // Runs `fn` with `scope` as the current scope, restoring the previous one afterwards.
  template <typename Fn>
  auto InScope(std::shared_ptr<Scope> scope, Fn fn) {
    std::shared_ptr<Scope> saved = std::move(scope_);
    scope_ = std::move(scope);
    auto result = fn();
    scope_ = std::move(saved);
    return result;
  }

  std::shared_ptr<Scope> ChildScope() const {
    auto s = std::make_shared<Scope>();
    s->parent = scope_;
    return s;
  }

  absl::Status TooDeep() const {
    return absl::InvalidArgumentError(
        absl::StrCat("template evaluation nested deeper than ", kMaxRenderDepth,
                     " levels (deeply nested expressions or macro recursion)"));
  }

  absl::Status Append(std::string* out, std::string_view text) {
    produced_ += text.size();
    RETURN_IF_ERROR(budget_.CheckSize(produced_));
    RETURN_IF_ERROR(budget_.ChargeBytes(text.size()));
    out->append(text);
    return absl::OkStatus();
  }

  Value Lookup(const std::string& name) const {
    for (const Scope* s = scope_.get(); s != nullptr; s = s->parent.get()) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    if (IsGlobal(name)) {
      CallableData c;
      c.kind = CallableData::Kind::kGlobal;
      c.name = name;
      return Value::Callable(std::move(c));
    }
    return Value::Undefined(absl::StrCat("'", name, "' is undefined"));
  }

  // Binds `value` to `targets` in the current scope, unpacking when there are several.
  absl::Status Assign(const std::vector<std::string>& targets, bool unpack, const Value& value) {
    if (!unpack) {
      scope_->vars[targets[0]] = value;
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(budget_.ChargeFor(value));
    ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(value));
    if (parts.size() != targets.size()) {
      if (parts.size() > targets.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("too many values to unpack (expected ", targets.size(), ")"));
      }
      return absl::InvalidArgumentError(absl::StrCat("not enough values to unpack (expected ",
                                                     targets.size(), ", got ", parts.size(), ")"));
    }
    for (size_t i = 0; i < targets.size(); ++i) scope_->vars[targets[i]] = parts[i];
    return absl::OkStatus();
  }

  // ---- statements --------------------------------------------------------------------------

  absl::StatusOr<Flow> ExecBody(const Body& body, std::string* out) {
    Frame frame(this);
    if (frame.too_deep()) return TooDeep();
    for (const StmtPtr& s : body) {
      absl::StatusOr<Flow> flow = Exec(*s, out);
      if (!flow.ok()) return AtLine(flow.status(), s->line);
      if (*flow != Flow::kNormal) return *flow;
    }
    return Flow::kNormal;
  }

  absl::StatusOr<Flow> Exec(const Stmt& s, std::string* out) {
    switch (s.kind) {
      case StmtKind::kText:
        RETURN_IF_ERROR(Append(out, s.text));
        return Flow::kNormal;
      case StmtKind::kOutput: {
        ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
        RETURN_IF_ERROR(Append(out, v.is_string() ? v.AsString() : ToStr(v)));
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (const auto& [condition, body] : s.branches) {
          ASSIGN_OR_RETURN(Value v, Eval(*condition));
          if (Truthy(v)) return ExecBody(body, out);
        }
        return ExecBody(s.else_body, out);
      case StmtKind::kFor:
        RETURN_IF_ERROR(ExecFor(s, out));
        return Flow::kNormal;
      case StmtKind::kSet: {
        ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
        RETURN_IF_ERROR(Store(s, std::move(v)));
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        std::string text;
        RETURN_IF_ERROR(ExecBody(s.body, &text).status());
        Value v = Value::String(std::move(text));
        if (s.filter != nullptr) {
          ASSIGN_OR_RETURN(v, ApplyFilterChain(*s.filter, v));
        }
        RETURN_IF_ERROR(Store(s, std::move(v)));
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        CallableData c;
        c.kind = CallableData::Kind::kMacro;
        c.name = s.name;
        c.macro = &s;
        c.scope = scope_;
        scope_->vars[s.name] = Value::Callable(std::move(c));
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kFilterBlock: {
        std::string text;
        RETURN_IF_ERROR(InScope(ChildScope(), [&] { return ExecBody(s.body, &text); }).status());
        ASSIGN_OR_RETURN(Value v, ApplyFilterChain(*s.filter, Value::String(std::move(text))));
        RETURN_IF_ERROR(Append(out, ToStr(v)));
        return Flow::kNormal;
      }
      case StmtKind::kWith: {
        std::shared_ptr<Scope> scope = ChildScope();
        for (const auto& [name, expr] : s.params) {
          ASSIGN_OR_RETURN(Value v, Eval(*expr));
          scope->vars[name] = std::move(v);
        }
        return InScope(std::move(scope), [&] { return ExecBody(s.body, out); });
      }
      case StmtKind::kScope:
        return InScope(ChildScope(), [&] { return ExecBody(s.body, out); });
    }
    return absl::InternalError("unknown statement");
  }

  absl::Status Store(const Stmt& s, Value v) {
    if (!s.attribute.empty()) {
      const Value ns = Lookup(s.targets[0]);
      if (ns.kind() != Value::Kind::kNamespace) {
        return absl::InvalidArgumentError("cannot assign attribute on non-namespace object");
      }
      ns.AsNamespace().attrs.Set(Value::String(s.attribute), std::move(v));
      return absl::OkStatus();
    }
    return Assign(s.targets, s.targets_are_tuple, v);
  }

  static Value LoopInfo(const std::vector<Value>& items, size_t i) {
    const int64_t n = static_cast<int64_t>(items.size());
    const int64_t k = static_cast<int64_t>(i);
    DictData loop;
    loop.Set(Value::String("index"), Value::Int(k + 1));
    loop.Set(Value::String("index0"), Value::Int(k));
    loop.Set(Value::String("revindex"), Value::Int(n - k));
    loop.Set(Value::String("revindex0"), Value::Int(n - k - 1));
    loop.Set(Value::String("first"), Value::Bool(k == 0));
    loop.Set(Value::String("last"), Value::Bool(k == n - 1));
    loop.Set(Value::String("length"), Value::Int(n));
    loop.Set(Value::String("depth"), Value::Int(1));
    loop.Set(Value::String("depth0"), Value::Int(0));
    loop.Set(Value::String("previtem"),
             k > 0 ? items[i - 1] : Value::Undefined("there is no previous item"));
    loop.Set(Value::String("nextitem"),
             k + 1 < n ? items[i + 1] : Value::Undefined("there is no next item"));
    CallableData cycle;
    cycle.kind = CallableData::Kind::kGlobal;
    cycle.name = "loop.cycle";
    cycle.receiver = Value::Int(k);
    loop.Set(Value::String("cycle"), Value::Callable(std::move(cycle)));
    return Value::Dict(std::move(loop));
  }

  absl::Status ExecFor(const Stmt& s, std::string* out) {
    ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr));
    RETURN_IF_ERROR(budget_.ChargeFor(iterable));
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable));
    const bool unpack = s.targets_are_tuple || s.targets.size() > 1;
    if (s.filter != nullptr) {
      // The `if` clause filters before the loop starts, so loop.length counts what passes.
      std::vector<Value> kept;
      for (Value& item : items) {
        RETURN_IF_ERROR(budget_.Charge(1));
        ASSIGN_OR_RETURN(bool pass, InScope(ChildScope(), [&]() -> absl::StatusOr<bool> {
                           RETURN_IF_ERROR(Assign(s.targets, unpack, item));
                           ASSIGN_OR_RETURN(Value v, Eval(*s.filter));
                           return Truthy(v);
                         }));
        if (pass) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return ExecBody(s.else_body, out).status();
    for (size_t i = 0; i < items.size(); ++i) {
      RETURN_IF_ERROR(budget_.Charge(1));
      ASSIGN_OR_RETURN(Flow flow, InScope(ChildScope(), [&]() -> absl::StatusOr<Flow> {
                         RETURN_IF_ERROR(Assign(s.targets, unpack, items[i]));
                         scope_->vars["loop"] = LoopInfo(items, i);
                         return ExecBody(s.body, out);
                       }));
      if (flow == Flow::kBreak) break;
    }
    return absl::OkStatus();
  }

  // ---- expressions -------------------------------------------------------------------------

  absl::StatusOr<Value> Eval(const Expr& e) {
    Frame frame(this);
    if (frame.too_deep()) return TooDeep();
    absl::StatusOr<Value> v = EvalKind(e);
    if (!v.ok()) return AtLine(v.status(), e.line);
    return v;
  }

  absl::StatusOr<Args> EvalArgs(const CallArgs& call) {
    Args args;
    for (const ExprPtr& p : call.positional) {
      ASSIGN_OR_RETURN(Value v, Eval(*p));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [key, expr] : call.keyword) {
      ASSIGN_OR_RETURN(Value v, Eval(*expr));
      args.keyword.emplace_back(key, std::move(v));
    }
    return args;
  }

  absl::Status CheckDepth(const Value& v) const {
    if (v.depth() <= kMaxValueDepth) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("value nested deeper than ", kMaxValueDepth, " levels"));
  }

  absl::StatusOr<Value> EvalKind(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.literal;
      case ExprKind::kName:
        return Lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        std::vector<Value> items;
        items.reserve(e.items.size());
        for (const ExprPtr& item : e.items) {
          ASSIGN_OR_RETURN(Value v, Eval(*item));
          items.push_back(std::move(v));
        }
        Value v = e.kind == ExprKind::kList ? Value::List(std::move(items))
                                            : Value::Tuple(std::move(items));
        RETURN_IF_ERROR(CheckDepth(v));
        return v;
      }
      case ExprKind::kDict: {
        DictData dict;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          ASSIGN_OR_RETURN(Value key, Eval(*e.items[i]));
          ASSIGN_OR_RETURN(Value value, Eval(*e.items[i + 1]));
          if ((key.is_list() && !key.AsList().is_tuple) || key.is_dict() || key.is_undefined() ||
              key.kind() == Value::Kind::kNamespace) {
            return absl::InvalidArgumentError(
                absl::StrCat("unhashable type: '", TypeName(key), "'"));
          }
          dict.Set(std::move(key), std::move(value));
        }
        Value v = Value::Dict(std::move(dict));
        RETURN_IF_ERROR(CheckDepth(v));
        return v;
      }
      case ExprKind::kGetAttr: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.a));
        return GetAttr(obj, e.name);
      }
      case ExprKind::kGetItem: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.a));
        ASSIGN_OR_RETURN(Value key, Eval(*e.b));
        if (obj.is_string()) RETURN_IF_ERROR(budget_.ChargeFor(obj));  // indexes by character
        return GetItem(obj, key);
      }
      case ExprKind::kSlice: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.a));
        Value bounds[3] = {Value::None(), Value::None(), Value::None()};
        for (size_t i = 0; i < 3; ++i) {
          if (e.items[i] != nullptr) {
            ASSIGN_OR_RETURN(bounds[i], Eval(*e.items[i]));
          }
        }
        if (obj.is_string()) RETURN_IF_ERROR(budget_.ChargeFor(obj));
        return GetSlice(obj, bounds[0], bounds[1], bounds[2], budget_);
      }
      case ExprKind::kNeg: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.a));
        return Negate(v);
      }
      case ExprKind::kPos: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.a));
        return UnaryPlus(v);
      }
      case ExprKind::kNot: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.a));
        return Value::Bool(!Truthy(v));
      }
      case ExprKind::kBinary: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.a));
        ASSIGN_OR_RETURN(Value b, Eval(*e.b));
        RETURN_IF_ERROR(budget_.ChargeFor(a));
        RETURN_IF_ERROR(budget_.ChargeFor(b));
        return BinaryOperation(e.binary_op, a, b, budget_);
      }
      case ExprKind::kConcat: {
        std::string s;
        for (const ExprPtr& item : e.items) {
          ASSIGN_OR_RETURN(Value v, Eval(*item));
          s += v.is_string() ? v.AsString() : ToStr(v);
          RETURN_IF_ERROR(budget_.CheckSize(s.size()));
        }
        RETURN_IF_ERROR(budget_.ChargeBytes(s.size()));
        return Value::String(std::move(s));
      }
      case ExprKind::kAnd: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.a));
        if (!Truthy(a)) return a;
        return Eval(*e.b);
      }
      case ExprKind::kOr: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.a));
        if (Truthy(a)) return a;
        return Eval(*e.b);
      }
      case ExprKind::kCompare: {
        ASSIGN_OR_RETURN(Value left, Eval(*e.a));
        for (size_t i = 0; i < e.items.size(); ++i) {
          ASSIGN_OR_RETURN(Value right, Eval(*e.items[i]));
          RETURN_IF_ERROR(budget_.ChargeFor(left));
          RETURN_IF_ERROR(budget_.ChargeFor(right));
          ASSIGN_OR_RETURN(bool ok, CompareOperation(e.compare_ops[i], left, right));
          if (!ok) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case ExprKind::kTest: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.a));
        ASSIGN_OR_RETURN(Args args, EvalArgs(e.args));
        if (v.is_string()) RETURN_IF_ERROR(budget_.ChargeFor(v));
        for (const Value& arg : args.positional) RETURN_IF_ERROR(budget_.ChargeFor(arg));
        ASSIGN_OR_RETURN(bool result, ApplyTest(e.name, v, args));
        return Value::Bool(result != e.negated);
      }
      case ExprKind::kFilter: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.a));
        ASSIGN_OR_RETURN(Args args, EvalArgs(e.args));
        return Filter(e.name, v, args);
      }
      case ExprKind::kCall: {
        ASSIGN_OR_RETURN(Value callee, Eval(*e.a));
        if (callee.is_undefined()) return absl::InvalidArgumentError(callee.UndefinedHint());
        if (callee.kind() != Value::Kind::kCallable) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", TypeName(callee), "' object is not callable"));
        }
        ASSIGN_OR_RETURN(Args args, EvalArgs(e.args));
        for (const Value& arg : args.positional) RETURN_IF_ERROR(budget_.ChargeFor(arg));
        const CallableData& fn = callee.AsCallable();
        if (fn.kind == CallableData::Kind::kMacro) return CallMacro(fn, args);
        ASSIGN_OR_RETURN(Value result, CallBuiltin(fn, args, budget_));
        RETURN_IF_ERROR(budget_.ChargeFor(result));
        return result;
      }
      case ExprKind::kCondExpr: {
        ASSIGN_OR_RETURN(Value cond, Eval(*e.a));
        if (Truthy(cond)) return Eval(*e.b);
        if (e.c != nullptr) return Eval(*e.c);
        return Value::Undefined(absl::StrCat("the inline if-expression on line ", e.line,
                                             " evaluated to false and no else section was "
                                             "defined."));
      }
    }
    return absl::InternalError("unknown expression");
  }

  // A filter, paying for its result and for a string input (string filters read all of it;
  // filters that walk a list charge for that themselves, and `length` of a list is O(1)).
  absl::StatusOr<Value> Filter(const std::string& name, const Value& input, const Args& args) {
    if (input.is_string()) RETURN_IF_ERROR(budget_.ChargeFor(input));
    ASSIGN_OR_RETURN(Value result, ApplyFilter(name, input, args, budget_));
    RETURN_IF_ERROR(budget_.ChargeFor(result));
    return result;
  }

  // A filter chain whose innermost filter has no input expression (filter blocks, set blocks)
  // applied to `input`.
  absl::StatusOr<Value> ApplyFilterChain(const Expr& chain, const Value& input) {
    Value v = input;
    if (chain.a != nullptr) {
      ASSIGN_OR_RETURN(v, ApplyFilterChain(*chain.a, input));
    }
    ASSIGN_OR_RETURN(Args args, EvalArgs(chain.args));
    absl::StatusOr<Value> result = Filter(chain.name, v, args);
    if (!result.ok()) return AtLine(result.status(), chain.line);
    return result;
  }

  absl::StatusOr<Value> CallMacro(const CallableData& fn, const Args& args) {
    const Stmt& macro = *fn.macro;
    if (call_depth_ >= limits_.max_call_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat("macro calls nested deeper than ", limits_.max_call_depth, " levels"));
    }
    RETURN_IF_ERROR(budget_.Charge(1));
    if (args.positional.size() > macro.params.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "macro '", macro.name, "' takes not more than ", macro.params.size(), " argument(s)"));
    }
    std::shared_ptr<Scope> defined_in = fn.scope.lock();
    auto scope = std::make_shared<Scope>();
    scope->parent = defined_in != nullptr ? defined_in : root_;
    for (const auto& [key, value] : args.keyword) {
      bool known = false;
      for (size_t i = 0; i < macro.params.size(); ++i) {
        if (macro.params[i].first != key) continue;
        if (i < args.positional.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "macro '", macro.name, "' got multiple values for argument '", key, "'"));
        }
        known = true;
      }
      if (!known) {
        return absl::InvalidArgumentError(
            absl::StrCat("macro '", macro.name, "' takes no keyword argument '", key, "'"));
      }
      scope->vars[key] = value;
    }
    ++call_depth_;
    absl::StatusOr<std::string> text = InScope(scope, [&]() -> absl::StatusOr<std::string> {
      for (size_t i = 0; i < macro.params.size(); ++i) {
        const auto& [name, default_expr] = macro.params[i];
        if (i < args.positional.size()) {
          scope_->vars[name] = args.positional[i];
        } else if (!scope_->vars.contains(name)) {
          if (default_expr != nullptr) {
            ASSIGN_OR_RETURN(Value v, Eval(*default_expr));
            scope_->vars[name] = std::move(v);
          } else {
            scope_->vars[name] =
                Value::Undefined(absl::StrCat("parameter '", name, "' was not provided"));
          }
        }
      }
      std::string out;
      RETURN_IF_ERROR(ExecBody(macro.body, &out).status());
      return out;
    });
    --call_depth_;
    if (!text.ok()) return text.status();
    return Value::String(std::move(*text));
  }

  const RenderLimits limits_;
  Budget budget_;
  std::shared_ptr<Scope> root_;
  std::shared_ptr<Scope> scope_;
  size_t produced_ = 0;  // bytes appended to any output buffer
  int depth_ = 0;
  int call_depth_ = 0;
};

}  // namespace

absl::StatusOr<std::string> RenderTemplate(const Template& tmpl, const Value& context,
                                           const RenderLimits& limits) {
  return Renderer(limits).Run(tmpl, context);
}

}  // namespace mswa::jinja
