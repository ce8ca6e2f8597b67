// Python's str methods for templates: 'text'.strip(), .split(), .startswith(), .format(), ...
// (the list is in builtins.h), with Python's results and errors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

// True for every method Python's str has (looking one up gives a bound method); CallStrMethod
// implements the ones builtins.h lists and fails naming any other.
bool IsStrMethod(std::string_view name);

// s.name(*args). InvalidArgument for bad arguments (Python's TypeError / ValueError wording),
// unsupported methods, and results beyond the budget's size limit.
absl::StatusOr<Value> CallStrMethod(const std::string& s, std::string_view name, const Args& args,
                                    Budget& budget);

}  // namespace mswa::jinja
