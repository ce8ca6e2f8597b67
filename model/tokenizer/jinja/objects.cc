// Attribute and item access, dict and list methods, globals, BindArgs and Budget
// (builtins.h); str methods are in str_methods.cc.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/operators.h"
#include "model/tokenizer/jinja/py_string.h"
#include "model/tokenizer/jinja/str_methods.h"

namespace mswa::jinja {
namespace {

constexpr char kRaisedPayload[] = "mswa.jinja.raise_exception";
// The sandbox's MAX_RANGE.
constexpr int64_t kMaxRange = 100000;

constexpr std::string_view kDictMethods[] = {"copy", "get", "items", "keys", "values"};
constexpr std::string_view kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};
constexpr std::string_view kListMethods[] = {"copy", "count", "index"};
constexpr std::string_view kListMutators[] = {"append", "clear",  "extend",  "insert",
                                              "pop",    "remove", "reverse", "sort"};

template <size_t N>
bool In(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

Value Method(const Value& receiver, std::string_view name, CallableData::Kind kind) {
  CallableData c;
  c.kind = kind;
  c.name = std::string(name);
  c.receiver = receiver;
  return Value::Callable(std::move(c));
}

Value NoAttribute(const Value& obj, std::string_view name) {
  return Value::Undefined(
      absl::StrCat("'", ObjectTypeRepr(obj), "' has no attribute '", std::string(name), "'"));
}

Value NoElement(const Value& obj, const Value& key) {
  return Value::Undefined(absl::StrCat(ObjectTypeRepr(obj), " has no element ", Repr(key)));
}

absl::Status Raised(const std::string& message) {
  absl::Status status = absl::InvalidArgumentError(std::string(message));
  status.SetPayload(kRaisedPayload, absl::Cord("1"));
  return status;
}

absl::StatusOr<Value> CallDictMethod(const Value& d, std::string_view name, const Args& args,
                                     Budget& budget) {
  const std::string callee = absl::StrCat("dict.", std::string(name), "()");
  const DictData& dict = d.AsDict();
  if (name == "get") {
    ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"key", "default"}));
    if (!a[0].has_value()) return absl::InvalidArgumentError("dict.get() takes a key");
    const Value* v = dict.Find(*a[0]);
    if (v != nullptr) return *v;
    return a[1].has_value() ? *a[1] : Value::None();
  }
  RETURN_IF_ERROR(BindArgs(callee, args, {}).status());
  if (name == "copy") return d;
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(dict.size())));
  std::vector<Value> items;
  items.reserve(dict.size());
  for (const auto& [key, value] : dict.entries()) {
    if (name == "items") {
      items.push_back(Value::Tuple({key, value}));
    } else {
      items.push_back(name == "keys" ? key : value);
    }
  }
  return Value::List(std::move(items));
}

absl::StatusOr<Value> CallListMethod(const Value& list, std::string_view name, const Args& args,
                                     Budget& budget) {
  const std::string callee = absl::StrCat(TypeName(list), ".", std::string(name), "()");
  const std::vector<Value>& items = list.AsList().items;
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
  if (name == "copy") {
    RETURN_IF_ERROR(BindArgs(callee, args, {}).status());
    return list;
  }
  ASSIGN_OR_RETURN(auto a, BindArgs(callee, args, {"value"}));
  if (!a[0].has_value()) return absl::InvalidArgumentError(callee + " takes one argument");
  int64_t count = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!Equals(items[i], *a[0])) continue;
    if (name == "index") return Value::Int(static_cast<int64_t>(i));
    ++count;
  }
  if (name == "index") {
    return absl::InvalidArgumentError(absl::StrCat(Repr(*a[0]), " is not in list"));
  }
  return Value::Int(count);
}

// dict(*args, **kwargs): a mapping or a list of pairs, then keywords.
absl::StatusOr<DictData> DictFromArgs(std::string_view callee, const Args& args) {
  DictData dict;
  if (args.positional.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(callee), " expected at most 1 argument"));
  }
  if (args.positional.size() == 1) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      dict = src.AsDict();
    } else {
      ASSIGN_OR_RETURN(std::vector<Value> pairs, Iterate(src));
      for (const Value& pair : pairs) {
        ASSIGN_OR_RETURN(std::vector<Value> kv, Iterate(pair));
        if (kv.size() != 2) {
          return absl::InvalidArgumentError(
              absl::StrCat(std::string(callee), ": each sequence element must have length 2"));
        }
        dict.Set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keyword) dict.Set(Value::String(key), value);
  return dict;
}

