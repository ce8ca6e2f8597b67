// absl::Status -> grpc::Status: the one place where engine errors become RPC status codes.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mswa {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace mswa
