// Jinja2 parser: template source -> syntax tree (ast.h), following the grammar of Jinja's
// parser.py for the statements chat templates use:
//   {% if %}/{% elif %}/{% else %}/{% endif %}, {% for a[, b] in x [if c] %}...{% else %}
//   {% endfor %}, {% set x = e %}, {% set a, b = e %}, {% set ns.attr = e %},
//   {% set x [| filters] %}...{% endset %}, {% macro m(a, b=1) %}...{% endmacro %},
//   {% filter f %}...{% endfilter %}, {% with a = e %}...{% endwith %}, {% break %},
//   {% continue %} (jinja2.ext.loopcontrols), {% generation %}...{% endgeneration %} (the tag
//   transformers adds), {% print e %}.
// Expressions, loosest binding first: `a if c else b`, or, and, not, comparisons (== != < <=
// > >= in, not in; chained), + -, ~, * / // %, **, unary - +, then postfix .attr [index]
// [a:b:c] (call) | filter and `is` test. Literals: strings (adjacent ones joined), ints,
// floats, true/false/none (any case Jinja accepts), lists, tuples, dicts.
// Not supported (refused with the tag's name): extends, block, include, import, from, call,
// autoescape; *args / **kwargs in calls.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/ast.h"

namespace mswa::jinja {

// Limits that keep parsing and evaluation recursion bounded whatever the input.
inline constexpr int kMaxExprDepth = 128;      // expression tree depth
inline constexpr int kMaxStatementDepth = 64;  // nested block statements

// InvalidArgument "line N: ..." for any syntax error, an unknown filter, test or tag, or a
// template nested deeper than the limits above.
absl::StatusOr<Template> Parse(std::string_view source);

}  // namespace mswa::jinja