absl::StatusOr<Value> CallGlobal(std::string_view name, const Args& args, Budget& budget) {
  if (name == "range") {
    if (!args.keyword.empty() || args.positional.empty() || args.positional.size() > 3) {
      return absl::InvalidArgumentError("range() takes 1 to 3 integer arguments");
    }
    int64_t bounds[3] = {0, 0, 1};
    for (size_t i = 0; i < args.positional.size(); ++i) {
      const Value& v = args.positional[i];
      if (v.kind() != Value::Kind::kInt && v.kind() != Value::Kind::kBool) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", TypeName(v), "' object cannot be interpreted as an integer"));
      }
      bounds[args.positional.size() == 1 ? 1 : i] = v.AsInt();
    }
    const int64_t start = bounds[0], stop = bounds[1], step = bounds[2];
    if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
    // Count in floating point first: the bounds may be anywhere in int64.
    const double span =
        (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step);
    if (span > static_cast<double>(kMaxRange)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ")."));
    }
    std::vector<Value> items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      items.push_back(Value::Int(i));
      if (static_cast<int64_t>(items.size()) > kMaxRange) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ")."));
      }
      if ((step > 0 && i > std::numeric_limits<int64_t>::max() - step) ||
          (step < 0 && i < std::numeric_limits<int64_t>::min() - step)) {
        break;
      }
    }
    RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(items.size())));
    return Value::List(std::move(items));
  }
  if (name == "dict") {
    ASSIGN_OR_RETURN(DictData dict, DictFromArgs("dict()", args));
    return Value::Dict(std::move(dict));
  }
  if (name == "namespace") {
    auto ns = std::make_shared<NamespaceData>();
    ASSIGN_OR_RETURN(ns->attrs, DictFromArgs("namespace()", args));
    budget.TrackNamespace(ns);
    return Value::Namespace(std::move(ns));
  }
  if (name == "raise_exception") {
    ASSIGN_OR_RETURN(auto a, BindArgs("raise_exception()", args, {"message"}));
    return Raised(a[0].has_value() ? ToStr(*a[0]) : "raise_exception() called");
  }
  if (name == "strftime_now") {
    ASSIGN_OR_RETURN(auto a, BindArgs("strftime_now()", args, {"format"}));
    if (!a[0].has_value() || !a[0]->is_string()) {
      return absl::InvalidArgumentError("strftime_now() takes a format string");
    }
    const std::string& format = a[0]->AsString();
    if (format.empty()) return Value::String("");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    // A non-empty format can still produce "" (e.g. "%p" in some locales); grow until it fits.
    for (size_t size = 256; size <= 65536; size *= 4) {
      std::string buf(size, '\0');
      const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &local);
      if (n > 0) return Value::String(buf.substr(0, n));
    }
    return Value::String("");
  }
  return absl::InvalidArgumentError(absl::StrCat("'", std::string(name), "' is undefined"));
}

}  // namespace

absl::Status Budget::CheckSize(size_t bytes) const {
  if (bytes <= max_string_bytes_) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("chat template produced more than the limit of ", max_string_bytes_, " bytes"));
}

Budget::~Budget() {
  for (std::shared_ptr<NamespaceData>& ns : namespaces_) {
    DictData attrs;
    std::swap(attrs, ns->attrs);  // destroyed here, while every other namespace is still held
  }
}

absl::Status Budget::Charge(int64_t steps) {
  steps_left_ -= steps;
  if (steps_left_ >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("chat template exceeded its limit of ", max_steps_,
                   " steps (loop iterations, calls, items processed)"));
}

