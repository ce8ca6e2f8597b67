#include "model/tokenizer/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

int ItemDepth(const Value& v) { return v.depth(); }

// Python's hash equality for dict keys: 1, 1.0 and True are the same key.
bool SameKey(const Value& a, const Value& b) { return Equals(a, b); }

// Python's repr of nested containers. Namespaces are mutable, so a value may contain itself
// (`{% set ns.self = (ns, 1) %}`) and chains of namespaces may be arbitrarily long: like Python's
// Py_ReprEnter, a container already being printed prints as `[...]`, `(...)` or `{...}`, and
// so does everything nested deeper than kMaxValueDepth, which bounds the recursion. Values
// that share parts can still be exponentially larger printed than held (`{% set l = [l, l] %}`
// in a loop), so printing also stops past ReprLimit::Current() bytes, ending the text with "...".
constexpr size_t kMaxReprBytes = size_t{16} << 20;  // without a ReprLimit
thread_local size_t repr_limit = kMaxReprBytes;

class ReprPrinter {
 public:
  explicit ReprPrinter(std::string* out) : out_(out), limit_(repr_limit) {}

  void Append(const Value& v) {
    if (out_->size() > limit_) {
      if (!truncated_) *out_ += "...";
      truncated_ = true;
      return;
    }
    switch (v.kind()) {
      case Value::Kind::kString:
        *out_ += PyStrRepr(v.AsString());
        return;
      case Value::Kind::kList: {
        const ListData& list = v.AsList();
        if (!Enter(&list)) {
          *out_ += list.is_tuple ? "(...)" : "[...]";
          return;
        }
        *out_ += list.is_tuple ? '(' : '[';
        for (size_t i = 0; i < list.items.size(); ++i) {
          if (i > 0) *out_ += ", ";
          Append(list.items[i]);
        }
        if (list.is_tuple && list.items.size() == 1) *out_ += ',';
        *out_ += list.is_tuple ? ')' : ']';
        Leave();
        return;
      }
      case Value::Kind::kDict:
        AppendDict(v.AsDict());
        return;
      case Value::Kind::kNamespace:
        *out_ += "<Namespace ";
        AppendDict(v.AsNamespace().attrs);
        *out_ += '>';
        return;
      case Value::Kind::kUndefined:
        *out_ += "Undefined";
        return;
      case Value::Kind::kNone:
      case Value::Kind::kBool:
      case Value::Kind::kInt:
      case Value::Kind::kFloat:
      case Value::Kind::kCallable:
        *out_ += ToStr(v);
        return;
    }
  }

 private:
  void AppendDict(const DictData& dict) {
    if (!Enter(&dict)) {
      *out_ += "{...}";
      return;
    }
    *out_ += '{';
    bool first = true;
    for (const auto& [key, value] : dict.entries()) {
      if (!first) *out_ += ", ";
      first = false;
      Append(key);
      *out_ += ": ";
      Append(value);
    }
    *out_ += '}';
    Leave();
  }

  // False when `container` is already being printed or the nesting is too deep.
  bool Enter(const void* container) {
    if (active_.size() >= static_cast<size_t>(kMaxValueDepth) ||
        std::find(active_.begin(), active_.end(), container) != active_.end()) {
      return false;
    }
    active_.push_back(container);
    return true;
  }
  void Leave() { active_.pop_back(); }

  std::string* out_;
  const size_t limit_;
  bool truncated_ = false;
  std::vector<const void*> active_;  // the containers being printed, outermost first
};

void AppendRepr(const Value& v, std::string* out) { ReprPrinter(out).Append(v); }

}  // namespace

ReprLimit::ReprLimit(size_t max_bytes) : previous_(repr_limit) { repr_limit = max_bytes; }
ReprLimit::~ReprLimit() { repr_limit = previous_; }
size_t ReprLimit::Current() { return repr_limit; }

namespace {

absl::Status NotOrderable(const Value& a, const Value& b) {
  return absl::InvalidArgumentError(absl::StrCat("'<' not supported between instances of '",
                                                 TypeName(a), "' and '", TypeName(b), "'"));
}

}  // namespace

