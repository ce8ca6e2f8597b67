// API keys that both protocols require when configured (--api_key, --api_key_file): HTTP as
// "Authorization: Bearer KEY", gRPC as the "authorization" metadata "Bearer KEY". Health checks
// (gRPC health, HTTP /health), server reflection and /metrics stay open, so probes and scrapers
// need no key. Off when no key is configured.
//
// Keys are compared in constant time (every byte of every key is read whatever matches), and
// never appear in a message or log line. Immutable after Load: thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mswa {

class ApiKeys {
 public:
  ApiKeys() = default;  // no keys: everything is open

  // `keys`: comma-separated (--api_key); `file`: one key per line, blank lines and lines starting
  // with '#' skipped (--api_key_file, e.g. a mounted Kubernetes Secret). InvalidArgument naming
  // the flag when the file cannot be read, a flag yields no key, or a key holds whitespace or a
  // control character.
  static absl::StatusOr<ApiKeys> Load(const std::string& keys, const std::string& file);

  bool enabled() const { return !keys_.empty(); }
  // OK when disabled, or when `authorization` is "Bearer <a configured key>" (the scheme in any
  // case). Otherwise Unauthenticated, saying what is expected but never which key was sent.
  absl::Status Check(absl::string_view authorization) const;

 private:
  std::vector<std::string> keys_;
};

}  // namespace mswa