absl::Status Budget::ChargeFor(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString:
      return ChargeBytes(v.AsString().size());
    case Value::Kind::kList:
      return Charge(static_cast<int64_t>(v.AsList().items.size()));
    case Value::Kind::kDict:
      return Charge(static_cast<int64_t>(v.AsDict().size()));
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::optional<Value>>> BindArgs(
    std::string_view callee, const Args& args, std::initializer_list<std::string_view> names) {
  std::vector<std::optional<Value>> bound(names.size());
  if (args.positional.size() > names.size()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(callee), " takes at most ",
                                                   names.size(), " arguments (",
                                                   args.positional.size(), " given)"));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    const auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(callee), " got an unexpected keyword argument '", key, "'"));
    }
    std::optional<Value>& slot = bound[static_cast<size_t>(it - names.begin())];
    if (slot.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(callee), " got multiple values for argument '", key, "'"));
    }
    slot = value;
  }
  return bound;
}

bool IsGlobal(std::string_view name) {
  return name == "range" || name == "dict" || name == "namespace" || name == "raise_exception" ||
         name == "strftime_now";
}

bool IsRaisedByTemplate(const absl::Status& status) {
  return status.GetPayload(kRaisedPayload).has_value();
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kList:
      return v.AsList().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.AsDict().size());
      for (const auto& entry : v.AsDict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::kString: {
      if (UnitCount(v.AsString()) > kMaxListItems) {
        return absl::InvalidArgumentError(absl::StrCat(
            "iterating a string of more than ", kMaxListItems, " characters is not supported"));
      }
      std::vector<Value> units;
      for (std::string& u : Units(v.AsString())) units.push_back(Value::String(std::move(u)));
      return units;
    }
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", TypeName(v), "' object is not iterable"));
}

absl::StatusOr<Value> GetAttr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) return absl::InvalidArgumentError(obj.UndefinedHint());
  if (name.substr(0, 2) == "__") {
    return Value::Undefined(absl::StrCat("access to attribute '", std::string(name), "' of '",
                                         TypeName(obj), "' object is unsafe."));
  }
  switch (obj.kind()) {
    case Value::Kind::kString:
      if (IsStrMethod(name)) return Method(obj, name, CallableData::Kind::kMethod);
      break;
    case Value::Kind::kDict: {
      if (In(kDictMethods, name)) return Method(obj, name, CallableData::Kind::kMethod);
      if (In(kDictMutators, name)) return Method(obj, name, CallableData::Kind::kUnsafe);
      const Value* v = obj.AsDict().FindString(name);
      if (v != nullptr) return *v;
      break;
    }
    case Value::Kind::kList:
      if (In(kListMethods, name) && (!obj.AsList().is_tuple || name != "copy")) {
        return Method(obj, name, CallableData::Kind::kMethod);
      }
      if (!obj.AsList().is_tuple && In(kListMutators, name)) {
        return Method(obj, name, CallableData::Kind::kUnsafe);
      }
      break;
    case Value::Kind::kNamespace: {
      const Value* v = obj.AsNamespace().attrs.FindString(name);
      if (v != nullptr) return *v;
      break;
    }
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kCallable:
      break;
  }
  return NoAttribute(obj, name);
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return absl::InvalidArgumentError(obj.UndefinedHint());
  const bool int_key = key.kind() == Value::Kind::kInt || key.kind() == Value::Kind::kBool;
  switch (obj.kind()) {
    case Value::Kind::kList:
      if (int_key) {
        const std::vector<Value>& items = obj.AsList().items;
        int64_t i = key.AsInt();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
        return NoElement(obj, key);
      }
      break;
    case Value::Kind::kString:
      if (int_key) {
        const std::string& s = obj.AsString();
        const std::vector<size_t> offsets = UnitOffsets(s);
        const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
        int64_t i = key.AsInt();
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
          return Value::String(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
        }
        return NoElement(obj, key);
      }
      break;
    case Value::Kind::kDict: {
      if (!key.is_dict() && !(key.is_list() && !key.AsList().is_tuple)) {
        const Value* v = obj.AsDict().Find(key);
        if (v != nullptr) return *v;
      }
      break;
    }
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      break;
  }
  if (key.is_string()) {
    // Jinja's getitem falls back to the attribute of that name.
    ASSIGN_OR_RETURN(Value attr, GetAttr(obj, key.AsString()));
    return attr;
  }
  return NoElement(obj, key);
}

