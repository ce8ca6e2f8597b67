// The OpenAI request bodies: what each becomes, and every refusal naming its field.
#include "server/http/openai_request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/http/openai_error.h"

namespace mswa {
namespace {

// The refusal of `body`: InvalidArgument whose OpenAI "param" is `field`.
void ExpectRefused(const absl::Status& s, const std::string& field, const std::string& body) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << body << ": " << s;
  EXPECT_EQ(ParamOf(std::string(s.message())), field) << body << ": " << s.message();
  EXPECT_EQ(HttpStatusFor(s), 400);
}

TEST(CompletionRequest, TextPromptGetsBosAndOpenAiDefaults) {
  auto r = ParseCompletionRequest(R"({"model": "m", "prompt": "Hello"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  ASSERT_TRUE(r->generate.prompt_text.has_value());
  EXPECT_EQ(*r->generate.prompt_text, "Hello");
  EXPECT_TRUE(r->generate.add_bos);
  EXPECT_EQ(r->generate.max_tokens, 16);
  EXPECT_EQ(r->generate.temperature, 1.0);
  EXPECT_FALSE(r->generate.seed.has_value());
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->logprobs, -1);
}

TEST(CompletionRequest, PromptForms) {
  auto one = ParseCompletionRequest(R"({"prompt": ["Hi"]})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one->generate.prompt_text, "Hi");
  // Token ids are used as given: no BOS.
  auto ids = ParseCompletionRequest(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_FALSE(ids->generate.prompt_text.has_value());
  EXPECT_EQ(ids->generate.prompt_token_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(ids->generate.add_bos);
  auto nested = ParseCompletionRequest(R"({"prompt": [[4, 5]]})");
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->generate.prompt_token_ids, (std::vector<int32_t>{4, 5}));
  auto no_bos = ParseCompletionRequest(R"({"prompt": "x", "add_special_tokens": false})");
  ASSERT_TRUE(no_bos.ok());
  EXPECT_FALSE(no_bos->generate.add_bos);
}

TEST(CompletionRequest, EveryFieldMapsOntoTheEngine) {
  auto r = ParseCompletionRequest(R"({"prompt": "x", "max_tokens": 7, "temperature": 0.5,
      "top_p": 0.9, "top_k": -1, "min_p": 0.1, "repetition_penalty": 1.2, "seed": 42,
      "stop": ["a", "b"], "ignore_eos": true, "logprobs": 3, "stream": true,
      "stream_options": {"include_usage": true}, "user": "u", "n": 1, "best_of": 1,
      "presence_penalty": 0, "frequency_penalty": 0, "logit_bias": {}, "suffix": null})");
  ASSERT_TRUE(r.ok()) << r.status();
  const GenerateInput& g = r->generate;
  EXPECT_EQ(g.max_tokens, 7);
  EXPECT_EQ(g.temperature, 0.5);
  EXPECT_DOUBLE_EQ(g.top_p, 0.9);
  EXPECT_EQ(g.top_k, 0);  // vLLM's -1 is off
  EXPECT_DOUBLE_EQ(g.min_p, 0.1);
  EXPECT_DOUBLE_EQ(g.repetition_penalty, 1.2);
  EXPECT_EQ(g.seed, 42u);
  EXPECT_EQ(g.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(g.ignore_eos);
  EXPECT_TRUE(g.logprobs);
  EXPECT_EQ(g.top_logprobs, 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  auto single_stop = ParseCompletionRequest(R"({"prompt": "x", "stop": "end", "max_tokens": 5.0})");
  ASSERT_TRUE(single_stop.ok()) << single_stop.status();
  EXPECT_EQ(single_stop->generate.stop, (std::vector<std::string>{"end"}));
  EXPECT_EQ(single_stop->generate.max_tokens, 5);
}

TEST(CompletionRequest, NullIsAbsent) {
  auto r = ParseCompletionRequest(
      R"({"prompt": "x", "max_tokens": null, "stop": null, "seed": null, "n": null, "tools": null})");
  // null counts as absent for the fields the endpoint knows; an unknown key ("tools" is not a
  // completions field) is refused whatever its value.
  ExpectRefused(r.status(), "tools", "tools on completions");
  auto ok = ParseCompletionRequest(R"({"prompt": "x", "max_tokens": null, "stop": null, "n": null})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->generate.max_tokens, 16);
}

TEST(CompletionRequest, RefusalsNameTheirField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "prompt"},
      {R"({"prompt": 5})", "prompt"},
      {R"({"prompt": []})", "prompt"},
      {R"({"prompt": ["a", "b"]})", "prompt"},
      {R"({"prompt": [1, -2]})", "prompt"},
      {R"({"prompt": [1, "x"]})", "prompt"},
      {R"({"prompt": "x", "n": 2})", "n"},
      {R"({"prompt": "x", "best_of": 3})", "best_of"},
      {R"({"prompt": "x", "suffix": "end"})", "suffix"},
      {R"({"prompt": "x", "logit_bias": {"1": 5}})", "logit_bias"},
      {R"({"prompt": "x", "presence_penalty": 0.5})", "presence_penalty"},
      {R"({"prompt": "x", "frequency_penalty": 1})", "frequency_penalty"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens"},
      {R"({"prompt": "x", "stop": 3})", "stop"},
      {R"({"prompt": "x", "stop": ["a", 1]})", "stop"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs"},
      {R"({"prompt": "x", "logprobs": 1, "echo": true})", "echo"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
      {R"({"prompt": "x", "stream": true, "stream_options": {"other": 1}})", "stream_options.other"},
      {R"({"prompt": "x", "max_token": 5})", "max_token"},
      {R"({"prompt": "x", "ignore_eos": 1})", "ignore_eos"},
      {R"({"prompt": "x", "model": 3})", "model"},
  };
  for (const auto& [body, field] : cases) ExpectRefused(ParseCompletionRequest(body).status(), field, body);
}

TEST(CompletionRequest, NotJsonOrNotAnObject) {
  for (const char* body : {"", "{", "[1]", "\"x\"", "{\"prompt\": \"\xff\"}"}) {
    const absl::Status s = ParseCompletionRequest(body).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(HttpStatusFor(s), 400);
  }
}

TEST(ChatCompletionRequest, MessagesAreNormalizedForTheTemplate) {
  auto r = ParseChatCompletionRequest(R"({"model": "m", "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null, "tool_calls": []},
      {"role": "user", "content": "Again", "name": "bob"}],
      "max_completion_tokens": 9, "logprobs": true, "top_logprobs": 2})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->messages.size(), 4u);
  EXPECT_EQ(r->messages[0]["role"], "system");
  EXPECT_EQ(r->messages[1]["content"], "Hi there");
  EXPECT_EQ(r->messages[2]["content"], "");
  EXPECT_EQ(r->messages[3].dump(), R"({"role":"user","content":"Again"})");
  EXPECT_TRUE(r->max_tokens_given);
  EXPECT_EQ(r->generate.max_tokens, 9);
  EXPECT_TRUE(r->generate.logprobs);
  EXPECT_EQ(r->generate.top_logprobs, 2);
  auto no_max = ParseChatCompletionRequest(R"({"messages": [{"role": "user", "content": "x"}]})");
  ASSERT_TRUE(no_max.ok());
  EXPECT_FALSE(no_max->max_tokens_given);
  auto legacy = ParseChatCompletionRequest(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4})");
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->generate.max_tokens, 4);
}

