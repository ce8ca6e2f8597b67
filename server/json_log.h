// The server's log: one JSON object per line on stderr, {"time":..., "event":..., fields...},
// written with nlohmann::json so that every line parses whatever a client sent. Strings that
// come from clients are cut to kMaxLoggedStringBytes first; bytes that are not UTF-8 become
// U+FFFD. Thread-safe: each line is a single write, so lines of concurrent threads never mix.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "absl/strings/string_view.h"

namespace mswa {

constexpr size_t kMaxLoggedStringBytes = 256;

// `s` cut to at most `max_bytes` bytes, at a UTF-8 character boundary when `s` is UTF-8
// (a multi-byte character is never split); unchanged when it fits.
std::string TruncateForLog(absl::string_view s, size_t max_bytes = kMaxLoggedStringBytes);

// The line without its newline. "time" (UTC, milliseconds) and "event" come first, then
// `fields` (an object; other values are ignored) in their order.
std::string FormatLogLine(absl::string_view event, const nlohmann::ordered_json& fields);

// Writes FormatLogLine(event, fields) and a newline to stderr.
void LogEvent(absl::string_view event, const nlohmann::ordered_json& fields);
void LogEvent(absl::string_view event);

// Routes protobuf's and gRPC's own log messages into the same JSON lines (event "library_log"),
// so stderr holds nothing else. Call once at startup, before any RPC.
void RouteLibraryLogsToJson();

}  // namespace mswa
