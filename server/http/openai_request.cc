#include "server/http/openai_request.h"

#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/request.h"

namespace mswa {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// The body's top-level object; each getter marks its field as known, and Finish refuses the
// fields nobody asked for.
class Body {
 public:
  static absl::StatusOr<Body> Parse(absl::string_view text) {
    Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError("the request body is not valid JSON");
    }
    if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
    return Body(std::move(j));
  }

  // The value of `key`, or null when absent (null counts as absent).
  const Json& Get(const std::string& key) {
    known_.insert(key);
    auto it = json_.find(key);
    return it == json_.end() ? null_ : *it;
  }
  bool Has(const std::string& key) { return !Get(key).is_null(); }

  absl::Status String(const std::string& key, std::string* out) {
    const Json& v = Get(key);
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_string()) return Bad(key, "must be a string");
    *out = v.get<std::string>();
    return absl::OkStatus();
  }
  absl::Status Bool(const std::string& key, bool* out) {
    const Json& v = Get(key);
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_boolean()) return Bad(key, "must be true or false");
    *out = v.get<bool>();
    return absl::OkStatus();
  }
  absl::Status Number(const std::string& key, double* out) {
    const Json& v = Get(key);
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_number()) return Bad(key, "must be a number");
    *out = v.get<double>();
    return absl::OkStatus();
  }
  absl::Status Integer(const std::string& key, int64_t* out) {
    const Json& v = Get(key);
    if (v.is_null()) return absl::OkStatus();
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return absl::OkStatus();
    }
    // 5.0 is an integer to JavaScript clients.
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
        *out = static_cast<int64_t>(d);
        return absl::OkStatus();
      }
    }
    return Bad(key, "must be an integer");
  }
  // Present and not null: 400 unless `ok(value)`.
  absl::Status OnlyIf(const std::string& key, bool (*ok)(const Json&), const std::string& what) {
    const Json& v = Get(key);
    if (v.is_null() || ok(v)) return absl::OkStatus();
    return Bad(key, what);
  }
  absl::Status Refuse(const std::string& key, const std::string& what) {
    if (Has(key)) return Bad(key, what);
    return absl::OkStatus();
  }

  // InvalidArgument naming the first field (in the body's order) nothing asked for.
  absl::Status Finish() const {
    for (auto it = json_.begin(); it != json_.end(); ++it) {
      if (known_.count(it.key()) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(it.key(), ": unknown field (not an OpenAI or vLLM field this server "
                                   "implements; see the README's list)"));
      }
    }
    return absl::OkStatus();
  }

 private:
  explicit Body(Json j) : json_(std::move(j)) {}
  Json json_;
  const Json null_;
  std::set<std::string> known_;
};


bool IsOne(const Json& v) { return v.is_number() && v.get<double>() == 1.0; }
bool IsZero(const Json& v) { return v.is_number() && v.get<double>() == 0.0; }
bool IsEmptyString(const Json& v) { return v.is_string() && v.get<std::string>().empty(); }
bool IsEmptyObject(const Json& v) { return v.is_object() && v.empty(); }