void DictData::Set(Value key, Value value) {
  depth_ = std::max(depth_, 1 + std::max(ItemDepth(key), ItemDepth(value)));
  if (key.is_string()) {
    auto [it, inserted] = string_index_.try_emplace(key.AsString(), entries_.size());
    if (!inserted) {
      entries_[it->second].second = std::move(value);
      return;
    }
    entries_.emplace_back(std::move(key), std::move(value));
    return;
  }
  for (auto& entry : entries_) {
    if (!entry.first.is_string() && SameKey(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const Value* DictData::Find(const Value& key) const {
  if (key.is_string()) return FindString(key.AsString());
  for (const auto& entry : entries_) {
    if (!entry.first.is_string() && SameKey(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

const Value* DictData::FindString(std::string_view key) const {
  const auto it = string_index_.find(absl::string_view(key.data(), key.size()));
  return it == string_index_.end() ? nullptr : &entries_[it->second].second;
}

Value Value::Undefined(std::string hint) {
  return Value(Rep(UndefinedRep{std::make_shared<const std::string>(std::move(hint))}));
}

Value Value::String(std::string s) {
  return Value(Rep(std::make_shared<const std::string>(std::move(s))));
}

Value Value::List(std::vector<Value> items) {
  auto list = std::make_shared<ListData>();
  for (const Value& item : items) list->depth = std::max(list->depth, 1 + item.depth());
  list->items = std::move(items);
  return Value(Rep(ListRep(std::move(list))));
}

Value Value::Tuple(std::vector<Value> items) {
  auto list = std::make_shared<ListData>();
  for (const Value& item : items) list->depth = std::max(list->depth, 1 + item.depth());
  list->items = std::move(items);
  list->is_tuple = true;
  return Value(Rep(ListRep(std::move(list))));
}

Value Value::Dict(DictData dict) {
  return Value(Rep(std::make_shared<const DictData>(std::move(dict))));
}

Value Value::Namespace(std::shared_ptr<NamespaceData> ns) { return Value(Rep(std::move(ns))); }

Value Value::Callable(CallableData callable) {
  return Value(Rep(std::make_shared<const CallableData>(std::move(callable))));
}

int64_t Value::AsInt() const {
  if (kind() == Kind::kBool) return AsBool() ? 1 : 0;
  return std::get<int64_t>(rep_);
}

double Value::AsFloat() const {
  if (kind() == Kind::kFloat) return std::get<double>(rep_);
  return static_cast<double>(AsInt());
}

const std::string& Value::UndefinedHint() const {
  static const std::string kNoHint = "value is undefined";
  const UndefinedRep& u = std::get<UndefinedRep>(rep_);
  return u.hint == nullptr ? kNoHint : *u.hint;
}

int Value::depth() const {
  switch (kind()) {
    case Kind::kList:
      return AsList().depth;
    case Kind::kDict:
      return AsDict().depth();
    case Kind::kUndefined:
    case Kind::kNone:
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
    case Kind::kString:
    case Kind::kNamespace:
    case Kind::kCallable:
      return 0;
  }
  return 0;
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kString:
      return std::get<StrRep>(rep_).get();
    case Kind::kList:
      return std::get<ListRep>(rep_).get();
    case Kind::kDict:
      return std::get<DictRep>(rep_).get();
    case Kind::kNamespace:
      return std::get<NsRep>(rep_).get();
    case Kind::kCallable:
      return std::get<FnRep>(rep_).get();
    case Kind::kUndefined:
    case Kind::kNone:
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
      return nullptr;
  }
  return nullptr;
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.AsBool();
    case Value::Kind::kInt:
      return v.AsInt() != 0;
    case Value::Kind::kFloat:
      return v.AsFloat() != 0.0;
    case Value::Kind::kString:
      return !v.AsString().empty();
    case Value::Kind::kList:
      return !v.AsList().items.empty();
    case Value::Kind::kDict:
      return v.AsDict().size() > 0;
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      return true;
  }
  return false;
}

namespace {

// Pairs of containers already found equal during one comparison. Lists and dicts are
// immutable and may share parts, so a value can be exponentially larger unfolded than held
// (`{% set l = [l, l] %}` in a loop); remembering the equal pairs makes comparing two such values
// cost the number of distinct pairs instead. (An unequal pair ends the whole comparison.)
using EqualPairs = absl::flat_hash_set<std::pair<const void*, const void*>>;

bool EqualsImpl(const Value& a, const Value& b, std::unique_ptr<EqualPairs>& seen) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat) {
      return a.AsFloat() == b.AsFloat();
    }
    return a.AsInt() == b.AsInt();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.AsString() == b.AsString();
    case Value::Kind::kList:
    case Value::Kind::kDict: {
      if (a.depth() > kMaxValueDepth || b.depth() > kMaxValueDepth) return false;
      // The same container is equal to itself (Python's containers shortcut identical items too).
      if (a.identity() == b.identity()) return true;
      if (seen == nullptr) seen = std::make_unique<EqualPairs>();
      const std::pair<const void*, const void*> pair(a.identity(), b.identity());
      if (seen->contains(pair)) return true;
      if (a.kind() == Value::Kind::kList) {
        const ListData& x = a.AsList();
        const ListData& y = b.AsList();
        if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
        for (size_t i = 0; i < x.items.size(); ++i) {
          if (!EqualsImpl(x.items[i], y.items[i], seen)) return false;
        }
      } else {
        const DictData& x = a.AsDict();
        const DictData& y = b.AsDict();
        if (x.size() != y.size()) return false;
        for (const auto& [key, value] : x.entries()) {
          const Value* other = y.Find(key);
          if (other == nullptr || !EqualsImpl(value, *other, seen)) return false;
        }
      }
      seen->insert(pair);
      return true;
    }
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      return a.identity() == b.identity();
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
      return false;  // handled above
  }
  return false;
}

}  // namespace

bool Equals(const Value& a, const Value& b) {
  std::unique_ptr<EqualPairs> seen;  // made on the first nested comparison only
  return EqualsImpl(a, b, seen);
}

absl::StatusOr<int> Compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat) {
      const double x = a.AsFloat();
      const double y = b.AsFloat();
      return x < y ? -1 : x > y ? 1 : 0;  // NaN compares as equal to everything, as no order
    }
    const int64_t x = a.AsInt();
    const int64_t y = b.AsInt();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    // Byte order of UTF-8 is code point order.
    const int c = a.AsString().compare(b.AsString());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.AsList().is_tuple == b.AsList().is_tuple) {
    if (a.depth() > kMaxValueDepth || b.depth() > kMaxValueDepth) {
      return absl::InvalidArgumentError("values nested too deeply to compare");
    }
    const std::vector<Value>& x = a.AsList().items;
    const std::vector<Value>& y = b.AsList().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i])) continue;
      return Compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return NotOrderable(a, b);
}

