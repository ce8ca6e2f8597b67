// Python's operators on template values: arithmetic (+ - * / // % ** and unary - +),
// comparisons, `in`, and printf-style `%` formatting, with Python's results and error messages.
// Integers are 64-bit: a result that would overflow is an error (Python would grow the int).
#pragma once

#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/ast.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

// a op b. Numbers (bool counts as int) as Python: / always gives a float, // and % floor
// towards negative infinity, int ** negative int gives a float. str + str, list + list,
// tuple + tuple, str * int, list * int; str % args formats. InvalidArgument for other operand
// types (Undefined: its hint), division by zero, int overflow, or a result beyond the budget's
// string size.
absl::StatusOr<Value> BinaryOperation(BinaryOp op, const Value& a, const Value& b, Budget& budget);
absl::StatusOr<Value> Negate(const Value& v);
absl::StatusOr<Value> UnaryPlus(const Value& v);

// a op b for == != < <= > >= in, not in.
absl::StatusOr<bool> CompareOperation(CompareOp op, const Value& a, const Value& b);
// `item in container`: substring for strings, membership for lists / tuples, key for dicts,
// false for Undefined.
absl::StatusOr<bool> Contains(const Value& container, const Value& item);

// Python's `format % args` (printf style): %s %r %d %i %u %f %F %e %E %g %G %x %X %o %c %%,
// flags - + space 0 #, width and precision, %(name)s with a dict. A tuple gives several
// arguments.
absl::StatusOr<std::string> PercentFormat(std::string_view format, const Value& args);

// Python's int(v) for numbers (floats truncate); InvalidArgument for others.
absl::StatusOr<int64_t> ToInt(const Value& v);

}  // namespace mswa::jinja
