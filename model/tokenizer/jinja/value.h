// The values a chat template computes with, modelled on the Python objects Jinja2 uses:
// Undefined, None, bool, int (64-bit here), float, str, list / tuple, dict (insertion-ordered),
// Jinja's namespace, and callables (globals, bound methods, macros).
//
// Values are cheap to copy: strings and containers are shared and immutable (the sandbox
// transformers renders in forbids mutating methods); only a namespace is mutable, through
// `{% set ns.attr = ... %}`, and every copy sees the change.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace mswa::jinja {

struct Stmt;
struct Scope;

// Containers deeper than this are refused by the operations that recurse into them (repr,
// JSON, comparison), which keeps their recursion bounded.
inline constexpr int kMaxValueDepth = 256;

struct ListData;
class DictData;
struct NamespaceData;
struct CallableData;

class Value {
 public:
  // The order of the variant's alternatives.
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable
  };

  Value() = default;  // Undefined without a hint
  // `hint` is the error for using it: "'x' is undefined".
  static Value Undefined(std::string hint);
  static Value None() { return Value(Rep(NoneRep{})); }
  static Value Bool(bool b) { return Value(Rep(b)); }
  static Value Int(int64_t i) { return Value(Rep(i)); }
  static Value Float(double d) { return Value(Rep(d)); }
  static Value String(std::string s);
  static Value List(std::vector<Value> items);
  static Value Tuple(std::vector<Value> items);
  static Value Dict(DictData dict);
  static Value Namespace(std::shared_ptr<NamespaceData> ns);
  static Value Callable(CallableData callable);

  Kind kind() const { return static_cast<Kind>(rep_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }  // list or tuple
  bool is_dict() const { return kind() == Kind::kDict; }
  // bool, int or float (Python's bool is an int).
  bool is_number() const {
    return kind() == Kind::kBool || kind() == Kind::kInt || kind() == Kind::kFloat;
  }

  // Accessors; each requires the matching kind.
  bool AsBool() const { return std::get<bool>(rep_); }
  int64_t AsInt() const;   // kBool or kInt
  double AsFloat() const;  // any number
  const std::string& AsString() const { return *std::get<StrRep>(rep_); }
  const ListData& AsList() const { return *std::get<ListRep>(rep_); }
  const DictData& AsDict() const { return *std::get<DictRep>(rep_); }
  NamespaceData& AsNamespace() const { return *std::get<NsRep>(rep_); }
  const CallableData& AsCallable() const { return *std::get<FnRep>(rep_); }
  const std::string& UndefinedHint() const;
  // Nesting of lists and dicts (0 for anything else).
  int depth() const;
  // Identity of shared objects (namespaces, callables): Python's `is`.
  const void* identity() const;

 private:
  struct UndefinedRep {
    std::shared_ptr<const std::string> hint;
  };
  struct NoneRep {};
  using StrRep = std::shared_ptr<const std::string>;
  using ListRep = std::shared_ptr<const ListData>;
  using DictRep = std::shared_ptr<const DictData>;
  using NsRep = std::shared_ptr<NamespaceData>;
  using FnRep = std::shared_ptr<const CallableData>;
  using Rep = std::variant<UndefinedRep, NoneRep, bool, int64_t, double, StrRep, ListRep, DictRep,
                           NsRep, FnRep>;
  explicit Value(Rep rep) : rep_(std::move(rep)) {}
  Rep rep_;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;  // renders as (a, b); never equal to a list
  int depth = 1;          // 1 + the deepest item's depth (scalars count 0)
};

// A Python dict: insertion-ordered, keys are None / bool / int / float / str / tuple. Setting
// an existing key keeps its position.
class DictData {
 public:
  void Set(Value key, Value value);
  const Value* Find(const Value& key) const;
  const Value* FindString(std::string_view key) const;
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  int depth() const { return depth_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  absl::flat_hash_map<std::string, size_t> string_index_;  // str keys -> entries_ index
  int depth_ = 1;
};

// Jinja's namespace(): attributes set with `{% set ns.attr = value %}`.
struct NamespaceData {
  DictData attrs;
};

struct CallableData {
  enum class Kind {
    kGlobal,  // range, namespace, dict, raise_exception, strftime_now: `name`; also
              // "loop.cycle" with the loop's index0 as `receiver`
    kMethod,  // a method of `receiver` (str, dict, list): `name`
    kMacro,   // a {% macro %}: `macro`, defined in `scope`
    kUnsafe,  // a mutating method the sandbox refuses: calling it fails with `name`
  };
  Kind kind;
  std::string name;
  Value receiver;  // kMethod
  const Stmt* macro = nullptr;
  std::weak_ptr<Scope> scope;  // kMacro: the scope it was defined in (root when gone)
};

// Python's truth value: false for Undefined, None, False, 0, 0.0, "", empty list / dict.
bool Truthy(const Value& v);
// Python's ==: numbers across int / float / bool; list vs tuple never equal; dicts regardless of
// order; Undefined equals Undefined only; namespaces and callables by identity. Containers
// deeper than kMaxValueDepth compare unequal.
bool Equals(const Value& a, const Value& b);
// Python's ordering (<): numbers, strings (by code point), lists / tuples of the same kind
// lexicographically. -1, 0, 1; InvalidArgument for anything else ("'<' not supported between
// instances of 'str' and 'int'").
absl::StatusOr<int> Compare(const Value& a, const Value& b);
// str(v) as Jinja prints it: "" for Undefined, "None", "True", repr() of containers.
// Containers that hold themselves (through namespaces) print the repeat as `[...]`, `(...)` or
// `{...}`, as Python does, and so does anything nested deeper than kMaxValueDepth. Printing stops
// a few bytes past the innermost ReprLimit's bound (16 MiB without one), ending with "...", so
// the caller's size check fails instead of a shared value being unfolded without bound.
std::string ToStr(const Value& v);
// repr(v): strings quoted. Bounded as ToStr is.
std::string Repr(const Value& v);

// While alive, bounds the text ToStr and Repr produce on this thread to `max_bytes` (plus the
// "..." that marks the cut); one per render, held by its Budget. Scopes nest.
class ReprLimit {
 public:
  explicit ReprLimit(size_t max_bytes);
  ~ReprLimit();
  ReprLimit(const ReprLimit&) = delete;
  ReprLimit& operator=(const ReprLimit&) = delete;
  static size_t Current();

 private:
  size_t previous_;
};
// Python's type name: "str", "int", "NoneType", "list", "dict", "Undefined", ...
std::string TypeName(const Value& v);
// How Jinja names an object in an undefined hint: "dict object", "None", ...
std::string ObjectTypeRepr(const Value& v);

}  // namespace mswa::jinja
