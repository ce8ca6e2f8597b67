#include "server/http/generation.h"

#include <utility>

#include "server/http/engine_call.h"
#include "server/http/http_server.h"
#include "server/http/openai_error.h"

namespace mswa {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kEventStream[] = "text/event-stream";

std::string SseData(const nlohmann::ordered_json& chunk) {
  return "data: " + DumpJson(chunk) + "\n\n";
}

void RecordFinish(RequestLog& log, const EngineEvent& e) {
  log.set_status(EventError(e));
  log.details()["prompt_tokens"] = e.prompt_tokens;
  log.details()["completion_tokens"] = e.completion_tokens;
  log.details()["finish_reason"] = FinishReasonName(e.finish_reason);
  log.details()["queue_s"] = e.timings.queue_seconds;
}

}  // namespace

const char* OpenAiFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kEos:
    case FinishReason::kStop: return "stop";
    case FinishReason::kNone:
    case FinishReason::kCancelled:
    case FinishReason::kAborted: return "abort";
  }
  return "abort";
}

nlohmann::ordered_json Usage(const EngineEvent& last) {
  return {{"prompt_tokens", last.prompt_tokens},
          {"completion_tokens", last.completion_tokens},
          {"total_tokens", last.prompt_tokens + last.completion_tokens}};
}

absl::Status EventError(const EngineEvent& e) {
  switch (e.finish_reason) {
    case FinishReason::kCancelled: return absl::CancelledError("cancelled");
    case FinishReason::kAborted:
      return e.error.ok() ? absl::AbortedError("aborted") : e.error;
    case FinishReason::kNone:
    case FinishReason::kLength:
    case FinishReason::kEos:
    case FinishReason::kStop: return absl::OkStatus();
  }
  return absl::OkStatus();
}

void SendError(RequestLog& log, const absl::Status& status, httplib::Response& res) {
  log.set_status(status);
  res.status = HttpStatusFor(status);
  res.set_content(DumpJson(OpenAiError(status)), kJson);
}

void SendJson(const nlohmann::ordered_json& body, httplib::Response& res) {
  res.status = 200;
  res.set_content(DumpJson(body), kJson);
}

void RunGeneration(ApiState& state, std::shared_ptr<RequestLog> log, GenerationRequest request,
                   std::unique_ptr<GenerationRenderer> renderer, httplib::Response& res) {
  log->details()["prompt_tokens"] = static_cast<int64_t>(request.prepared.prompt.size());
  absl::StatusOr<std::unique_ptr<EngineCall>> submitted =
      EngineCall::Submit(state.engine(), state.metrics(), std::move(request.prepared.prompt),
                         request.prepared.options);
  if (!submitted.ok()) return SendError(*log, submitted.status(), res);
  std::shared_ptr<EngineCall> call = std::move(submitted).value();
  log->set_id(call->id());
  const auto client_gone = [] { return HttpServer::ClientGone(); };

  if (!request.stream) {
    for (;;) {
      std::optional<EngineEvent> e = call->Next(client_gone);
      if (!e.has_value()) {
        // Nobody to answer: the request was cancelled.
        log->set_status(absl::CancelledError("the client disconnected"));
        return;
      }
      renderer->Add(*e);
      if (!e->finished) continue;
      RecordFinish(*log, *e);
      const absl::Status error = EventError(*e);
      if (!error.ok()) return SendError(*log, error, res);
      return SendJson(renderer->Body(*e), res);
    }
  }

  // Streaming: httplib calls the provider on this thread until it calls sink.done() or returns
  // false; the provider owns the call, the renderer and the log, so they end with the response.
  std::shared_ptr<GenerationRenderer> shared_renderer = std::move(renderer);
  const bool include_usage = request.include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      kEventStream,
      [call, log, shared_renderer, include_usage](size_t, httplib::DataSink& sink) {
        std::optional<EngineEvent> e = call->Next([] { return HttpServer::ClientGone(); });
        if (!e.has_value()) {
          log->set_status(absl::CancelledError("the client disconnected"));
          return false;
        }
        std::string out;
        if (e->finished) {
          RecordFinish(*log, *e);
          const absl::Status error = EventError(*e);
          if (error.ok()) {
            for (const auto& chunk : shared_renderer->Chunks(*e)) out += SseData(chunk);
            if (include_usage) out += SseData(shared_renderer->UsageChunk(*e));
          } else {
            out += SseData(OpenAiError(error));
          }
          out += "data: [DONE]\n\n";
        } else {
          for (const auto& chunk : shared_renderer->Chunks(*e)) out += SseData(chunk);
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          call->Cancel();  // the client went away while we wrote
          log->set_status(absl::CancelledError("the client disconnected"));
          return false;
        }
        if (e->finished) sink.done();
        return true;
      });
}

}  // namespace mswa
