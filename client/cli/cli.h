// Shared pieces of the mswa-client commands (client/main.cc parses the flags and dispatches;
// each command in a file of its own): the flags they read, error printing and JSON output.
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include "absl/flags/declare.h"
#include "client/client.h"

ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, quiet);
ABSL_DECLARE_FLAG(bool, no_bos);
ABSL_DECLARE_FLAG(bool, per_token);

namespace mswa::client::cli {

inline constexpr char kProgram[] = "mswa-client";
// The command list printed by --help and after a usage error.
extern const char kCommands[];

// Usage error (exit status 2): the message, the command list and a pointer to --help.
int UsageError(const std::string& message);
// A failed RPC (exit status 1): "mswa-client: <CODE>: <message>" on stderr.
int RpcError(const grpc::Status& status);
// A message as JSON with the proto's field names and every primitive field printed.
std::string ToJson(const google::protobuf::Message& message);

// The commands kept in files of their own; each returns the process's exit status.
int RunScore(MswaClient& client, const std::vector<std::string>& files);  // score_command.cc
int RunInfo(MswaClient& client);                                          // info_command.cc

}  // namespace mswa::client::cli
