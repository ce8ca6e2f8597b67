// The RPCs answered at once on the gRPC thread, without the engine thread: Tokenize and
// GetModelInfo.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "mswa/v1/mswa.pb.h"
#include "server/api/limits.h"
#include "server/engine.h"

namespace mswa {

// INVALID_ARGUMENT past --max_tokenize_bytes; otherwise fills `response`.
grpc::Status HandleTokenize(const Engine& engine, const RequestLimits& limits,
                            const mswa::v1::TokenizeRequest& request,
                            mswa::v1::TokenizeResponse* response);

void HandleGetModelInfo(const Engine& engine, const std::string& model_name,
                        const RequestLimits& limits, mswa::v1::GetModelInfoResponse* response);

}  // namespace mswa
