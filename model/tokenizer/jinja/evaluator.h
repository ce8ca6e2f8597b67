// Renders a parsed template (ast.h) against a context, with Jinja2's semantics as transformers
// configures it (ImmutableSandboxedEnvironment, default Undefined, no autoescaping).
//
// Scoping follows Jinja: a for-loop iteration, a macro call, {% with %} and {% generation %}
// run in a scope of their own, so a {% set %} inside them is not seen after them (use a
// namespace); {% if %} has no scope. `loop` (index, index0, revindex, revindex0, first, last,
// length, previtem, nextitem, depth, depth0, cycle()) exists inside for loops. A macro sees
// its parameters, then the scope it was defined in at the time of the call.
//
// Undefined values (missing variables, keys, attributes, out-of-range indexes) print as "",
// are false, iterate as empty and have length 0; using them in arithmetic, taking their
// attributes or items, or calling them fails with a message naming what was undefined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/ast.h"
#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

struct RenderLimits {
  size_t max_output_bytes;  // also the largest string any operation may build
  int64_t max_steps;        // see Budget::Charge (builtins.h)
  int max_call_depth;       // nested macro calls
};

// Nested evaluation frames (expressions, blocks, macro calls together) one render may use;
// bounds the evaluator's recursion and so its stack use.
inline constexpr int kMaxRenderDepth = 512;

// `context` is a dict whose str keys become the template's variables. Errors are
// InvalidArgument "line N: message", except raise_exception's, which carry its message alone.
absl::StatusOr<std::string> RenderTemplate(const Template& tmpl, const Value& context,
                                           const RenderLimits& limits);

}  // namespace mswa::jinja
