#include "model/tokenizer/jinja/value.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/tokenizer/jinja/py_string.h"

namespace mswa::jinja {
namespace {

int ItemDepth(const Value& v) { return v.depth(); }

// Python's hash equality for dict keys: 1, 1.0 and True are the same key.
bool SameKey(const Value& a, const Value& b) { return Equals(a, b); }

void AppendRepr(const Value& v, std::string* out);

void AppendSequence(const ListData& list, std::string* out) {
  *out += list.is_tuple ? '(' : '[';
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (i > 0) *out += ", ";
    AppendRepr(list.items[i], out);
  }
  if (list.is_tuple && list.items.size() == 1) *out += ',';
  *out += list.is_tuple ? ')' : ']';
}

void AppendDict(const DictData& dict, std::string* out) {
  *out += '{';
  bool first = true;
  for (const auto& [key, value] : dict.entries()) {
    if (!first) *out += ", ";
    first = false;
    AppendRepr(key, out);
    *out += ": ";
    AppendRepr(value, out);
  }
  *out += '}';
}

void AppendRepr(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kString:
      *out += PyStrRepr(v.AsString());
      return;
    case Value::Kind::kList:
      if (v.depth() > kMaxValueDepth) {
        *out += "[...]";
        return;
      }
      AppendSequence(v.AsList(), out);
      return;
    case Value::Kind::kDict:
      if (v.depth() > kMaxValueDepth) {
        *out += "{...}";
        return;
      }
      AppendDict(v.AsDict(), out);
      return;
    case Value::Kind::kUndefined:
      *out += "Undefined";
      return;
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      *out += ToStr(v);
      return;
  }
}

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

bool Equals(const Value& a, const Value& b) {
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
    case Value::Kind::kList: {
      if (a.depth() > kMaxValueDepth || b.depth() > kMaxValueDepth) return false;
      const ListData& x = a.AsList();
      const ListData& y = b.AsList();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!Equals(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (a.depth() > kMaxValueDepth || b.depth() > kMaxValueDepth) return false;
      const DictData& x = a.AsDict();
      const DictData& y = b.AsDict();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries()) {
        const Value* other = y.Find(key);
        if (other == nullptr || !Equals(value, *other)) return false;
      }
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
    case Value::Kind::kDict: {
      std::string out;
      AppendRepr(v, &out);
      return out;
    }
    case Value::Kind::kNamespace: {
      // Attributes are shown one level deep: a namespace may hold itself.
      std::string out = "<Namespace {";
      bool first = true;
      for (const auto& [key, value] : v.AsNamespace().attrs.entries()) {
        if (!first) out += ", ";
        first = false;
        AppendRepr(key, &out);
        out += ": ";
        if (value.kind() == Value::Kind::kNamespace) {
          out += "<Namespace>";
        } else {
          AppendRepr(value, &out);
        }
      }
      return out + "}>";
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
