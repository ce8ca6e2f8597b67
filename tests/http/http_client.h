// Test helpers for the HTTP API: JSON requests with cpp-httplib's client, and a raw-socket SSE
// reader that can read a stream event by event and hang up in the middle of it.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mswa::testing {

struct HttpResult {
  int status = 0;  // 0: no answer
  nlohmann::json body;
  std::string raw;
  std::string content_type;
};

inline HttpResult HttpCall(int port, const std::string& method, const std::string& path,
                           const std::string& body = "", const httplib::Headers& headers = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  httplib::Result r = method == "GET" ? client.Get(path.c_str(), headers)
                                      : client.Post(path.c_str(), headers, body, "application/json");
  HttpResult out;
  if (!r) return out;
  out.status = r->status;
  out.raw = r->body;
  out.content_type = r->get_header_value("Content-Type");
  out.body = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  return out;
}
inline HttpResult HttpPost(int port, const std::string& path, const nlohmann::json& body) {
  return HttpCall(port, "POST", path, body.dump());
}

// One HTTP/1.1 request over a plain socket; the answer's chunked body is read as SSE events.
class SseConnection {
 public:
  SseConnection(int port, const std::string& path, const std::string& body,
                const std::string& extra_headers = "") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    const std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers +
                            "Content-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return;
    // Headers.
    while (buffer_.find("\r\n\r\n") == std::string::npos) {
      if (!Fill()) return;
    }
    const size_t end = buffer_.find("\r\n\r\n");
    headers_ = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    if (headers_.size() > 12) status_ = std::atoi(headers_.c_str() + 9);
    chunked_ = headers_.find("Transfer-Encoding: chunked") != std::string::npos;
  }
  ~SseConnection() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  int status() const { return status_; }
  const std::string& headers() const { return headers_; }

  // The next "data: ..." payload; "" at the end of the stream.
  std::string NextEvent() {
    for (;;) {
      const size_t sep = events_.find("\n\n");
      if (sep != std::string::npos) {
        std::string event = events_.substr(0, sep);
        events_.erase(0, sep + 2);
        if (event.rfind("data: ", 0) == 0) return event.substr(6);
        continue;  // comments and other fields
      }
      if (!NextChunk()) return "";
    }
  }
  // Every remaining payload, [DONE] included.
  std::vector<std::string> AllEvents() {
    std::vector<std::string> out;
    for (std::string e = NextEvent(); !e.empty(); e = NextEvent()) out.push_back(e);
    return out;
  }
  // Whatever body is left, un-chunked (non-streaming answers).
  std::string Rest() {
    while (NextChunk()) {
    }
    return events_;
  }

 private:
  bool Fill() {
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
  // Moves one chunk of the body into events_.
  bool NextChunk() {
    if (fd_ < 0 || done_) return false;
    if (!chunked_) {
      events_ += buffer_;
      buffer_.clear();
      if (!Fill()) {
        done_ = true;
        return false;
      }
      events_ += buffer_;
      buffer_.clear();
      return true;
    }
    while (buffer_.find("\r\n") == std::string::npos) {
      if (!Fill()) return false;
    }
    const size_t line = buffer_.find("\r\n");
    const size_t size = std::strtoul(buffer_.substr(0, line).c_str(), nullptr, 16);
    while (buffer_.size() < line + 2 + size + 2) {
      if (!Fill()) return false;
    }
    events_ += buffer_.substr(line + 2, size);
    buffer_.erase(0, line + 2 + size + 2);
    if (size == 0) done_ = true;
    return size > 0;
  }

  int fd_ = -1;
  int status_ = 0;
  bool chunked_ = false;
  bool done_ = false;
  std::string headers_;
  std::string buffer_;  // received, not yet parsed
  std::string events_;  // body bytes not yet returned
};

}  // namespace mswa::testing
