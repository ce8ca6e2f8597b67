// The built-in filters one by one (the list and their behaviour are in builtins.h), grouped by
// the file that implements them. ApplyFilter (filters.cc) is the one place that maps a filter
// name to these functions and charges the 1 step every filter call costs.
//
// Each takes the piped value `input` and the call's arguments, charges `budget` for the items
// and string bytes it handles, and returns InvalidArgument with Jinja's (or Python's) wording
// for bad arguments or inputs. Those taking a `name` serve several filter names (given as the
// template spelled them, for error messages).
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "model/tokenizer/jinja/builtins.h"
#include "model/tokenizer/jinja/value.h"

namespace mswa::jinja {

// String filters (string_filters.cc).
absl::StatusOr<Value> TrimFilter(const Value& input, const Args& args);
// upper, lower, title, capitalize, string, safe, escape, e, wordcount.
absl::StatusOr<Value> StringConversionFilter(std::string_view name, const Value& input,
                                             const Args& args, Budget& budget);
absl::StatusOr<Value> ReplaceFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> CenterFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> IndentFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> FormatFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> TojsonFilter(const Value& input, const Args& args, Budget& budget);

// List and sequence filters (sequence_filters.cc).
// length, count.
absl::StatusOr<Value> LengthFilter(std::string_view name, const Value& input, const Args& args);
// first, last.
absl::StatusOr<Value> FirstLastFilter(std::string_view name, const Value& input, const Args& args);
absl::StatusOr<Value> ListFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> ItemsFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> JoinFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> MapFilter(const Value& input, const Args& args, Budget& budget);
// select / reject (`select` true for select), and by an attribute of each item (`by_attribute`)
// selectattr / rejectattr.
absl::StatusOr<Value> SelectOrReject(std::string_view filter, const Value& input, const Args& args,
                                     bool select, bool by_attribute, Budget& budget);
absl::StatusOr<Value> SortFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> DictsortFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> UniqueFilter(const Value& input, const Args& args, Budget& budget);
// min, max.
absl::StatusOr<Value> MinMaxFilter(std::string_view filter, const Value& input, const Args& args,
                                   Budget& budget);
absl::StatusOr<Value> SumFilter(const Value& input, const Args& args, Budget& budget);
absl::StatusOr<Value> ReverseFilter(const Value& input, const Args& args);

// Number filters (number_filters.cc).
absl::StatusOr<Value> IntFilter(const Value& input, const Args& args);
absl::StatusOr<Value> FloatFilter(const Value& input, const Args& args);
absl::StatusOr<Value> AbsFilter(const Value& input, const Args& args);
absl::StatusOr<Value> RoundFilter(const Value& input, const Args& args);

}  // namespace mswa::jinja
