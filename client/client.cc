#include "client/client.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mswa::client {
namespace {

using mswa::v1::ScoreStreamRequest;
using mswa::v1::ScoreStreamResponse;

// Limits documented on mswa.v1.StoppingCriteria / GenerateRequest.
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 256;
constexpr int32_t kMaxTopLogprobs = 20;

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot open TLS root certificate file '", path,
                                            "': ", std::strerror(errno)));
  }
  std::string pem((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read TLS root certificate file '", path, "'"));
  }
  // gRPC would only fail later, at the first handshake, with a vaguer message.
  if (!absl::StrContains(pem, "-----BEGIN CERTIFICATE-----")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS root certificate file '", path, "' holds no PEM certificate (no BEGIN CERTIFICATE)"));
  }
  return pem;
}

}  // namespace

// ---- ClientOptions -----------------------------------------------------------------------------

absl::Status ClientOptions::Validate() const {
  if (target.empty()) return absl::InvalidArgumentError("target must not be empty");
  if (!std::isfinite(deadline_seconds) || deadline_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("deadline must be >= 0 seconds (0 = none), got ", deadline_seconds));
  }
  if (!tls && !tls_root_cert_file.empty()) {
    return absl::InvalidArgumentError("a TLS root certificate file was given without tls");
  }
  if (!tls && !tls_server_name.empty()) {
    return absl::InvalidArgumentError("a TLS server name was given without tls");
  }
  return absl::OkStatus();
}

// ---- MswaClient --------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<MswaClient>> MswaClient::Create(const ClientOptions& options) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;

  grpc::ChannelArguments args;
  // Per-token logprobs of a long text easily exceed gRPC's 4 MiB default for received messages.
  args.SetMaxReceiveMessageSize(-1);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_root_cert_file.empty()) {
      absl::StatusOr<std::string> pem = ReadPemFile(options.tls_root_cert_file);
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = *std::move(pem);
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, credentials, args);
  return std::unique_ptr<MswaClient>(new MswaClient(options, std::move(channel)));
}

MswaClient::MswaClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      stub_(mswa::v1::MswaService::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)) {}

void MswaClient::PrepareContext(grpc::ClientContext* context) const {
  if (!options_.api_key.empty()) context->AddMetadata("authorization", "Bearer " + options_.api_key);
  if (options_.deadline_seconds > 0) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              std::chrono::duration<double>(options_.deadline_seconds)));
  }
}

grpc::Status MswaClient::Generate(
    const mswa::v1::GenerateRequest& request,
    const std::function<void(const mswa::v1::GenerateResponse&)>& on_message) {
  grpc::ClientContext context;
  PrepareContext(&context);
  std::unique_ptr<grpc::ClientReader<mswa::v1::GenerateResponse>> reader =
      stub_->Generate(&context, request);
  mswa::v1::GenerateResponse response;
  while (reader->Read(&response)) on_message(response);
  return reader->Finish();
}

void MswaClient::StartGenerate(grpc::ClientContext* context,
                               const mswa::v1::GenerateRequest* request,
                               grpc::ClientReadReactor<mswa::v1::GenerateResponse>* reactor) {
  PrepareContext(context);
  stub_->async()->Generate(context, request, reactor);
}

grpc::Status MswaClient::Score(const mswa::v1::ScoreRequest& request,
                               mswa::v1::ScoreResponse* response) {
  grpc::ClientContext context;
  PrepareContext(&context);
  return stub_->Score(&context, request, response);
}

size_t MswaClient::ScoreChunkBytesFor(int64_t max_stream_chunk_bytes) {
  if (max_stream_chunk_bytes <= 0) return kScoreChunkBytes;
  return std::min<size_t>(kScoreChunkBytes, static_cast<size_t>(max_stream_chunk_bytes));
}

