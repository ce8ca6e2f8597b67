#include "server/api/api_keys.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mswa {
namespace {

absl::Status AddKey(absl::string_view flag, absl::string_view key, std::vector<std::string>* out) {
  for (char c : key) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      // The key itself is never echoed.
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": a key holds whitespace or a control character"));
    }
  }
  out->emplace_back(key);
  return absl::OkStatus();
}

// Equal without an early exit: the time depends on the lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& keys, const std::string& file) {
  ApiKeys out;
  if (!keys.empty()) {
    for (absl::string_view k : absl::StrSplit(keys, ',')) {
      k = absl::StripAsciiWhitespace(k);
      if (k.empty()) continue;
      if (absl::Status s = AddKey("api_key", k, &out.keys_); !s.ok()) return s;
    }
    if (out.keys_.empty()) return absl::InvalidArgumentError("--api_key: no key given");
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in.good()) return absl::InvalidArgumentError(absl::StrCat("--api_key_file: cannot read ", file));
    const size_t before = out.keys_.size();
    std::string line;
    while (std::getline(in, line)) {
      absl::string_view k = absl::StripAsciiWhitespace(line);
      if (k.empty() || k[0] == '#') continue;
      if (absl::Status s = AddKey("api_key_file", k, &out.keys_); !s.ok()) return s;
    }
    if (out.keys_.size() == before) {
      return absl::InvalidArgumentError(absl::StrCat("--api_key_file: no key in ", file));
    }
  }
  return out;
}

absl::Status ApiKeys::Check(absl::string_view authorization) const {
  if (keys_.empty()) return absl::OkStatus();
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  bool bearer = false;
  if (value.size() > 7 && absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    value = absl::StripLeadingAsciiWhitespace(value.substr(7));
    bearer = true;
  }
  bool match = false;
  for (const std::string& key : keys_) match |= bearer && ConstantTimeEquals(value, key);
  if (match) return absl::OkStatus();
  return absl::UnauthenticatedError(
      authorization.empty()
          ? "missing API key: send \"Authorization: Bearer <key>\" (gRPC: \"authorization\" metadata)"
          : "invalid API key");
}

}  // namespace mswa
