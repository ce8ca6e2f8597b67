// The OpenAI-compatible HTTP API, in the same process and on the same engine as gRPC
// (--http_listen). Endpoints (server/http/endpoints.h):
//   POST /v1/completions, POST /v1/chat/completions (JSON or Server-Sent Events),
//   GET /v1/models, GET /v1/models/{id}, GET /health, POST /tokenize, POST /detokenize,
//   POST /v1/score.
// Anything else: 404 in OpenAI's error shape.
//
// Life cycle, as the gRPC service's: Start listens at once (every endpoint but /health answers
// 503 "still loading", /health 503), Attach makes it serve, StartDraining turns new requests
// away with 503 while those in flight finish; the destructor closes every connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/http/api_state.h"

namespace mswa {

class HttpServer;

class HttpApi {
 public:
  // InvalidArgument naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpApi>> Start(const std::string& address,
                                                       HttpApiOptions options);
  ~HttpApi();

  // `engine` and `metrics` (may be null) outlive the API. `chat`: the model's chat prompt, or
  // why it does not load (chat requests then fail with 500 saying so).
  void Attach(Engine* engine, Metrics* metrics, absl::StatusOr<ChatPrompt> chat) {
    state_->Attach(engine, metrics, std::move(chat));
  }
  void StartDraining() { state_->StartDraining(); }
  void MarkFailed(const absl::Status& error) { state_->MarkFailed(error); }
  // Requests between arrival and their last byte.
  int64_t in_flight() const { return state_->in_flight(); }
  int port() const;

  // The largest request body accepted (413 beyond): room for the largest input any limit allows,
  // written as JSON (a byte of text can take 6 characters, a token id 11).
  static int64_t MaxBodyBytes(const RequestLimits& limits);

 private:
  HttpApi() = default;
  std::unique_ptr<ApiState> state_;
  std::unique_ptr<HttpServer> server_;  // after state_: destroyed first
};

}  // namespace mswa
