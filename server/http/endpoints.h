// The HTTP API's handlers, one concern per file: completions.cc, chat_completions.cc and
// basic_endpoints.cc (models, health, tokenize, detokenize, score). Each runs on the pool thread
// serving its connection (server/http/http_server.h) and answers errors in OpenAI's shape
// (server/http/openai_error.h).
#pragma once

#include <httplib.h>

#include "server/http/api_state.h"

namespace mswa {

void HandleCompletions(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleChatCompletions(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleModels(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleModel(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleHealth(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleTokenize(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleDetokenize(ApiState& state, const httplib::Request& req, httplib::Response& res);
void HandleScore(ApiState& state, const httplib::Request& req, httplib::Response& res);

}  // namespace mswa
