#include "server/metrics_http_server.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "server/http/http_server.h"

namespace mswa {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::function<std::string()> body, const Options& options) {
  HttpServer::Options http;
  http.threads = options.threads;
  http.io_timeout = options.io_timeout;
  // A scrape is small both ways: one deadline covers reading it and writing the answer.
  http.read_deadline = options.request_deadline;
  http.write_deadline = options.request_deadline;
  http.max_body_bytes = 4096;
  auto server = HttpServer::Start(address, http, [&body](httplib::Server& s) {
    s.Get("/metrics", [body = std::move(body)](const httplib::Request&, httplib::Response& res) {
      res.set_content(body(), kContentType);
    });
    s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.status == 404) res.set_content("not found: try /metrics\n", kContentType);
    });
  });
  if (!server.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("metrics: ", server.status().message()));
  }
  std::unique_ptr<MetricsHttpServer> m(new MetricsHttpServer());
  m->server_ = std::move(server).value();
  return m;
}

MetricsHttpServer::~MetricsHttpServer() = default;

int MetricsHttpServer::port() const { return server_->port(); }

}  // namespace mswa
