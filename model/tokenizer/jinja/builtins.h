// Jinja's built-in filters, tests and globals, and the attributes and methods of values, with the
// behaviour of python3-jinja2's ImmutableSandboxedEnvironment as transformers configures it.
//
// Filters: abs, capitalize, center, count, d, default, dictsort, e, escape, first, float,
//   format, indent, int, items, join, last, length, list, lower, map, max, min, reject,
//   rejectattr, replace, reverse, round, safe, select, selectattr, sort, string, sum, title,
//   tojson (transformers' json.dumps: ensure_ascii=False, indent, separators, sort_keys), trim,
//   unique, upper, wordcount.
// Tests: boolean, callable, defined, divisibleby, eq, equalto, escaped, even, false, float, ge,
//   greaterthan, gt, in, integer, iterable, le, lessthan, lower, lt, mapping, ne, none, number,
//   odd, sameas, sequence, string, true, undefined, upper, ==, !=, <, <=, >, >=.
// Globals: range (at most 100000 items, as the sandbox), dict, namespace, raise_exception (fails
//   the render with its message), strftime_now (local time, C strftime).
// Methods: str: capitalize, center, count, endswith, find, format, index, isalnum, isalpha,
//   isdigit, islower, isspace, isupper, join, ljust, lower, lstrip, removeprefix,
//   removesuffix, replace, rfind, rindex, rjust, rsplit, rstrip, split, splitlines,
//   startswith, strip, title, upper; dict: copy, get, items, keys, values; list / tuple:
//   count, index (and list.copy). Mutating methods (append, pop, update, ...) fail when
//   called, as in the sandbox.
// Markup (autoescaping) is not modelled: `safe` returns its input and `escape` returns a plain
// escaped string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Lists longer than this are refused where a template could build them from little input
// (string iteration and splitting, list + and *), bounding a render's memory.
inline constexpr size_t kMaxListItems = size_t{1} << 20;

// The limits of one render, shared by the evaluator and the builtins. Not thread-safe: one per
// render.
//
// Steps bound the work of a render: a loop iteration, a call or a filter is 1 step, and every
// operation also pays for the size of its operands and results: 1 step per list or dict item
// and per 64 bytes of string. So, for instance, 10 million steps allow at most ~640 MB of
// string bytes to be read or written in total.
class Budget {
 public:
  Budget(size_t max_string_bytes, int64_t max_steps)
      : repr_limit_(max_string_bytes),
        max_string_bytes_(max_string_bytes),
        steps_left_(max_steps),
        max_steps_(max_steps) {}
  // Empties and releases the namespaces of this render (see TrackNamespace).
  ~Budget();
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;
  // InvalidArgument when a string (or an output) of `bytes` would pass the size limit.
  absl::Status CheckSize(size_t bytes) const;
  // Takes `steps` from the budget; InvalidArgument once it is exhausted.
  absl::Status Charge(int64_t steps);
  absl::Status ChargeBytes(size_t bytes) { return Charge(static_cast<int64_t>(bytes / 64)); }
  // Charges for handling `v`: its string bytes / 64, or its item count.
  absl::Status ChargeFor(const Value& v);
  size_t max_string_bytes() const { return max_string_bytes_; }
  // Namespaces are the only mutable values, so the only way a template can build a reference
  // cycle (`{% set ns.self = ns %}`), which shared ownership alone would never free, or a chain
  // of any length (`{% set ns.next = namespace(prev=ns.next) %}` in a loop), whose release
  // would recurse once per link. So every namespace() a render creates is held here until the
  // budget (the render) ends: dropping a reference mid-render never frees one, and at the end
  // each is emptied in creation order while the others are still held, which breaks the cycles
  // and frees every chain one link at a time.
  void TrackNamespace(std::shared_ptr<NamespaceData> ns) { namespaces_.push_back(std::move(ns)); }

 private:
  std::vector<std::shared_ptr<NamespaceData>> namespaces_;
  ReprLimit repr_limit_;  // no printed container passes the render's string bound either
  const size_t max_string_bytes_;
  int64_t steps_left_;
  const int64_t max_steps_;
};

// Python-style binding of `args` to the parameters `names` (positional first, then keywords):
// one entry per name, unset where not given. InvalidArgument naming `callee` for too many
// positional arguments or an unknown or repeated keyword.
absl::StatusOr<std::vector<std::optional<Value>>> BindArgs(
    std::string_view callee, const Args& args, std::initializer_list<std::string_view> names);

bool IsKnownFilter(std::string_view name);
bool IsKnownTest(std::string_view name);
bool IsGlobal(std::string_view name);

// Errors are InvalidArgument with Jinja's (or Python's) wording where there is one.
absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const Args& args,
                                  Budget& budget);
absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& input, const Args& args);

// obj.name as Jinja's sandboxed getattr: a method of a str / dict / list first, else the dict
// item or namespace attribute, else Undefined with Jinja's hint. Fails on Undefined (Jinja's
// default Undefined raises on attribute access).
absl::StatusOr<Value> GetAttr(const Value& obj, std::string_view name);
// obj[key] as Jinja's sandboxed getitem: list / tuple / str index (negative from the end), dict
// item, and for a str key a fallback to GetAttr; Undefined when missing. Fails on Undefined.
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// obj[start:stop:step] for lists, tuples and strings (Python slicing); InvalidArgument for
// other objects and for bounds that are not ints or None.
absl::StatusOr<Value> GetSlice(const Value& obj, const Value& start, const Value& stop,
                               const Value& step, Budget& budget);

// Calls a kGlobal, kMethod or kUnsafe callable (macros are the evaluator's). raise_exception
// returns an InvalidArgument status marked with IsRaisedByTemplate.
absl::StatusOr<Value> CallBuiltin(const CallableData& callable, const Args& args, Budget& budget);
bool IsRaisedByTemplate(const absl::Status& status);

// The items a for loop or filter iterates: list / tuple items, dict keys, string units, nothing
// for Undefined. InvalidArgument "'int' object is not iterable" for anything else.
absl::StatusOr<std::vector<Value>> Iterate(const Value& v);

}  // namespace mswa::jinja
