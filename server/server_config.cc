#include "server/server_config.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mswa {
namespace {

absl::Status CheckHostPort(const std::string& flag, const std::string& value) {
  const size_t colon = value.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be HOST:PORT (port 0 picks a free one), got \"", value, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ServerConfig::Validate() const {
  if (model_dir.empty()) return absl::InvalidArgumentError("--model_dir must not be empty");
  if (absl::Status s = CheckHostPort("listen", listen); !s.ok()) return s;
  if (!metrics_listen.empty()) {
    if (absl::Status s = CheckHostPort("metrics_listen", metrics_listen); !s.ok()) return s;
  }
  if (!http_listen.empty()) {
    if (absl::Status s = CheckHostPort("http_listen", http_listen); !s.ok()) return s;
  }
  if (http_threads < 1) return absl::InvalidArgumentError("--http_threads must be >= 1");
  if (!(http_timeout_seconds > 0)) {
    return absl::InvalidArgumentError("--http_timeout_seconds must be > 0");
  }
  if (tls_cert_file.empty() != tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key must be given together");
  }
  for (const auto& [flag, path] : {std::pair<const char*, std::string>{"tls_cert", tls_cert_file},
                                   {"tls_key", tls_key_file}}) {
    if (!path.empty() && !std::ifstream(path).good()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
    }
  }
  if (drain_grace_seconds < 0) {
    return absl::InvalidArgumentError("--drain_grace_seconds must be >= 0");
  }
  if (absl::Status s = limits.Validate(); !s.ok()) return s;
  if (absl::Status s = engine.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("engine options: ", s.message()));
  }
  return absl::OkStatus();
}

std::string ServerConfig::ResolvedModelName() const {
  if (!model_name.empty()) return model_name;
  std::string dir = model_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

}  // namespace mswa
