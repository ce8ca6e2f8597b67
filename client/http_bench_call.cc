#include "client/http_bench_call.h"

#include <httplib.h>

#include <utility>

#include <nlohmann/json.hpp>

namespace mswa::client {
namespace {

grpc::StatusCode CodeForHttp(int status) {
  switch (status) {
    case 400: return grpc::StatusCode::INVALID_ARGUMENT;
    case 401: return grpc::StatusCode::UNAUTHENTICATED;
    case 404: return grpc::StatusCode::NOT_FOUND;
    case 429: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case 503: return grpc::StatusCode::UNAVAILABLE;
    case 504: return grpc::StatusCode::DEADLINE_EXCEEDED;
    default: return status == 0 ? grpc::StatusCode::UNAVAILABLE : grpc::StatusCode::INTERNAL;
  }
}

}  // namespace

RequestRecord RunHttpCompletion(const std::string& host, int port, const std::string& api_key,
                                const mswa::v1::GenerateRequest& request,
                                std::chrono::steady_clock::time_point t0) {
  const auto seconds = [t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  RequestRecord record;
  record.start_s = seconds();
  const nlohmann::json body = {
      {"prompt", request.prompt()},
      {"max_tokens", request.stopping().max_tokens()},
      {"temperature", request.sampling().temperature()},
      {"seed", request.sampling().seed()},
      {"ignore_eos", request.stopping().ignore_eos()},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}}};

  httplib::Client client(host, port);
  client.set_read_timeout(600, 0);
  client.set_tcp_nodelay(true);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!api_key.empty()) req.set_header("Authorization", "Bearer " + api_key);
  std::string pending;  // received, not yet a whole event
  std::string error;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    const double now = seconds();
    pending.append(data, len);
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      const std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
      const nlohmann::json chunk = nlohmann::json::parse(event.substr(6), nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("error")) error = chunk["error"].value("message", "error");
      const auto& choices = chunk.value("choices", nlohmann::json::array());
      // One chunk per engine step that produced tokens, as gRPC sends one message: a chunk
      // with text, or any chunk before the last (text may be held back while it could still
      // be part of a stop string or a character). A last chunk without text only says why it
      // finished.
      if (!choices.empty() &&
          (!choices[0].value("text", "").empty() || choices[0]["finish_reason"].is_null())) {
        record.events.push_back({now, 1});
      }
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        record.prompt_tokens = chunk["usage"].value("prompt_tokens", 0);
        record.completion_tokens = chunk["usage"].value("completion_tokens", 0);
      }
    }
    return true;
  };
  httplib::Response res;
  httplib::Error transport = httplib::Error::Success;
  const bool sent = client.send(req, res, transport);
  record.end_s = seconds();
  const int status = sent ? res.status : 0;
  record.ok = sent && status == 200 && error.empty();
  if (!record.ok) {
    record.status_code = status == 200 ? grpc::StatusCode::ABORTED : CodeForHttp(status);
    record.error = !error.empty() ? error
                   : sent         ? "HTTP " + std::to_string(status) + ": " + res.body
                                  : "HTTP transport: " + httplib::to_string(transport);
  }
  return record;
}

}  // namespace mswa::client
