// The /metrics endpoint: HTTP/1.1 on cpp-httplib through HttpServer (server/http/http_server.h:
// a pool of threads, a timeout on every read and write, one deadline for a whole request and its
// answer, one request per connection, prompt shutdown). GET /metrics returns the Prometheus text
// exposition, anything else 404.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mswa {

class HttpServer;

class MetricsHttpServer {
 public:
  struct Options {
    int threads = 4;                                     // connections served at once
    absl::Duration io_timeout = absl::Seconds(2);        // one read or write
    absl::Duration request_deadline = absl::Seconds(5);  // the whole request and its answer
  };

  // Listens on HOST:PORT (port 0: a free port) and serves `body()` (called on a pool thread, once
  // per scrape) at /metrics. InvalidArgument naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  std::function<std::string()> body,
                                                                  const Options& options);
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  std::function<std::string()> body) {
    return Start(address, std::move(body), Options());
  }
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const;

 private:
  MetricsHttpServer() = default;

  std::unique_ptr<HttpServer> server_;
};

}  // namespace mswa
