// The pieces every mswa-client command shares: the command list, usage and RPC errors, JSON.
#include <iostream>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "client/cli/cli.h"

namespace mswa::client::cli {

const char kCommands[] =
    "usage: mswa-client [global flags] COMMAND [args] [flags]\n"
    "\n"
    "commands:\n"
    "  generate PROMPT   stream a continuation of PROMPT ('-' = stdin)\n"
    "  score FILE...     perplexity and bits/byte of each file ('-' = stdin), streamed\n"
    "  info              the served model: architecture, windows per layer, KV bound, limits\n"
    "  health            grpc.health.v1 check: exit 0 only when SERVING\n"
    "  tokenize TEXT     token ids and token bytes of TEXT ('-' = stdin)\n"
    "  bench             load generator: throughput, TTFT, inter-token and end-to-end latency\n"
    "  help              this text\n";

int UsageError(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n\n" << kCommands
            << "\nrun 'mswa-client --help' for every flag\n";
  return 2;
}

int RpcError(const grpc::Status& status) {
  std::cerr << kProgram << ": " << mswa::client::StatusCodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
  return 1;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // Machine readers should not need the proto's defaults (a logprob of 0 would vanish).
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "{}";
  return json;
}

}  // namespace mswa::client::cli