absl::StatusOr<Value> GetSlice(const Value& obj, const Value& start_v, const Value& stop_v,
                               const Value& step_v, Budget& budget) {
  // Jinja compiles slices to Python subscripts (not the lenient getitem): anything but a
  // string, list or tuple is an error.
  if (obj.is_undefined()) return absl::InvalidArgumentError(obj.UndefinedHint());
  if (obj.is_dict()) return absl::InvalidArgumentError("unhashable type: 'slice'");
  if (!obj.is_string() && !obj.is_list()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", TypeName(obj), "' object is not subscriptable"));
  }
  const auto bound = [](const Value& v, std::optional<int64_t>* out) -> bool {
    if (v.is_none() || v.is_undefined()) return true;
    if (v.kind() != Value::Kind::kInt && v.kind() != Value::Kind::kBool) return false;
    *out = v.AsInt();
    return true;
  };
  std::optional<int64_t> start, stop, step_opt;
  if (!bound(start_v, &start) || !bound(stop_v, &stop) || !bound(step_v, &step_opt)) {
    return absl::InvalidArgumentError(
        "slice indices must be integers or None or have an __index__ method");
  }
  const int64_t step = step_opt.value_or(1);
  if (step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t len;
  if (obj.is_string()) {
    offsets = UnitOffsets(obj.AsString());
    len = static_cast<int64_t>(offsets.size()) - 1;
  } else {
    len = static_cast<int64_t>(obj.AsList().items.size());
  }
  // CPython's PySlice_AdjustIndices.
  const int64_t lower = step > 0 ? 0 : -1;
  const int64_t upper = step > 0 ? len : len - 1;
  const auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v.has_value()) return fallback;
    int64_t i = *v;
    if (i < 0) {
      i += len;
      if (i < lower) i = lower;
    } else if (i > upper) {
      i = upper;
    }
    return i;
  };
  const int64_t b = adjust(start, step > 0 ? lower : upper);
  const int64_t e = adjust(stop, step > 0 ? upper : lower);
  std::vector<int64_t> indices;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) indices.push_back(i);
  RETURN_IF_ERROR(budget.Charge(static_cast<int64_t>(indices.size())));
  if (obj.is_string()) {
    const std::string& s = obj.AsString();
    std::string out;
    for (int64_t i : indices) out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
    return Value::String(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(indices.size());
  for (int64_t i : indices) items.push_back(obj.AsList().items[static_cast<size_t>(i)]);
  return obj.AsList().is_tuple ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
}

absl::StatusOr<Value> CallBuiltin(const CallableData& callable, const Args& args, Budget& budget) {
  RETURN_IF_ERROR(budget.Charge(1));
  switch (callable.kind) {
    case CallableData::Kind::kGlobal:
      if (callable.name == "loop.cycle") {
        // loop.cycle(a, b, ...): the argument at the loop's index0 modulo their count.
        if (args.positional.empty() || !args.keyword.empty()) {
          return absl::InvalidArgumentError("loop.cycle() takes positional arguments");
        }
        const int64_t index0 = callable.receiver.AsInt();
        return args.positional[static_cast<size_t>(index0) % args.positional.size()];
      }
      return CallGlobal(callable.name, args, budget);
    case CallableData::Kind::kUnsafe:
      return absl::InvalidArgumentError(absl::StrCat("access to attribute '", callable.name,
                                                     "' of '", TypeName(callable.receiver),
                                                     "' object is unsafe."));
    case CallableData::Kind::kMethod:
      switch (callable.receiver.kind()) {
        case Value::Kind::kString:
          return CallStrMethod(callable.receiver.AsString(), callable.name, args, budget);
        case Value::Kind::kDict:
          return CallDictMethod(callable.receiver, callable.name, args, budget);
        case Value::Kind::kList:
          return CallListMethod(callable.receiver, callable.name, args, budget);
        case Value::Kind::kUndefined:
        case Value::Kind::kNone:
        case Value::Kind::kBool:
        case Value::Kind::kInt:
        case Value::Kind::kFloat:
        case Value::Kind::kNamespace:
        case Value::Kind::kCallable:
          break;
      }
      break;
    case CallableData::Kind::kMacro:
      break;
  }
  return absl::InternalError("not a built-in callable");
}

}  // namespace mswa::jinja
