// Conversions between the engine's plain structs and the mswa.v1 protos, and the gRPC statuses
// the service answers with.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "mswa/v1/mswa.pb.h"
#include "server/request.h"

namespace mswa {

// "OK", "INVALID_ARGUMENT", ...: the canonical name of a status code (logs, metrics labels).
const char* CodeName(grpc::StatusCode code);

grpc::Status InvalidArgument(const std::string& message);
// UNAVAILABLE while the server drains / before the model is loaded.
grpc::Status DrainingStatus();
grpc::Status LoadingStatus();

// The status a finished engine request ends its RPC with.
grpc::Status FinalStatus(const EngineEvent& e);
mswa::v1::FinishReason ToProto(FinishReason r);

// proto3 strings must be UTF-8, but a model can emit bytes that never form a character (the
// detokenizer releases them once that is certain). Each such byte becomes U+FFFD; the exact
// bytes stay available in the logprobs' token fields.
std::string ToValidUtf8(const std::string& in);

// Totals only (tokens, bytes, NLL, perplexity, bits per byte).
void FillResult(const ScoreTotals& t, mswa::v1::ScoreResult* out);

}  // namespace mswa
