#include "server/http/http_api.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/http/endpoints.h"
#include "server/http/http_server.h"
#include "server/http/openai_error.h"

namespace mswa {

int64_t HttpApi::MaxBodyBytes(const RequestLimits& limits) {
  const int64_t text = std::max({limits.max_prompt_bytes, limits.max_score_bytes,
                                 limits.max_tokenize_bytes});
  return std::max(6 * text, 11 * limits.max_prompt_tokens) + (int64_t{64} << 10);
}

absl::StatusOr<std::unique_ptr<HttpApi>> HttpApi::Start(const std::string& address,
                                                       HttpApiOptions options) {
  std::unique_ptr<HttpApi> api(new HttpApi());
  HttpServer::Options http;
  http.threads = options.threads;
  http.io_timeout = options.io_timeout;
  http.read_deadline = options.io_timeout;
  // Answers last as long as their generation; each write still has io_timeout.
  http.write_deadline = absl::InfiniteDuration();
  http.max_body_bytes = MaxBodyBytes(options.limits);
  api->state_ = std::make_unique<ApiState>(std::move(options));
  ApiState* state = api->state_.get();
  // The one place API keys are checked on HTTP: every route but /health (probes need no key).
  auto route = [state](void (*handler)(ApiState&, const httplib::Request&, httplib::Response&)) {
    return [state, handler](const httplib::Request& req, httplib::Response& res) {
      const ApiKeys& keys = state->options().api_keys;
      if (keys.enabled() && handler != HandleHealth) {
        const absl::Status auth = keys.Check(req.get_header_value("Authorization"));
        if (!auth.ok()) {
          RequestLog log(*state, req.path.rfind("/v1/models/", 0) == 0 ? "/v1/models/{id}" : req.path);
          log.set_status(auth);
          res.status = 401;
          res.set_header("WWW-Authenticate", "Bearer");
          res.set_content(DumpJson(OpenAiError(auth)), "application/json");
          return;
        }
      }
      handler(*state, req, res);
    };
  };
  auto server = HttpServer::Start(address, http, [&](httplib::Server& s) {
    s.Post("/v1/completions", route(HandleCompletions));
    s.Post("/v1/chat/completions", route(HandleChatCompletions));
    s.Get("/v1/models", route(HandleModels));
    s.Get(R"(/v1/models/(.+))", route(HandleModel));
    s.Get("/health", route(HandleHealth));
    s.Post("/tokenize", route(HandleTokenize));
    s.Post("/detokenize", route(HandleDetokenize));
    s.Post("/v1/score", route(HandleScore));
    // Errors httplib answers itself (unknown path, body too large, malformed request) in
    // OpenAI's shape too. Handlers set their own bodies, which are kept.
    s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      absl::Status status;
      if (res.status == 404) {
        status = absl::NotFoundError(absl::StrCat("no endpoint ", req.method, " ",
                                                  req.path.substr(0, 256),
                                                  "; see GET /v1/models, POST /v1/completions, "
                                                  "POST /v1/chat/completions"));
      } else if (res.status == 413) {
        status = absl::InvalidArgumentError("the request body is larger than the server accepts");
      } else {
        status = absl::InvalidArgumentError(absl::StrCat("malformed HTTP request (", res.status, ")"));
      }
      res.set_content(DumpJson(OpenAiError(status)), "application/json");
    });
  });
  if (!server.ok()) return server.status();
  api->server_ = std::move(server).value();
  return api;
}

HttpApi::~HttpApi() = default;

int HttpApi::port() const { return server_->port(); }

}  // namespace mswa
