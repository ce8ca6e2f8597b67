// An HTTP/1.1 listener on cpp-httplib (Debian's libcpp-httplib) that no client can hold: the
// shared base of /metrics (server/metrics_http_server.h) and the OpenAI-compatible API
// (server/http/http_api.h).
//
//   - connections are served by a fixed pool of threads: a slow client takes one thread, the
//     others keep answering (more connections than threads wait in httplib's queue);
//   - every read and write of the socket has a timeout (io_timeout);
//   - reading the request (headers and body) has a deadline (read_deadline), so a client that
//     sends one byte just before each read timeout is still cut off; writing the answer has
//     its own deadline (write_deadline; infinite for the API, whose streams last as long as the
//     generation, each write still bounded by io_timeout);
//   - one request per connection (Connection: close), so a pool thread is never parked on an
//     idle keep-alive connection; TCP_NODELAY, so streamed chunks leave at once;
//   - the destructor shuts every open connection down and returns without waiting on clients.
//
// A handler runs on the pool thread that serves its connection; ClientGone() tells it (and a
// streaming content provider, which runs on the same thread) whether the client hung up, so
// work for a departed client can be cancelled before anything is written.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mswa {

class HttpServer {
 public:
  struct Options {
    int threads = 4;                                          // connections served at once
    absl::Duration io_timeout = absl::Seconds(2);             // one read or write
    absl::Duration read_deadline = absl::Seconds(5);          // receiving the whole request
    absl::Duration write_deadline = absl::Seconds(5);         // sending the whole answer
    int64_t max_body_bytes = 4096;                            // larger bodies get 413
  };

  // Listens on HOST:PORT (port 0: a free port; "[::1]:P" for IPv6; an empty host is 0.0.0.0),
  // lets `routes` register its handlers, and starts the accept loop. InvalidArgument naming the
  // address when it is malformed or cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& address, const Options& options,
      const std::function<void(httplib::Server&)>& routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

  // On a thread serving a connection (a handler or content provider): true once the client has
  // closed its side or the connection failed. False on any other thread. Does not consume data.
  static bool ClientGone();

 private:
  class Server;  // httplib::Server whose connections have deadlines
  HttpServer() = default;

  std::unique_ptr<Server> server_;
  std::thread thread_;  // the accept loop
  int port_ = 0;
};

}  // namespace mswa
