// Typed reads of config.json fields with errors that name the file and the field. Shared by
// the config parser and the family mappers (model/format/families/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace mswa {

using json = nlohmann::json;

// InvalidArgument "<source>: "<field>" <problem>".
absl::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& problem);

// An integer field (exact integral floats such as 256.0 accepted). Absent or null: an error
// when `required`, else `fallback`.
absl::StatusOr<int64_t> GetInt(const json& obj, const std::string& key, const std::string& source,
                               bool required, int64_t fallback = 0);
absl::StatusOr<double> GetDouble(const json& obj, const std::string& key,
                                 const std::string& source, bool required, double fallback);
absl::StatusOr<bool> GetBool(const json& obj, const std::string& key, const std::string& source,
                             bool fallback);
// A string field; nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> GetString(const json& obj, const std::string& key,
                                                     const std::string& source);

}  // namespace mswa
