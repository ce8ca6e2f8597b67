// GET /v1/models, GET /v1/models/{id}, GET /health, POST /tokenize, POST /detokenize and
// POST /v1/score (the HTTP twin of gRPC Score).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/api/generate_request.h"
#include "server/api/score_request.h"
#include "server/http/endpoints.h"
#include "server/http/engine_call.h"
#include "server/http/generation.h"
#include "server/http/http_server.h"
#include "server/http/openai_error.h"
#include "server/http/openai_request.h"

namespace mswa {
namespace {

nlohmann::ordered_json ModelObject(const ApiState& state) {
  nlohmann::ordered_json m = {{"id", state.options().model_name},
                              {"object", "model"},
                              {"created", absl::ToUnixSeconds(state.started())},
                              {"owned_by", "mswa-serve"}};
  if (state.ready()) {
    const EngineInfo info = state.engine().Info();
    // Every window finite: no length limit (null); otherwise --max_model_len.
    m["max_model_len"] = info.max_sequence_length == 0
                             ? nlohmann::ordered_json()
                             : nlohmann::ordered_json(info.max_sequence_length);
  }
  return m;
}

}  // namespace

void HandleModels(ApiState& state, const httplib::Request&, httplib::Response& res) {
  RequestLog log(state, "/v1/models");
  SendJson({{"object", "list"}, {"data", nlohmann::ordered_json::array({ModelObject(state)})}}, res);
}

void HandleModel(ApiState& state, const httplib::Request& req, httplib::Response& res) {
  RequestLog log(state, "/v1/models/{id}");
  const std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
  if (absl::Status s = state.CheckModel(id.empty() ? "-" : id); !s.ok()) {
    return SendError(log, s, res);
  }
  SendJson(ModelObject(state), res);
}

void HandleHealth(ApiState& state, const httplib::Request&, httplib::Response& res) {
  // Not logged per request (probes would flood the log); 503 with OpenAI's error body
  // otherwise, so that clients print why.
  const absl::Status serving = state.CheckServing();
  if (serving.ok()) return SendJson({{"status", "serving"}}, res);
  nlohmann::ordered_json body = {
      {"status", !state.ready() ? "loading" : state.draining() ? "draining" : "failed"}};
  body["error"] = OpenAiError(serving)["error"];
  res.status = 503;
  res.set_content(DumpJson(body), "application/json");
}

void HandleTokenize(ApiState& state, const httplib::Request& req, httplib::Response& res) {
  RequestLog log(state, "/tokenize");
  if (absl::Status s = state.CheckServing(); !s.ok()) return SendError(log, s, res);
  absl::StatusOr<TokenizeRequest> parsed = ParseTokenizeRequest(req.body);
  if (!parsed.ok()) return SendError(log, parsed.status(), res);
  if (absl::Status s = state.CheckModel(parsed->model); !s.ok()) return SendError(log, s, res);
  if (absl::Status s = CheckTokenizeText(state.limits(), static_cast<int64_t>(parsed->text.size()));
      !s.ok()) {
    return SendError(log, s, res);
  }
  const std::vector<int32_t> ids = EncodeWithBos(state.engine(), parsed->text, parsed->add_bos);
  nlohmann::ordered_json body = {{"tokens", ids}, {"count", ids.size()}};
  const Engine& engine = state.engine();
  body["max_model_len"] = engine.config().all_windows_finite()
                              ? nlohmann::ordered_json()
                              : nlohmann::ordered_json(engine.options().max_model_len);
  SendJson(body, res);
}

void HandleDetokenize(ApiState& state, const httplib::Request& req, httplib::Response& res) {
  RequestLog log(state, "/detokenize");
  if (absl::Status s = state.CheckServing(); !s.ok()) return SendError(log, s, res);
  absl::StatusOr<DetokenizeRequest> parsed = ParseDetokenizeRequest(req.body);
  if (!parsed.ok()) return SendError(log, parsed.status(), res);
  if (absl::Status s = state.CheckModel(parsed->model); !s.ok()) return SendError(log, s, res);
  if (absl::Status s = CheckPromptTokens(state.limits(), static_cast<int64_t>(parsed->tokens.size()));
      !s.ok()) {
    return SendError(log, s, res);
  }
  const int64_t vocab = state.engine().config().vocab_size;
  for (int32_t t : parsed->tokens) {
    if (t >= vocab) {
      return SendError(log,
                       absl::InvalidArgumentError(absl::StrCat(
                           "tokens: token id ", t, " is outside the vocabulary [0, ", vocab, ")")),
                       res);
    }
  }
  const std::string text = state.engine().tokenizer().Decode(parsed->tokens);
  // vLLM answers "prompt", llama.cpp "content": both, so either client reads its own.
  SendJson({{"prompt", text}, {"content", text}}, res);
}

void HandleScore(ApiState& state, const httplib::Request& req, httplib::Response& res) {
  RequestLog log(state, "/v1/score");
  if (absl::Status s = state.CheckServing(); !s.ok()) return SendError(log, s, res);
  absl::StatusOr<ScoreHttpRequest> parsed = ParseScoreRequest(req.body);
  if (!parsed.ok()) return SendError(log, parsed.status(), res);
  log.set_model(parsed->model);
  if (absl::Status s = state.CheckModel(parsed->model); !s.ok()) return SendError(log, s, res);
  absl::StatusOr<PreparedScore> prepared = PrepareScore(
      ScoreInput{std::move(parsed->text), parsed->add_bos, parsed->per_token_logprobs},
      state.engine(), state.limits());
  if (!prepared.ok()) return SendError(log, prepared.status(), res);
  log.details()["bytes"] = prepared->bytes;
  absl::StatusOr<std::unique_ptr<EngineCall>> call =
      EngineCall::SubmitScore(state.engine(), prepared->options, prepared->tokens, prepared->bytes);
  if (!call.ok()) return SendError(log, call.status(), res);
  log.set_id((*call)->id());
  std::vector<float> token_logprobs;
  for (;;) {
    std::optional<EngineEvent> e = (*call)->Next([] { return HttpServer::ClientGone(); });
    if (!e.has_value()) {
      log.set_status(absl::CancelledError("the client disconnected"));
      return;
    }
    token_logprobs.insert(token_logprobs.end(), e->token_logprobs.begin(), e->token_logprobs.end());
    if (!e->finished) continue;
    log.details()["tokens"] = e->score.tokens;
    if (absl::Status error = EventError(*e); !error.ok()) return SendError(log, error, res);
    const ScoreTotals& t = e->score;
    nlohmann::ordered_json body = {{"object", "score"},
                                   {"model", state.options().model_name},
                                   {"tokens", t.tokens},
                                   {"bytes", t.bytes},
                                   {"total_nll", t.total_nll},
                                   {"perplexity", t.perplexity()},
                                   {"bits_per_byte", t.bits_per_byte()}};
    if (prepared->options.per_token_logprobs) {
      body["token_ids"] = prepared->tokens;
      body["token_logprobs"] = token_logprobs;
    }
    body["usage"] = {{"prompt_tokens", t.tokens}, {"total_tokens", t.tokens}};
    return SendJson(body, res);
  }
}

}  // namespace mswa
