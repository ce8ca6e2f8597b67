#include "server/json_log.h"

#include <grpc/support/log.h>
#include <google/protobuf/stubs/logging.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mswa {
namespace {

void WriteLine(const std::string& line) {
  // One write(2) per line: stderr is unbuffered, and a single write of a line is not
  // interleaved with other threads' lines.
  std::string out = line;
  out += '\n';
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = write(STDERR_FILENO, out.data() + done, out.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

const char* ProtobufLevel(google::protobuf::LogLevel level) {
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO: return "INFO";
    case google::protobuf::LOGLEVEL_WARNING: return "WARNING";
    case google::protobuf::LOGLEVEL_ERROR: return "ERROR";
    case google::protobuf::LOGLEVEL_FATAL: return "FATAL";
  }
  return "UNKNOWN";
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  LogEvent("library_log", {{"library", "protobuf"},
                           {"severity", ProtobufLevel(level)},
                           {"file", file == nullptr ? "" : file},
                           {"line", line},
                           {"message", TruncateForLog(message, 4 * kMaxLoggedStringBytes)}});
}

void GrpcLog(gpr_log_func_args* args) {
  LogEvent("library_log", {{"library", "grpc"},
                           {"severity", gpr_log_severity_string(args->severity)},
                           {"file", args->file == nullptr ? "" : args->file},
                           {"line", args->line},
                           {"message", TruncateForLog(args->message == nullptr ? "" : args->message,
                                                      4 * kMaxLoggedStringBytes)}});
}

}  // namespace

std::string TruncateForLog(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t cut = max_bytes;
  // Back off over continuation bytes (10xxxxxx) so the cut lands before a character's first
  // byte; at most 3 of them belong to one character.
  for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++i) --cut;
  return std::string(s.substr(0, cut));
}

std::string FormatLogLine(absl::string_view event, const nlohmann::ordered_json& fields) {
  nlohmann::ordered_json line;
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  line["event"] = std::string(event);
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void LogEvent(absl::string_view event, const nlohmann::ordered_json& fields) {
  WriteLine(FormatLogLine(event, fields));
}

void LogEvent(absl::string_view event) { WriteLine(FormatLogLine(event, nlohmann::ordered_json::object())); }

void RouteLibraryLogsToJson() {
  google::protobuf::SetLogHandler(&ProtobufLog);
  gpr_set_log_function(&GrpcLog);
}

}  // namespace mswa
