// Score: unary. The text is checked against --max_score_bytes, tokenized and fed on the gRPC
// thread; the engine's final event completes the response.
#pragma once

#include <grpcpp/grpcpp.h>

#include "mswa/v1/mswa.pb.h"
#include "server/service.h"

namespace mswa {

// A reactor that deletes itself when the call is done. `service` is ready (Attach was called);
// `response` is gRPC's and outlives the reactor's OnDone.
grpc::ServerUnaryReactor* NewScoreReactor(MswaServiceImpl* service,
                                          const mswa::v1::ScoreRequest& request,
                                          mswa::v1::ScoreResponse* response);

}  // namespace mswa