grpc::Status MswaClient::ScoreStream(
    std::istream& in, const mswa::v1::ScoreOptions& options,
    const std::function<void(const mswa::v1::ScoreProgress&)>& on_progress,
    mswa::v1::ScoreResult* result, size_t chunk_bytes) {
  chunk_bytes = std::clamp<size_t>(chunk_bytes, 1, kScoreChunkBytes);
  grpc::ClientContext context;
  PrepareContext(&context);
  std::unique_ptr<grpc::ClientReaderWriter<ScoreStreamRequest, ScoreStreamResponse>> stream =
      stub_->ScoreStream(&context);

  // gRPC's sync streams allow one reader and one writer at a time on different threads; the
  // writer must be done before Finish.
  std::atomic<bool> input_failed{false};
  std::thread writer([&] {
    ScoreStreamRequest request;
    *request.mutable_options() = options;
    for (bool first = true;; first = false) {
      std::string* chunk = request.mutable_chunk();
      chunk->resize(chunk_bytes);
      in.read(chunk->data(), static_cast<std::streamsize>(chunk->size()));
      if (in.bad()) {
        input_failed = true;
        context.TryCancel();
        return;
      }
      const auto n = static_cast<size_t>(in.gcount());
      chunk->resize(n);
      // The first message goes out even when empty: it carries the options.
      if (n == 0 && !first) break;
      // false: the call is over (the server failed it or cancelled); its status tells why.
      if (!stream->Write(request)) return;
      if (first) request.clear_options();
      if (n < chunk_bytes) break;  // istream::read returns short only at EOF
    }
    stream->WritesDone();
  });

  bool have_result = false;
  google::protobuf::RepeatedField<float> token_logprobs;
  google::protobuf::RepeatedField<int32_t> token_ids;
  ScoreStreamResponse response;
  while (stream->Read(&response)) {
    switch (response.kind_case()) {
      case ScoreStreamResponse::kProgress: {
        const mswa::v1::ScoreProgress& p = response.progress();
        // Per-token values come in pieces; the result is assembled here.
        token_logprobs.Add(p.token_logprobs().begin(), p.token_logprobs().end());
        token_ids.Add(p.token_ids().begin(), p.token_ids().end());
        if (on_progress) on_progress(p);
        break;
      }
      case ScoreStreamResponse::kResult:
        *result = response.result();
        have_result = true;
        break;
      case ScoreStreamResponse::KIND_NOT_SET:
        break;
    }
  }
  writer.join();
  grpc::Status status = stream->Finish();
  if (input_failed) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "reading the input failed");
  }
  if (status.ok() && !have_result) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "the server ended ScoreStream without a result");
  }
  // A server that still sends them in the result keeps its values.
  if (status.ok() && result->token_logprobs_size() == 0 && !token_logprobs.empty()) {
    result->mutable_token_logprobs()->Swap(&token_logprobs);
    result->mutable_token_ids()->Swap(&token_ids);
  }
  return status;
}

grpc::Status MswaClient::Tokenize(const mswa::v1::TokenizeRequest& request,
                                  mswa::v1::TokenizeResponse* response) {
  grpc::ClientContext context;
  PrepareContext(&context);
  return stub_->Tokenize(&context, request, response);
}

grpc::Status MswaClient::GetModelInfo(mswa::v1::GetModelInfoResponse* response) {
  grpc::ClientContext context;
  PrepareContext(&context);
  return stub_->GetModelInfo(&context, mswa::v1::GetModelInfoRequest(), response);
}

grpc::Status MswaClient::Health(const std::string& service,
                                grpc::health::v1::HealthCheckResponse::ServingStatus* status) {
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status rpc = health_stub_->Check(&context, request, &response);
  if (rpc.ok()) *status = response.status();
  return rpc;
}

// ---- request building --------------------------------------------------------------------------

absl::Status GenerateOptions::Validate() const {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt must not be empty");
  if (max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be >= 1, got ", max_tokens));
  }
  if (!std::isfinite(temperature) || temperature < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be >= 0 (0 = greedy), got ", temperature));
  }
  if (top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0 (0 = off), got ", top_k));
  }
  if (!(top_p > 0 && top_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", top_p));
  }
  if (!(min_p >= 0 && min_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("min_p must be in [0, 1], got ", min_p));
  }
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty must be > 0 (1 = off), got ", repetition_penalty));
  }
  if (stop.size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxStopStrings, " stop strings, got ", stop.size()));
  }
  for (const std::string& s : stop) {
    if (s.empty()) return absl::InvalidArgumentError("stop strings must not be empty");
    if (s.size() > kMaxStopBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop strings must be at most ", kMaxStopBytes, " bytes, got one of ",
                       s.size()));
    }
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_logprobs must be in [0, ", kMaxTopLogprobs, "], got ", top_logprobs));
  }
  return absl::OkStatus();
}

