// The /metrics endpoint: HTTP/1.1 on cpp-httplib (Debian's libcpp-httplib), GET /metrics returns
// the Prometheus text exposition, anything else 404.
//
// No client can hold it: connections are served by a pool of threads (a slow one takes one
// thread, the others keep answering), every read and write has a timeout, and a whole request
// -- reading it and writing the answer -- has a deadline, so a client that sends one byte just
// before each read timeout is cut off at the deadline. One request per connection
// (Connection: close). The destructor shuts every open connection down and returns without
// waiting on clients.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mswa {

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

  int port() const { return port_; }

 private:
  class Server;  // httplib::Server whose connections have deadlines
  MetricsHttpServer() = default;

  std::unique_ptr<Server> server_;
  std::thread thread_;  // the accept loop
  int port_ = 0;
};

}  // namespace mswa
