#include "server/http/openai_error.h"

#include <cctype>

#include "absl/strings/ascii.h"

namespace mswa {

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    default: return 500;
  }
}

std::string StatusCodeName(absl::StatusCode code) {
  // absl spells them "INVALID_ARGUMENT" etc.
  return absl::StatusCodeToString(code);
}

std::string ParamOf(const std::string& message) {
  size_t i = 0;
  while (i < message.size() && (std::isalnum(static_cast<unsigned char>(message[i])) ||
                                message[i] == '_' || message[i] == '.' || message[i] == '[' ||
                                message[i] == ']')) {
    ++i;
  }
  if (i == 0) return "";
  if (i < message.size() && message[i] == ':') return message.substr(0, i);
  if (message.compare(i, 5, " must") == 0) return message.substr(0, i);
  return "";
}

nlohmann::ordered_json OpenAiError(const absl::Status& status) {
  const int http = HttpStatusFor(status);
  const std::string message(status.message());
  const char* type = http == 401   ? "authentication_error"
                     : http == 429 ? "rate_limit_error"
                     : http == 503 ? "service_unavailable"
                     : http >= 500 ? "server_error"
                                   : "invalid_request_error";
  const std::string param = ParamOf(message);
  std::string code = absl::AsciiStrToLower(StatusCodeName(status.code()));
  if (http == 404 && param == "model") code = "model_not_found";
  if (http == 401) code = "invalid_api_key";
  nlohmann::ordered_json error = nlohmann::ordered_json::object();
  error["message"] = message;
  error["type"] = type;
  error["param"] = param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param);
  error["code"] = code;
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["error"] = std::move(error);
  return out;
}

std::string DumpJson(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace mswa