absl::StatusOr<mswa::v1::GenerateRequest> MakeGenerateRequest(const GenerateOptions& options) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  mswa::v1::GenerateRequest request;
  request.set_prompt(options.prompt);
  request.set_add_bos(options.add_bos);
  mswa::v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_temperature(options.temperature);
  sampling->set_top_k(options.top_k);
  sampling->set_top_p(options.top_p);
  sampling->set_min_p(options.min_p);
  sampling->set_repetition_penalty(options.repetition_penalty);
  if (options.seed.has_value()) sampling->set_seed(*options.seed);
  mswa::v1::StoppingCriteria* stopping = request.mutable_stopping();
  stopping->set_max_tokens(options.max_tokens);
  for (const std::string& s : options.stop) stopping->add_stop(s);
  stopping->set_ignore_eos(options.ignore_eos);
  request.set_logprobs(options.logprobs || options.top_logprobs > 0);
  request.set_top_logprobs(options.top_logprobs);
  request.set_skip_prefix_cache(options.skip_prefix_cache);
  return request;
}

absl::StatusOr<std::vector<std::string>> ExtractRepeatedFlag(std::vector<std::string>* args,
                                                             const std::string& name) {
  std::vector<std::string> values;
  // absl accepts both "-name" and "--name"; so do we, to not hand a stray one to absl.
  const std::string forms[] = {"--" + name, "-" + name};
  for (size_t i = 1; i < args->size();) {
    const std::string& arg = (*args)[i];
    if (arg == "--") break;
    bool matched = false;
    for (const std::string& form : forms) {
      if (arg == form) {
        if (i + 1 >= args->size()) {
          return absl::InvalidArgumentError(absl::StrCat("flag ", form, " needs a value"));
        }
        values.push_back((*args)[i + 1]);
        args->erase(args->begin() + static_cast<std::ptrdiff_t>(i),
                    args->begin() + static_cast<std::ptrdiff_t>(i + 2));
        matched = true;
        break;
      }
      if (absl::StartsWith(arg, form + "=")) {
        values.push_back(arg.substr(form.size() + 1));
        args->erase(args->begin() + static_cast<std::ptrdiff_t>(i));
        matched = true;
        break;
      }
    }
    if (!matched) ++i;
  }
  return values;
}

// ---- presentation ------------------------------------------------------------------------------

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  if (value < 10) return absl::StrFormat("%.2f %s", value, kUnits[unit]);
  if (value < 100) return absl::StrFormat("%.1f %s", value, kUnits[unit]);
  return absl::StrFormat("%.0f %s", value, kUnits[unit]);
}

std::string FormatScoreProgress(const ProgressView& view, int bar_width) {
  std::string line;
  if (view.bytes_total >= 0) {
    double fraction = view.bytes_total > 0 ? static_cast<double>(view.bytes_done) /
                                                 static_cast<double>(view.bytes_total)
                                           : 1.0;
    fraction = std::clamp(fraction, 0.0, 1.0);
    if (bar_width > 0) {
      const int fill = std::clamp(static_cast<int>(fraction * bar_width), 0, bar_width);
      absl::StrAppend(&line, "[", std::string(static_cast<size_t>(fill), '#'),
                      std::string(static_cast<size_t>(bar_width - fill), '.'), "] ");
    }
    absl::StrAppend(&line, absl::StrFormat("%5.1f%%  ", fraction * 100),
                    FormatBytes(view.bytes_done), " / ", FormatBytes(view.bytes_total));
  } else {
    absl::StrAppend(&line, FormatBytes(view.bytes_done));
  }
  absl::StrAppend(&line, absl::StrFormat("  %.0f tok/s", view.tokens_per_second));
  if (view.bytes_done > 0 && view.tokens > 0) {
    absl::StrAppend(&line, absl::StrFormat("  %.3f bits/byte", view.total_nll / std::log(2.0) /
                                                                   static_cast<double>(view.bytes_done)));
  } else {
    absl::StrAppend(&line, "  - bits/byte");
  }
  return line;
}

std::string StatusCodeName(grpc::StatusCode code) {
  // grpc::StatusCode and absl::StatusCode share their numbering (both are the canonical codes).
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, absl::StrFormat("\\u%04x", static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  // Shortest text that reads back as the same double.
  char buffer[32];
  const std::to_chars_result r = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, r.ptr);
}

}  // namespace mswa::client
