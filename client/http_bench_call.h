// One streamed completion over the OpenAI-compatible HTTP API, timed for the bench
// (client/bench.h, RunHttpBench).
#pragma once

#include <string>

#include <chrono>

#include "client/bench.h"
#include "mswa/v1/mswa.pb.h"

namespace mswa::client {

// POST /v1/completions on host:port with `request`'s prompt, temperature, seed, max_tokens and
// ignore_eos, "stream": true and stream_options.include_usage; blocks until the stream ends.
// Times are seconds since `t0`. A non-200 answer or an {"error"} chunk makes a failed record
// whose code is what the HTTP status stands for.
RequestRecord RunHttpCompletion(const std::string& host, int port, const std::string& api_key,
                                const mswa::v1::GenerateRequest& request,
                                std::chrono::steady_clock::time_point t0);

}  // namespace mswa::client
