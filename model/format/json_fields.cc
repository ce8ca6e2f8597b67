#include "model/format/json_fields.h"

#include "absl/strings/str_cat.h"

namespace mswa {

absl::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": \"", field, "\" ", problem));
}

absl::StatusOr<int64_t> GetInt(const json& obj, const std::string& key, const std::string& source,
                               bool required, int64_t fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return FieldError(source, key, "is missing");
    return fallback;
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  // JSON writers sometimes emit 256.0 for integers: accept exact integral floats.
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (d >= -9.0e18 && d <= 9.0e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
  }
  return FieldError(source, key, absl::StrCat("must be an integer, got ", it->type_name()));
}

absl::StatusOr<double> GetDouble(const json& obj, const std::string& key,
                                 const std::string& source, bool required, double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return FieldError(source, key, "is missing");
    return fallback;
  }
  if (!it->is_number()) {
    return FieldError(source, key, absl::StrCat("must be a number, got ", it->type_name()));
  }
  return it->get<double>();
}

absl::StatusOr<bool> GetBool(const json& obj, const std::string& key, const std::string& source,
                             bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return FieldError(source, key, absl::StrCat("must be true or false, got ", it->type_name()));
  }
  return it->get<bool>();
}

absl::StatusOr<std::optional<std::string>> GetString(const json& obj, const std::string& key,
                                                     const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return FieldError(source, key, absl::StrCat("must be a string, got ", it->type_name()));
  }
  return std::optional<std::string>(it->get<std::string>());
}

}  // namespace mswa
