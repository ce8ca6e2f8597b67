// Everything the server process is configured with, built once from the flags (main.cc) and
// validated before anything starts.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "server/api/limits.h"
#include "server/engine.h"

namespace mswa {

struct ServerConfig {
  std::string model_dir;
  std::string model_name;        // "" = the model directory's base name
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9090";  // "" = no metrics endpoint
  // The OpenAI-compatible HTTP API (server/http/http_api.h); "" = none. /metrics stays on its own
  // port so that scraping never competes with (or is exposed alongside) inference traffic.
  std::string http_listen = "127.0.0.1:8000";
  int32_t http_threads = 32;            // connections served at once
  double http_timeout_seconds = 30;     // one socket read or write; receiving a request
  std::string tls_cert_file;     // both or neither: TLS on the gRPC port
  std::string tls_key_file;
  // API keys (server/api/api_keys.h): comma-separated, and a file of one key per line. Both
  // empty: no keys, everything open.
  std::string api_key;
  std::string api_key_file;
  double drain_grace_seconds = 30;
  bool warmup = true;
  EngineOptions engine;
  RequestLimits limits;  // input sizes per request, the ScoreStream idle timeout

  // InvalidArgument naming the flag: bad host:port, http threads < 1 or timeout <= 0, only one of the TLS files, unreadable TLS
  // file, negative grace, a bad engine option or request limit.
  absl::Status Validate() const;
  std::string ResolvedModelName() const;
};

}  // namespace mswa
