// POST /v1/completions: OpenAI's legacy completions (vLLM's shape, extensions included).
#include "server/http/endpoints.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/http/generation.h"
#include "server/http/openai_request.h"

namespace mswa {
namespace {

// choices[].logprobs of a legacy completion: parallel lists over the tokens, text_offset counting
// bytes of the returned text (the echoed prompt included) up to each token.
class LegacyLogprobs {
 public:
  LegacyLogprobs(const Tokenizer& tok, int64_t offset) : tok_(tok), offset_(offset) {}

  void Add(const EngineEvent& e) {
    for (const SampleResult& s : e.logprobs) {
      const std::string token = tok_.TokenBytes(s.token);
      tokens_.push_back(token);
      token_logprobs_.push_back(s.logprob);
      nlohmann::ordered_json top = nlohmann::ordered_json::object();
      for (const TokenLogprob& alt : s.top) {
        const std::string t = tok_.TokenBytes(alt.token);
        if (!top.contains(t)) top[t] = alt.logprob;  // same bytes: the likelier one stays
      }
      top_logprobs_.push_back(std::move(top));
      text_offset_.push_back(offset_);
      offset_ += static_cast<int64_t>(token.size());
    }
  }
  nlohmann::ordered_json Take() {
    nlohmann::ordered_json out = {{"tokens", std::move(tokens_)},
                                  {"token_logprobs", std::move(token_logprobs_)},
                                  {"top_logprobs", std::move(top_logprobs_)},
                                  {"text_offset", std::move(text_offset_)}};
    tokens_ = nlohmann::ordered_json::array();
    token_logprobs_ = nlohmann::ordered_json::array();
    top_logprobs_ = nlohmann::ordered_json::array();
    text_offset_ = nlohmann::ordered_json::array();
    return out;
  }

 private:
  const Tokenizer& tok_;
  int64_t offset_;
  nlohmann::ordered_json tokens_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json token_logprobs_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json top_logprobs_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json text_offset_ = nlohmann::ordered_json::array();
};

class CompletionRenderer final : public GenerationRenderer {
 public:
  CompletionRenderer(const Tokenizer& tok, std::string model, std::string echo, bool logprobs)
      : model_(std::move(model)),
        created_(absl::ToUnixSeconds(absl::Now())),
        echo_(std::move(echo)),
        logprobs_(logprobs),
        lp_(tok, static_cast<int64_t>(echo_.size())) {}

  std::vector<nlohmann::ordered_json> Chunks(const EngineEvent& e) override {
    std::string text = e.text;
    if (!echoed_) {
      text = echo_ + text;
      echoed_ = true;
    }
    if (text.empty() && e.token_ids.empty() && !e.finished) return {};
    if (logprobs_) lp_.Add(e);
    nlohmann::ordered_json choice = {
        {"index", 0},
        {"text", text},
        {"logprobs", logprobs_ ? lp_.Take() : nlohmann::ordered_json()},
        {"finish_reason", e.finished ? nlohmann::ordered_json(OpenAiFinishReason(e.finish_reason))
                                     : nlohmann::ordered_json()}};
    if (e.finished) choice["stop_reason"] = StopReason(e);
    nlohmann::ordered_json chunk = Header(e.request_id);
    chunk["choices"] = nlohmann::ordered_json::array({choice});
    return {chunk};
  }

  void Add(const EngineEvent& e) override {
    text_ += e.text;
    if (logprobs_) lp_.Add(e);
  }

  nlohmann::ordered_json Body(const EngineEvent& last) override {
    nlohmann::ordered_json body = Header(last.request_id);
    body["choices"] = nlohmann::ordered_json::array(
        {{{"index", 0},
          {"text", echo_ + text_},
          {"logprobs", logprobs_ ? lp_.Take() : nlohmann::ordered_json()},
          {"finish_reason", OpenAiFinishReason(last.finish_reason)},
          {"stop_reason", StopReason(last)}}});
    body["usage"] = Usage(last);
    return body;
  }

  nlohmann::ordered_json UsageChunk(const EngineEvent& last) override {
    nlohmann::ordered_json chunk = Header(last.request_id);
    chunk["choices"] = nlohmann::ordered_json::array();
    chunk["usage"] = Usage(last);
    return chunk;
  }

 private:
  nlohmann::ordered_json Header(int64_t id) const {
    return {{"id", absl::StrCat("cmpl-", id)},
            {"object", "text_completion"},
            {"created", created_},
            {"model", model_}};
  }
  // vLLM's extension: the stop string that ended the text (null for EOS and length).
  static nlohmann::ordered_json StopReason(const EngineEvent& e) {
    return e.finish_reason == FinishReason::kStop && !e.matched_stop.empty()
               ? nlohmann::ordered_json(e.matched_stop)
               : nlohmann::ordered_json();
  }

  const std::string model_;
  const int64_t created_;
  const std::string echo_;
  const bool logprobs_;
  bool echoed_ = false;
  std::string text_;
  LegacyLogprobs lp_;
};

}  // namespace

void HandleCompletions(ApiState& state, const httplib::Request& req, httplib::Response& res) {
  auto log = std::make_shared<RequestLog>(state, "/v1/completions");
  if (absl::Status s = state.CheckServing(); !s.ok()) return SendError(*log, s, res);
  absl::StatusOr<CompletionRequest> parsed = ParseCompletionRequest(req.body);
  if (!parsed.ok()) return SendError(*log, parsed.status(), res);
  log->set_model(parsed->model);
  if (absl::Status s = state.CheckModel(parsed->model); !s.ok()) return SendError(*log, s, res);
  const Engine& engine = state.engine();
  absl::StatusOr<PreparedGenerate> prepared =
      PrepareGenerate(parsed->generate, engine, state.limits(), FreshSeed());
  if (!prepared.ok()) return SendError(*log, prepared.status(), res);
  std::string echo;
  if (parsed->echo) {
    echo = parsed->generate.prompt_text.has_value()
               ? *parsed->generate.prompt_text
               : engine.tokenizer().Decode(parsed->generate.prompt_token_ids);
  }
  auto renderer = std::make_unique<CompletionRenderer>(engine.tokenizer(), state.options().model_name,
                                                       std::move(echo), parsed->logprobs >= 0);
  RunGeneration(state, std::move(log),
                GenerationRequest{std::move(prepared).value(), parsed->stream, parsed->include_usage},
                std::move(renderer), res);
}

}  // namespace mswa
