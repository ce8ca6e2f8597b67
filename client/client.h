// MswaClient: a thin synchronous wrapper over the mswa.v1 and grpc.health.v1 stubs, plus the
// request builders and text formatting the mswa-client CLI shares with its tests.
//
// Error discipline: configuration errors (bad options, unreadable certificate) are absl::Status
// from Create() / Validate(); everything that happened on the wire is the grpc::Status the
// server (or the channel) returned, unchanged, so callers see the server's own code and message.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "mswa/v1/mswa.grpc.pb.h"

namespace mswa::client {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";  // any gRPC target: host:port, dns:///..., unix:...
  bool tls = false;
  // PEM file with the root certificates that verify the server; empty = the system roots.
  // Only meaningful with tls.
  std::string tls_root_cert_file;
  // Host name expected in the server's certificate instead of the target's (tests, IP targets).
  std::string tls_server_name;
  // Per-call deadline in seconds; 0 = none. Applies to every RPC (a whole stream counts as one).
  double deadline_seconds = 0;
  // Sent as the "authorization" metadata "Bearer <api_key>" on every call; empty: none.
  std::string api_key;

  // InvalidArgument naming the field: empty target, deadline negative or not finite,
  // tls_root_cert_file or tls_server_name set without tls.
  absl::Status Validate() const;
};

// Thread-safe: every method may be called from any number of threads at once (each call uses its
// own ClientContext; the channel and stubs are shared).
//
// Connecting is lazy and fails fast: a call to a target where nothing listens returns UNAVAILABLE
// right away (calls are not wait_for_ready) rather than waiting for the deadline.
class MswaClient {
 public:
  // Validates the options and reads the certificate file. NotFound / InvalidArgument when it is
  // missing, unreadable or holds no PEM certificate. Does not connect.
  static absl::StatusOr<std::unique_ptr<MswaClient>> Create(const ClientOptions& options);

  const ClientOptions& options() const { return options_; }

  // Server-streaming Generate. `on_message` runs on the calling thread once per message, in
  // arrival order, as soon as each arrives; the call returns after the last one with the final
  // status (OK even when no message carried `finished`, e.g. a server bug: callers check).
  grpc::Status Generate(const mswa::v1::GenerateRequest& request,
                        const std::function<void(const mswa::v1::GenerateResponse&)>& on_message);

  // Starts Generate on gRPC's callback API: `reactor` gets OnReadDone / OnDone on gRPC threads.
  // `context` is prepared (deadline) here; it and `request` must outlive OnDone. The caller
  // calls reactor->StartRead / StartCall (see grpc::ClientReadReactor).
  void StartGenerate(grpc::ClientContext* context, const mswa::v1::GenerateRequest* request,
                     grpc::ClientReadReactor<mswa::v1::GenerateResponse>* reactor);

  grpc::Status Score(const mswa::v1::ScoreRequest& request, mswa::v1::ScoreResponse* response);

  // Streams `in` to ScoreStream in chunks of kScoreChunkBytes (options only in the first message,
  // which is sent even for an empty input), then half-closes. A writer thread reads `in` and
  // writes while the calling thread reads the responses, so memory stays O(chunk) whatever the
  // input's size and progress arrives while the upload is still going.
  // `on_progress` runs on the calling thread. On OK, *result holds the final ScoreResult, with
  // the per-token values the progress messages carried (options.per_token_logprobs) gathered
  // into its token_logprobs and token_ids (one id per value: the tokens that were scored);
  // INTERNAL if the stream ended OK without one; DATA_LOSS if reading `in` failed (the call is
  // cancelled then). `in` is read up to EOF (or until the server ends the call).
  // `chunk_bytes` (1 .. kScoreChunkBytes) sizes the chunks: at most the server's
  // GetModelInfo.max_stream_chunk_bytes (ScoreChunkBytesFor).
  grpc::Status ScoreStream(std::istream& in, const mswa::v1::ScoreOptions& options,
                           const std::function<void(const mswa::v1::ScoreProgress&)>& on_progress,
                           mswa::v1::ScoreResult* result, size_t chunk_bytes = kScoreChunkBytes);

  grpc::Status Tokenize(const mswa::v1::TokenizeRequest& request,
                        mswa::v1::TokenizeResponse* response);

