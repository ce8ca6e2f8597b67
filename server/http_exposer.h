// A minimal HTTP/1.1 endpoint for Prometheus scrapes: GET /metrics returns the text exposition,
// anything else 404. One thread, one connection at a time, short socket timeouts: scrapes are
// rare and small. (prometheus-cpp's civetweb exposer fails to start inside this process on
// Debian 12, so the server serves the text format itself.)
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace mswa {

class HttpExposer {
 public:
  // Listens on HOST:PORT (port 0: a free port) and serves `body()` at /metrics.
  // InvalidArgument naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpExposer>> Start(const std::string& address,
                                                           std::function<std::string()> body);
  ~HttpExposer();  // stops the thread and closes the socket
  int port() const { return port_; }

 private:
  HttpExposer() = default;
  void Serve();

  int fd_ = -1;
  int port_ = 0;
  std::function<std::string()> body_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace mswa
