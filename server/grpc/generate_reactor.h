// Generate: server streaming. Validates and submits the request on the gRPC thread; the engine's
// events become messages in a queue written one at a time.
#pragma once

#include <grpcpp/grpcpp.h>

#include "mswa/v1/mswa.pb.h"
#include "server/service.h"

namespace mswa {

// A reactor that deletes itself when the call is done. `service` is ready (Attach was called).
grpc::ServerWriteReactor<mswa::v1::GenerateResponse>* NewGenerateReactor(
    MswaServiceImpl* service, const mswa::v1::GenerateRequest& request);

}  // namespace mswa
