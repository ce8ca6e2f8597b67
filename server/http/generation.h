// Runs one generation for /v1/completions or /v1/chat/completions and writes its answer: one
// JSON body, or a Server-Sent Events stream ("data: {json}\n\n" per chunk, "data: [DONE]\n\n"
// last). The endpoints differ only in how events become JSON (a GenerationRenderer).
//
// Streams: the response starts only after the engine accepted the request, so refusals (400,
// 429 queue full, 503) are ordinary error responses. A failure after that (the engine aborted
// the request) is sent as a chunk {"error": {...}} followed by [DONE], as vLLM does. A client
// that disconnects (noticed while waiting for tokens, or when a write fails) cancels the engine
// request, which frees its KV blocks at the next step.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api/generate_request.h"
#include "server/http/api_state.h"

namespace mswa {

class GenerationRenderer {
 public:
  virtual ~GenerationRenderer() = default;
  // Streaming: the chunks one event becomes (none is fine). `e.finished` on the last.
  virtual std::vector<nlohmann::ordered_json> Chunks(const EngineEvent& e) = 0;
  // Not streaming: called for every event; Body after the last one (finished, no error).
  virtual void Add(const EngineEvent& e) = 0;
  virtual nlohmann::ordered_json Body(const EngineEvent& last) = 0;
  // The stream's last chunk when stream_options.include_usage: {"choices": [], "usage": ...}.
  virtual nlohmann::ordered_json UsageChunk(const EngineEvent& last) = 0;
};

struct GenerationRequest {
  PreparedGenerate prepared;
  bool stream = false;
  bool include_usage = false;
};

// Submits and answers into `res` (on the handler thread; a stream continues in httplib's content
// provider on the same thread). `log` receives the outcome.
void RunGeneration(ApiState& state, std::shared_ptr<RequestLog> log, GenerationRequest request,
                   std::unique_ptr<GenerationRenderer> renderer, httplib::Response& res);

// res := the OpenAI error object for `status` with its HTTP status; `log` records it.
void SendError(RequestLog& log, const absl::Status& status, httplib::Response& res);
// res := 200 with `body` as JSON.
void SendJson(const nlohmann::ordered_json& body, httplib::Response& res);

// "stop" (EOS or a stop string) or "length"; what OpenAI calls the reasons.
const char* OpenAiFinishReason(FinishReason reason);
nlohmann::ordered_json Usage(const EngineEvent& last);
// The error a finished event carries (cancelled, aborted); OK otherwise.
absl::Status EventError(const EngineEvent& e);

}  // namespace mswa