  grpc::Status GetModelInfo(mswa::v1::GetModelInfoResponse* response);

  // grpc.health.v1.Health/Check for `service` ("" = the server as a whole). *status is left
  // unchanged when the call fails (e.g. NOT_FOUND for an unknown service).
  grpc::Status Health(const std::string& service,
                      grpc::health::v1::HealthCheckResponse::ServingStatus* status);

  static constexpr size_t kScoreChunkBytes = 64 * 1024;
  // The chunk size for a server whose limit is `max_stream_chunk_bytes` (GetModelInfo; 0 when
  // unknown): kScoreChunkBytes, or the limit when it is smaller.
  static size_t ScoreChunkBytesFor(int64_t max_stream_chunk_bytes);

 private:
  MswaClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);
  // Sets the per-call deadline, if any.
  void PrepareContext(grpc::ClientContext* context) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<mswa::v1::MswaService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
};

// ---- request building (CLI flags -> proto), validated on the client for clear usage errors -----

// The generate command's knobs, with the CLI's defaults. Unlike the proto, defaults here are the
// effective values (top_p 1, repetition_penalty 1), so "unset" needs no special case.
struct GenerateOptions {
  std::string prompt;
  int32_t max_tokens = 64;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  std::optional<uint64_t> seed;  // unset: the server picks a random one
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool logprobs = false;
  int32_t top_logprobs = 0;
  bool add_bos = true;
  bool skip_prefix_cache = false;  // compute the whole prompt even when the server caches prefixes

  // InvalidArgument naming the first bad field, with the proto's documented ranges: empty
  // prompt, max_tokens < 1, temperature < 0 or not finite, top_k < 0, top_p outside (0, 1],
  // min_p outside [0, 1], repetition_penalty <= 0 or not finite, more than 16 stop strings or one
  // empty or longer than 256 bytes, top_logprobs outside [0, 20]. The server's own limits (e.g.
  // its max_tokens ceiling) are checked there.
  absl::Status Validate() const;
};

// Validate() then the proto. top_logprobs > 0 implies logprobs.
absl::StatusOr<mswa::v1::GenerateRequest> MakeGenerateRequest(const GenerateOptions& options);

// Removes every `--NAME VALUE` and `--NAME=VALUE` from args (args[0], the program, is kept; a
// "--" ends the scan) and returns the values in order. Lets a flag repeat and carry commas, which
// a comma-separated absl list flag cannot. InvalidArgument when `--NAME` is the last argument.
absl::StatusOr<std::vector<std::string>> ExtractRepeatedFlag(std::vector<std::string>* args,
                                                             const std::string& name);

// ---- presentation ------------------------------------------------------------------------------

// "512 B", "1.50 KiB", "45.2 MiB", "512 KiB": binary units, three significant digits (1536 ->
// "1.50 KiB"; 47395635 -> "45.2 MiB").
std::string FormatBytes(int64_t bytes);

// What a score progress line shows. bytes_total < 0: unknown size (a pipe), no bar/percentage.
struct ProgressView {
  int64_t bytes_done = 0;
  int64_t bytes_total = -1;
  int64_t tokens = 0;
  double tokens_per_second = 0;
  double total_nll = 0;  // nats over `tokens`
};

// One line without a newline, e.g. with bar_width 10:
//   "[#####.....]  50.0%  512 KiB / 1.00 MiB  1234 tok/s  1.234 bits/byte"
// and without a known total: "512 KiB  1234 tok/s  1.234 bits/byte". The fill is clamped to
// [0, bar_width]. bits/byte is total_nll / ln 2 / bytes_done -- approximate while the server
// lags behind what it received (ScoreProgress has no bytes-scored field); "-" before any byte.
std::string FormatScoreProgress(const ProgressView& view, int bar_width);

// "UNAVAILABLE", "INVALID_ARGUMENT", ...: the canonical name of a gRPC status code.
std::string StatusCodeName(grpc::StatusCode code);

// JSON string literal (with the quotes) for arbitrary bytes: escapes ", \ and control characters;
// other bytes pass through unchanged.
std::string JsonQuote(absl::string_view s);

// JSON number; NaN and infinities (which JSON lacks) become null.
std::string JsonNumber(double value);

}  // namespace mswa::client
