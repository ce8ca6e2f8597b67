// POST /v1/chat/completions: the conversation rendered by the model's chat template
// (server/api/chat_prompt.h), then generated like any prompt.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/http/endpoints.h"
#include "server/http/generation.h"
#include "server/http/openai_request.h"

namespace mswa {
namespace {

nlohmann::ordered_json Bytes(const std::string& s) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

// choices[].logprobs.content of a chat completion: one entry per sampled token.
nlohmann::ordered_json ChatLogprobs(const Tokenizer& tok, const EngineEvent& e) {
  nlohmann::ordered_json content = nlohmann::ordered_json::array();
  for (const SampleResult& s : e.logprobs) {
    const std::string token = tok.TokenBytes(s.token);
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (const TokenLogprob& alt : s.top) {
      const std::string t = tok.TokenBytes(alt.token);
      top.push_back({{"token", t}, {"logprob", alt.logprob}, {"bytes", Bytes(t)}});
    }
    content.push_back({{"token", token}, {"logprob", s.logprob}, {"bytes", Bytes(token)},
                       {"top_logprobs", std::move(top)}});
  }
  return content;
}

class ChatRenderer final : public GenerationRenderer {
 public:
  ChatRenderer(const Tokenizer& tok, std::string model, bool logprobs)
      : tok_(tok), model_(std::move(model)), created_(absl::ToUnixSeconds(absl::Now())),
        logprobs_(logprobs) {}

  std::vector<nlohmann::ordered_json> Chunks(const EngineEvent& e) override {
    std::vector<nlohmann::ordered_json> out;
    if (!started_) {
      // OpenAI's first chunk: the role, no content yet.
      started_ = true;
      out.push_back(Chunk(e.request_id, {{"role", "assistant"}, {"content", ""}},
                          nlohmann::ordered_json(), nlohmann::ordered_json()));
    }
    if (e.text.empty() && e.token_ids.empty() && !e.finished) return out;
    nlohmann::ordered_json delta = nlohmann::ordered_json::object();
    if (!e.text.empty()) delta["content"] = e.text;
    out.push_back(Chunk(e.request_id, std::move(delta),
                        logprobs_ ? nlohmann::ordered_json{{"content", ChatLogprobs(tok_, e)}}
                                  : nlohmann::ordered_json(),
                        e.finished ? nlohmann::ordered_json(OpenAiFinishReason(e.finish_reason))
                                   : nlohmann::ordered_json()));
    return out;
  }

  void Add(const EngineEvent& e) override {
    text_ += e.text;
    if (logprobs_) {
      for (auto& entry : ChatLogprobs(tok_, e)) content_logprobs_.push_back(std::move(entry));
    }
  }

  nlohmann::ordered_json Body(const EngineEvent& last) override {
    nlohmann::ordered_json body = Header(last.request_id, "chat.completion");
    body["choices"] = nlohmann::ordered_json::array(
        {{{"index", 0},
          {"message", {{"role", "assistant"}, {"content", text_}}},
          {"logprobs", logprobs_ ? nlohmann::ordered_json{{"content", content_logprobs_}}
                                 : nlohmann::ordered_json()},
          {"finish_reason", OpenAiFinishReason(last.finish_reason)}}});
    body["usage"] = Usage(last);
    return body;
  }

  nlohmann::ordered_json UsageChunk(const EngineEvent& last) override {
    nlohmann::ordered_json chunk = Header(last.request_id, "chat.completion.chunk");
    chunk["choices"] = nlohmann::ordered_json::array();
    chunk["usage"] = Usage(last);
    return chunk;
  }

 private:
  nlohmann::ordered_json Header(int64_t id, const char* object) const {
    return {{"id", absl::StrCat("chatcmpl-", id)},
            {"object", object},
            {"created", created_},
            {"model", model_}};
  }
  nlohmann::ordered_json Chunk(int64_t id, nlohmann::ordered_json delta,
                               nlohmann::ordered_json logprobs,
                               nlohmann::ordered_json finish_reason) const {
    nlohmann::ordered_json chunk = Header(id, "chat.completion.chunk");
    chunk["choices"] = nlohmann::ordered_json::array({{{"index", 0},
                                                       {"delta", std::move(delta)},
                                                       {"logprobs", std::move(logprobs)},
                                                       {"finish_reason", std::move(finish_reason)}}});
    return chunk;
  }

  const Tokenizer& tok_;
  const std::string model_;
  const int64_t created_;
  const bool logprobs_;
  bool started_ = false;
  std::string text_;
  nlohmann::ordered_json content_logprobs_ = nlohmann::ordered_json::array();
};

}  // namespace

void HandleChatCompletions(ApiState& state, const httplib::Request& req, httplib::Response& res) {
  auto log = std::make_shared<RequestLog>(state, "/v1/chat/completions");
  if (absl::Status s = state.CheckServing(); !s.ok()) return SendError(*log, s, res);
  absl::StatusOr<ChatCompletionRequest> parsed = ParseChatCompletionRequest(req.body);
  if (!parsed.ok()) return SendError(*log, parsed.status(), res);
  log->set_model(parsed->model);
  if (absl::Status s = state.CheckModel(parsed->model); !s.ok()) return SendError(*log, s, res);
  if (!state.chat().ok()) {
    return SendError(*log,
                     absl::InternalError(absl::StrCat("the model's chat template does not load: ",
                                                      state.chat().status().message())),
                     res);
  }
  absl::StatusOr<ChatPromptText> prompt = state.chat()->Render(parsed->messages);
  if (!prompt.ok()) return SendError(*log, prompt.status(), res);
  const Engine& engine = state.engine();
  GenerateInput& in = parsed->generate;
  in.prompt_text = std::move(prompt->text);
  in.add_bos = prompt->add_bos;
  // OpenAI's chat default: as many tokens as the server allows.
  if (!parsed->max_tokens_given) in.max_tokens = engine.options().max_new_tokens;
  absl::StatusOr<PreparedGenerate> prepared = PrepareGenerate(in, engine, state.limits(), FreshSeed());
  if (!prepared.ok()) return SendError(*log, prepared.status(), res);
  auto renderer = std::make_unique<ChatRenderer>(engine.tokenizer(), state.options().model_name,
                                                 parsed->logprobs);
  RunGeneration(state, std::move(log),
                GenerationRequest{std::move(prepared).value(), parsed->stream, parsed->include_usage},
                std::move(renderer), res);
}

}  // namespace mswa