TEST(ChatCompletionRequest, RefusalsNameTheirField) {
  const std::string user = R"("messages": [{"role": "user", "content": "x"}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": ["x"]})", "messages[0]"},
      {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})", "messages[0].content[0].text"},
      {R"({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}]})",
       "messages[0].tool_calls"},
      {R"({"messages": [{"role": "user", "content": "x", "extra": 1}]})", "messages[0].extra"},
      {"{" + user + R"(, "tools": [{"type": "function"}]})", "tools"},
      {"{" + user + R"(, "tool_choice": "auto"})", "tool_choice"},
      {"{" + user + R"(, "functions": []})", "functions"},
      {"{" + user + R"(, "function_call": "auto"})", "function_call"},
      {"{" + user + R"(, "response_format": {"type": "json_object"}})", "response_format"},
      {"{" + user + R"(, "n": 3})", "n"},
      {"{" + user + R"(, "logit_bias": {"5": 1}})", "logit_bias"},
      {"{" + user + R"(, "top_logprobs": 2})", "top_logprobs"},
      {"{" + user + R"(, "logprobs": true, "top_logprobs": 21})", "top_logprobs"},
      {"{" + user + R"(, "logprobs": 1})", "logprobs"},
      {"{" + user + R"(, "max_tokens": 3, "max_completion_tokens": 4})", "max_tokens"},
      {"{" + user + R"(, "temperature": null, "seed": "s"})", "seed"},
      {"{" + user + R"(, "frobnicate": true})", "frobnicate"},
  };
  for (const auto& [body, field] : cases) {
    ExpectRefused(ParseChatCompletionRequest(body).status(), field, body);
  }
}