// stop: a string or a list of strings.
absl::Status ParseStop(const Json& v, std::vector<std::string>* out) {
  if (v.is_null()) return absl::OkStatus();
  if (v.is_string()) {
    out->push_back(v.get<std::string>());
    return absl::OkStatus();
  }
  if (!v.is_array()) return Bad("stop", "must be a string or a list of strings");
  for (const Json& s : v) {
    if (!s.is_string()) return Bad("stop", "must be a string or a list of strings");
    out->push_back(s.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseTokenIds(const std::string& field, const Json& list, std::vector<int32_t>* out) {
  for (const Json& t : list) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Bad(field, "token ids must be integers >= 0");
    }
    out->push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return absl::OkStatus();
}

// The fields /v1/completions and /v1/chat/completions share: sampling, stop, stream and the
// refused OpenAI features.
absl::Status ParseCommon(Body& b, GenerateInput* g, bool* stream, bool* include_usage) {
  RETURN_IF_ERROR(b.Number("temperature", &g->temperature));
  RETURN_IF_ERROR(b.Number("top_p", &g->top_p));
  RETURN_IF_ERROR(b.Integer("top_k", &g->top_k));
  if (g->top_k == -1) g->top_k = 0;  // vLLM's "off"
  RETURN_IF_ERROR(b.Number("min_p", &g->min_p));
  RETURN_IF_ERROR(b.Number("repetition_penalty", &g->repetition_penalty));
  RETURN_IF_ERROR(b.Bool("ignore_eos", &g->ignore_eos));
  RETURN_IF_ERROR(b.Bool("cache_prompt", &g->use_prefix_cache));  // llama.cpp's name
  if (b.Has("seed")) {
    int64_t seed = 0;
    RETURN_IF_ERROR(b.Integer("seed", &seed));
    g->seed = static_cast<uint64_t>(seed);
  }
  RETURN_IF_ERROR(ParseStop(b.Get("stop"), &g->stop));
  RETURN_IF_ERROR(b.Bool("stream", stream));
  const Json& options = b.Get("stream_options");
  if (!options.is_null()) {
    if (!*stream) return Bad("stream_options", "is only allowed when stream is true");
    if (!options.is_object()) return Bad("stream_options", "must be an object");
    for (auto it = options.begin(); it != options.end(); ++it) {
      if (it.key() == "include_usage") {
        if (!it->is_boolean()) return Bad("stream_options.include_usage", "must be true or false");
        *include_usage = it->get<bool>();
      } else if (it.key() != "continuous_usage_stats" || !it->is_boolean() || it->get<bool>()) {
        return Bad(absl::StrCat("stream_options.", it.key()), "not supported");
      }
    }
  }
  RETURN_IF_ERROR(b.OnlyIf("n", IsOne, "only 1 choice per request is supported"));
  RETURN_IF_ERROR(b.OnlyIf("presence_penalty", IsZero,
                                "not supported (only 0); use repetition_penalty"));
  RETURN_IF_ERROR(b.OnlyIf("frequency_penalty", IsZero,
                                "not supported (only 0); use repetition_penalty"));
  RETURN_IF_ERROR(b.OnlyIf("logit_bias", IsEmptyObject, "not supported"));
  std::string user;
  RETURN_IF_ERROR(b.String("user", &user));  // accepted, not used
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view text) {
  absl::StatusOr<Body> body = Body::Parse(text);
  if (!body.ok()) return body.status();
  Body& b = *body;
  CompletionRequest r;
  GenerateInput& g = r.generate;
  RETURN_IF_ERROR(b.String("model", &r.model));

  const Json& prompt = b.Get("prompt");
  if (prompt.is_null()) return Bad("prompt", "is required");
  if (prompt.is_string()) {
    g.prompt_text = prompt.get<std::string>();
  } else if (prompt.is_array()) {
    if (prompt.empty()) return Bad("prompt", "must not be empty");
    if (prompt[0].is_string() || prompt[0].is_array()) {
      if (prompt.size() != 1) {
        return Bad("prompt", absl::StrCat("a list of ", prompt.size(),
                                          " prompts is not supported (one prompt per request)"));
      }
      if (prompt[0].is_string()) {
        g.prompt_text = prompt[0].get<std::string>();
      } else {
        RETURN_IF_ERROR(ParseTokenIds("prompt", prompt[0], &g.prompt_token_ids));
      }
    } else {
      RETURN_IF_ERROR(ParseTokenIds("prompt", prompt, &g.prompt_token_ids));
    }
  } else {
    return Bad("prompt", "must be a string, a list of one string, or a list of token ids");
  }
  // Text prompts get BOS (add_special_tokens, as vLLM); token ids are used exactly as given.
  bool add_special = true;
  RETURN_IF_ERROR(b.Bool("add_special_tokens", &add_special));
  g.add_bos = g.prompt_text.has_value() && add_special;

  g.max_tokens = 16;  // OpenAI's default for completions
  RETURN_IF_ERROR(b.Integer("max_tokens", &g.max_tokens));
  RETURN_IF_ERROR(ParseCommon(b, &g, &r.stream, &r.include_usage));
  RETURN_IF_ERROR(b.Bool("echo", &r.echo));
  if (b.Has("logprobs")) {
    RETURN_IF_ERROR(b.Integer("logprobs", &r.logprobs));
    if (r.logprobs < 0 || r.logprobs > kMaxTopLogprobs) {
      return Bad("logprobs", absl::StrCat("must be in [0, ", kMaxTopLogprobs, "], got ", r.logprobs));
    }
    if (r.echo) {
      return Bad("echo", "echo together with logprobs is not supported (the prompt's logprobs are "
                         "not computed); use POST /v1/score for them");
    }
    g.logprobs = true;
    g.top_logprobs = r.logprobs;
  }
  RETURN_IF_ERROR(b.OnlyIf("best_of", IsOne, "only 1 is supported"));
  RETURN_IF_ERROR(b.OnlyIf("suffix", IsEmptyString, "not supported"));
  RETURN_IF_ERROR(b.Finish());
  return r;
}

absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(absl::string_view text) {
  absl::StatusOr<Body> body = Body::Parse(text);
  if (!body.ok()) return body.status();
  Body& b = *body;
  ChatCompletionRequest r;
  GenerateInput& g = r.generate;
  RETURN_IF_ERROR(b.String("model", &r.model));

  const Json& messages = b.Get("messages");
  if (!messages.is_array() || messages.empty()) {
    return Bad("messages", "must be a non-empty list of {\"role\", \"content\"} objects");
  }
  r.messages = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return Bad(field, "must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return Bad(field + ".role", "must be a string");
    const std::string role_name = role->get<std::string>();
    if (role_name != "system" && role_name != "user" && role_name != "assistant") {
      return Bad(field + ".role", absl::StrCat("\"", role_name.substr(0, 64),
                                               "\" is not supported (system, user or assistant)"));
    }
    std::string content;
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it.key() == "role" || it.key() == "name") continue;
      if (it.key() == "content") {
        const Json& c = *it;
        if (c.is_string()) {
          content = c.get<std::string>();
        } else if (c.is_array()) {
          for (size_t k = 0; k < c.size(); ++k) {
            const std::string part = absl::StrCat(field, ".content[", k, "]");
            if (!c[k].is_object()) return Bad(part, "must be an object");
            auto type = c[k].find("type");
            if (type == c[k].end() || !type->is_string()) return Bad(part + ".type", "must be a string");
            if (*type != "text") {
              return Bad(part + ".type", absl::StrCat("\"", type->get<std::string>().substr(0, 64),
                                                      "\" content is not supported (text only)"));
            }
            auto t = c[k].find("text");
            if (t == c[k].end() || !t->is_string()) return Bad(part + ".text", "must be a string");
            content += t->get<std::string>();
          }
        } else if (!c.is_null()) {
          return Bad(field + ".content", "must be a string or a list of text parts");
        }
      } else if (it.key() == "tool_calls" || it.key() == "function_call") {
        if (!it->is_null() && !(it->is_array() && it->empty())) {
          return Bad(absl::StrCat(field, ".", it.key()), "tool calls are not supported");
        }
      } else {
        return Bad(absl::StrCat(field, ".", it.key()), "unknown field");
      }
    }
    r.messages.push_back({{"role", role_name}, {"content", content}});
  }

  if (b.Has("max_completion_tokens")) {
    RETURN_IF_ERROR(b.Integer("max_completion_tokens", &g.max_tokens));
    r.max_tokens_given = true;
    if (b.Has("max_tokens")) {
      int64_t legacy = 0;
      RETURN_IF_ERROR(b.Integer("max_tokens", &legacy));
      if (legacy != g.max_tokens) {
        return Bad("max_tokens", "give max_completion_tokens or max_tokens, not two different values");
      }
    }
  } else if (b.Has("max_tokens")) {
    RETURN_IF_ERROR(b.Integer("max_tokens", &g.max_tokens));
    r.max_tokens_given = true;
  }
  RETURN_IF_ERROR(ParseCommon(b, &g, &r.stream, &r.include_usage));
  RETURN_IF_ERROR(b.Bool("logprobs", &r.logprobs));
  RETURN_IF_ERROR(b.Integer("top_logprobs", &r.top_logprobs));
  if (r.top_logprobs != 0 && !r.logprobs) return Bad("top_logprobs", "needs \"logprobs\": true");
  if (r.top_logprobs < 0 || r.top_logprobs > kMaxTopLogprobs) {
    return Bad("top_logprobs", absl::StrCat("must be in [0, ", kMaxTopLogprobs, "], got ", r.top_logprobs));
  }
  g.logprobs = r.logprobs;
  g.top_logprobs = r.top_logprobs;
  for (const char* refused : {"tools", "tool_choice", "functions", "function_call",
                              "response_format", "parallel_tool_calls"}) {
    RETURN_IF_ERROR(b.Refuse(refused, "not supported"));
  }
  RETURN_IF_ERROR(b.Finish());
  return r;
}

absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(absl::string_view text) {
  absl::StatusOr<Body> body = Body::Parse(text);
  if (!body.ok()) return body.status();
  Body& b = *body;
  TokenizeRequest r;
  RETURN_IF_ERROR(b.String("model", &r.model));
  const bool has_prompt = b.Has("prompt"), has_content = b.Has("content");
  if (has_prompt == has_content) return Bad("prompt", "give \"prompt\" (or \"content\"), a string");
  RETURN_IF_ERROR(b.String(has_prompt ? "prompt" : "content", &r.text));
  RETURN_IF_ERROR(b.Bool("add_special_tokens", &r.add_bos));
  RETURN_IF_ERROR(b.Finish());
  return r;
}

absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(absl::string_view text) {
  absl::StatusOr<Body> body = Body::Parse(text);
  if (!body.ok()) return body.status();
  Body& b = *body;
  DetokenizeRequest r;
  RETURN_IF_ERROR(b.String("model", &r.model));
  const Json& tokens = b.Get("tokens");
  if (!tokens.is_array()) return Bad("tokens", "must be a list of token ids");
  RETURN_IF_ERROR(ParseTokenIds("tokens", tokens, &r.tokens));
  RETURN_IF_ERROR(b.Finish());
  return r;
}

absl::StatusOr<ScoreHttpRequest> ParseScoreRequest(absl::string_view text) {
  absl::StatusOr<Body> body = Body::Parse(text);
  if (!body.ok()) return body.status();
  Body& b = *body;
  ScoreHttpRequest r;
  RETURN_IF_ERROR(b.String("model", &r.model));
  if (!b.Get("text").is_string()) return Bad("text", "must be a string");
  RETURN_IF_ERROR(b.String("text", &r.text));
  RETURN_IF_ERROR(b.Bool("add_bos", &r.add_bos));
  RETURN_IF_ERROR(b.Bool("per_token_logprobs", &r.per_token_logprobs));
  RETURN_IF_ERROR(b.Finish());
  return r;
}

}  // namespace mswa
