// ScoreStream: the client streams text chunks, the server streams progress (with per-token
// log-probabilities in bounded pieces when asked for) and the final result.
//
// Memory per stream is bounded whatever the text's length:
//   - a chunk over --max_stream_chunk_bytes ends the call (INVALID_ARGUMENT) before it is
//     tokenized or fed;
//   - flow control: the next chunk is read only while the backlog -- tokens fed to the engine but
//     not yet scored, plus per-token values not yet written to the client -- is under its bound,
//     so a client that sends faster than the engine scores (or reads slower) is held back by gRPC;
//   - per-token values leave in progress messages of at most kMaxLogprobsPerMessage each.
// A stream that waits on its client (no chunk, or a write not taken) for longer than
// --stream_idle_timeout_seconds ends with DEADLINE_EXCEEDED and its engine request is cancelled
// (its KV blocks are freed at the next step).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>

#include "mswa/v1/mswa.pb.h"
#include "server/service.h"

namespace mswa {

// Tokens fed to the engine but not yet delivered to the client above which reading pauses; it
// resumes below half of it.
constexpr int64_t kMaxStreamBacklogTokens = int64_t{1} << 18;
// Per-token values in one ScoreProgress message.
constexpr int kMaxLogprobsPerMessage = 4096;

// A reactor that deletes itself when the call is done. `service` is ready (Attach was called).
grpc::ServerBidiReactor<mswa::v1::ScoreStreamRequest, mswa::v1::ScoreStreamResponse>*
NewScoreStreamReactor(MswaServiceImpl* service, grpc::CallbackServerContext* context);

}  // namespace mswa