TEST(OtherRequests, TokenizeDetokenizeScore) {
  auto t = ParseTokenizeRequest(R"({"prompt": "hi", "add_special_tokens": false})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->text, "hi");
  EXPECT_FALSE(t->add_bos);
  auto c = ParseTokenizeRequest(R"({"content": "yo"})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->text, "yo");
  EXPECT_TRUE(c->add_bos);
  ExpectRefused(ParseTokenizeRequest(R"({})").status(), "prompt", "{}");
  ExpectRefused(ParseTokenizeRequest(R"({"prompt": "a", "content": "b"})").status(), "prompt", "both");
  ExpectRefused(ParseTokenizeRequest(R"({"prompt": "a", "x": 1})").status(), "x", "unknown");
  auto d = ParseDetokenizeRequest(R"({"tokens": [1, 2]})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tokens, (std::vector<int32_t>{1, 2}));
  ExpectRefused(ParseDetokenizeRequest(R"({"tokens": "12"})").status(), "tokens", "string");
  ExpectRefused(ParseDetokenizeRequest(R"({"tokens": [-1]})").status(), "tokens", "negative");
  auto s = ParseScoreRequest(R"({"text": "abc", "add_bos": false, "per_token_logprobs": true})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->text, "abc");
  EXPECT_FALSE(s->add_bos);
  EXPECT_TRUE(s->per_token_logprobs);
  ExpectRefused(ParseScoreRequest(R"({"text": 1})").status(), "text", "number");
  ExpectRefused(ParseScoreRequest(R"({"input": "x"})").status(), "text", "missing");
}

TEST(OpenAiError, ShapeAndHttpStatus) {
  const auto e = OpenAiError(absl::InvalidArgumentError("top_p must be in (0, 1], got 2"));
  EXPECT_EQ(e["error"]["param"], "top_p");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["code"], "invalid_argument");
  const auto model = OpenAiError(absl::NotFoundError("model: \"x\" is not served here"));
  EXPECT_EQ(model["error"]["code"], "model_not_found");
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("")), 404);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("")), 429);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("")), 503);
  EXPECT_EQ(HttpStatusFor(absl::UnauthenticatedError("")), 401);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("")), 500);
  EXPECT_TRUE(OpenAiError(absl::InternalError("boom"))["error"]["param"].is_null());
  // Bytes that are not UTF-8 never break the body.
  EXPECT_EQ(DumpJson(nlohmann::ordered_json{{"t", "a\xff"}}), "{\"t\":\"a\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace mswa