std::string ToStr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.AsBool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.AsInt());
    case Value::Kind::kFloat:
      return PyFloatRepr(v.AsFloat());
    case Value::Kind::kString:
      return v.AsString();
    case Value::Kind::kList:
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      std::string out;
      AppendRepr(v, &out);
      return out;
    }
    case Value::Kind::kCallable: {
      const CallableData& c = v.AsCallable();
      switch (c.kind) {
        case CallableData::Kind::kGlobal:
          return "<function " + c.name + ">";
        case CallableData::Kind::kMethod:
        case CallableData::Kind::kUnsafe:
          return "<built-in method " + c.name + " of " + TypeName(c.receiver) + " object>";
        case CallableData::Kind::kMacro:
          return "<Macro '" + c.name + "'>";
      }
      return "<function>";
    }
  }
  return "";
}

std::string Repr(const Value& v) {
  std::string out;
  AppendRepr(v, &out);
  return out;
}

std::string TypeName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return v.AsList().is_tuple ? "tuple" : "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kNamespace:
      return "Namespace";
    case Value::Kind::kCallable:
      return v.AsCallable().kind == CallableData::Kind::kMacro ? "Macro"
                                                               : "builtin_function_or_method";
  }
  return "object";
}

std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  return TypeName(v) + " object";
}

}  // namespace mswa::jinja
