#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace mswa {
namespace {

// The connection this pool thread is serving (-1: none).
thread_local int current_socket = -1;

// A connected socket as httplib's Stream, where every wait for the socket ends at the earlier of
// the per-operation timeout and the deadline of its direction (reading the request, writing the
// answer).
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, absl::Duration io_timeout, absl::Time read_deadline,
                 absl::Time write_deadline)
      : fd_(fd), io_timeout_(io_timeout), read_deadline_(read_deadline),
        write_deadline_(write_deadline) {}

  bool is_readable() const override { return pos_ < buffer_.size() || Wait(POLLIN, read_deadline_); }
  bool is_writable() const override { return Wait(POLLOUT, write_deadline_); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == buffer_.size()) {
      if (!Wait(POLLIN, read_deadline_)) return -1;
      buffer_.resize(4096);
      ssize_t n;
      do {
        n = recv(fd_, buffer_.data(), buffer_.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) {
        buffer_.clear();
        pos_ = 0;
        return n;
      }
      buffer_.resize(static_cast<size_t>(n));
      pos_ = 0;
    }
    const size_t n = std::min(size, buffer_.size() - pos_);
    std::memcpy(ptr, buffer_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!Wait(POLLOUT, write_deadline_)) return -1;
    ssize_t n;
    do {
      n = send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(getsockname, ip, port);
  }
  int socket() const override { return fd_; }

 private:
  // True when the socket is ready for `events` before the timeout and the deadline.
  bool Wait(short events, absl::Time deadline) const {
    for (;;) {
      const absl::Duration left = std::min(io_timeout_, deadline - absl::Now());
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{fd_, events, 0};
      const int ms = static_cast<int>(std::ceil(absl::ToDoubleMilliseconds(left)));
      const int r = poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      // An error or hang-up counts as ready: the read or write that follows reports it.
      return r > 0;
    }
  }

  void Address(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    ip.clear();
    port = 0;
    if (get(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  const int fd_;
  const absl::Duration io_timeout_;
  const absl::Time read_deadline_;
  const absl::Time write_deadline_;
  std::vector<char> buffer_;  // received, not yet read: buffer_[pos_..]
  size_t pos_ = 0;
};

}  // namespace

// httplib's server with its connection handling replaced: each connection is one request read
// and answered through a DeadlineStream, and every open connection is known so that stopping
// can shut them down instead of waiting for their clients.
class HttpServer::Server final : public httplib::Server {
 public:
  explicit Server(const HttpServer::Options& options) : options_(options) {}

  // Shuts down every open connection (their threads return at once) and refuses new ones.
  void CloseConnections() {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  // Called by httplib on a pool thread for each accepted connection.
  bool process_and_close_socket(socket_t sock) override {
    bool served = false;
    bool refuse = false;
    {
      absl::MutexLock lock(&mu_);
      refuse = closing_;
      if (!refuse) open_.insert(sock);
    }
    if (!refuse) {
      // Streams write one small chunk per token: without TCP_NODELAY, Nagle's algorithm holds
      // each one until the previous is acknowledged (up to the client's delayed-ACK time).
      const int one = 1;
      setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      const absl::Time now = absl::Now();
      DeadlineStream stream(sock, options_.io_timeout, now + options_.read_deadline,
                            now + options_.write_deadline);
      bool connection_closed = false;
      current_socket = sock;
      served = process_request(stream, /*close_connection=*/true, connection_closed, nullptr);
      current_socket = -1;
      absl::MutexLock lock(&mu_);
      open_.erase(sock);  // before close: the number may be reused by the next accept
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return served;
  }

  const HttpServer::Options options_;
  absl::Mutex mu_;
  std::set<int> open_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

bool HttpServer::ClientGone() {
  const int fd = current_socket;
  if (fd < 0) return false;
  pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
  // Readable: either more bytes (a pipelined request; the client is still there) or the end of
  // the stream.
  char byte;
  const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& address, const Options& options,
    const std::function<void(httplib::Server&)>& routes) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("HTTP address must be HOST:PORT, got ", address));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";

  std::unique_ptr<HttpServer> h(new HttpServer());
  h->server_ = std::make_unique<Server>(options);
  Server& s = *h->server_;
  const int threads = std::max(1, options.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  const auto io_us = absl::ToInt64Microseconds(options.io_timeout);
  s.set_read_timeout(io_us / 1000000, io_us % 1000000);
  s.set_write_timeout(io_us / 1000000, io_us % 1000000);
  s.set_payload_max_length(static_cast<size_t>(std::max<int64_t>(0, options.max_body_bytes)));
  routes(s);

  if (port == 0) {
    port = s.bind_to_any_port(host);
    if (port < 0) port = 0;
  } else if (!s.bind_to_port(host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot serve HTTP on ", address, " (address in use or not local?)"));
  }
  h->port_ = port;
  h->thread_ = std::thread([&s] { s.listen_after_bind(); });
  // stop() only interrupts a running accept loop: wait until it runs.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!s.is_running() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  return h;
}

HttpServer::~HttpServer() {
  if (server_ == nullptr) return;
  server_->CloseConnections();
  server_->stop();
  if (thread_.joinable()) thread_.join();  // httplib joins its pool threads, all returning now
}

}  // namespace mswa
