// mswa-client: command-line client for mswa-serve.
//
//   mswa-client [global flags] COMMAND [args] [flags]
//
// Exit codes: 0 success; 1 an RPC failed (stderr: "mswa-client: <CODE>: <message>") or an input
// file could not be read; 2 usage error (unknown command or flag, bad flag value, missing
// arguments). Flags may appear anywhere; "--" ends them (for a prompt that starts with '-').
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/bench.h"
#include "client/client.h"

// ---- flags (defined here only; turned into option structs right after parsing) ----------------
// global
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server address (any gRPC target)");
ABSL_FLAG(double, deadline, 0, "per-call deadline in seconds; 0 = none");
ABSL_FLAG(bool, tls, false, "connect with TLS");
ABSL_FLAG(std::string, api_key, "",
          "API key of a server started with --api_key(_file); empty: $MSWA_API_KEY, if set");
ABSL_FLAG(std::string, tls_ca, "", "PEM file of root certificates; empty = the system roots");
ABSL_FLAG(std::string, tls_server_name, "", "host name expected in the server certificate");
ABSL_FLAG(bool, json, false, "machine-readable JSON output (generate, score, info, tokenize, bench)");
ABSL_FLAG(bool, quiet, false, "no summary or progress on stderr");
// generate (temperature and seed also apply to bench)
ABSL_FLAG(int32_t, max_tokens, 64, "most tokens to generate");
ABSL_FLAG(double, temperature, 1.0, "sampling temperature; 0 = greedy");
ABSL_FLAG(double, top_p, 1.0, "nucleus sampling mass in (0, 1]; 1 = off");
ABSL_FLAG(int32_t, top_k, 0, "keep the k most likely tokens; 0 = off");
ABSL_FLAG(double, min_p, 0.0, "drop tokens below min_p * p(most likely); 0 = off");
ABSL_FLAG(double, repetition_penalty, 1.0, "penalty for tokens already seen; 1 = off");
ABSL_FLAG(std::string, seed, "", "sampling seed; empty = random (generate) or 0 (bench)");
ABSL_FLAG(bool, ignore_eos, false, "keep generating after the EOS token");
ABSL_FLAG(bool, logprobs, false, "return the log-probability of each sampled token");
ABSL_FLAG(int32_t, top_logprobs, 0, "also return the N most likely alternatives (0..20)");
ABSL_FLAG(bool, no_bos, false, "do not prepend the BOS token (generate, score)");
// score
ABSL_FLAG(bool, per_token, false, "print the log-probability of every scored token");
// health
ABSL_FLAG(std::string, service, "", "service name to check; empty = the whole server");
// tokenize
ABSL_FLAG(bool, bos, false, "prepend the BOS token");
// bench
ABSL_FLAG(int32_t, concurrency, 0, "most requests in flight; 0 = unbounded");
ABSL_FLAG(double, request_rate, std::numeric_limits<double>::infinity(),
          "Poisson arrival rate in requests/s; inf = all at once");
ABSL_FLAG(int64_t, num_requests, 0, "requests to issue; 0 = until --duration");
ABSL_FLAG(double, duration, 0, "seconds to keep issuing requests; 0 = until --num_requests");
ABSL_FLAG(int32_t, prompt_len, 128, "bytes of each synthetic ASCII prompt");
ABSL_FLAG(int32_t, output_len, 128, "tokens to generate per request (EOS ignored)");
ABSL_FLAG(std::string, prompts_file, "", "prompts, one per line, cycled (instead of synthetic)");
ABSL_FLAG(std::string, http_target, "",
          "bench over the OpenAI-compatible HTTP API at HOST:PORT (streamed /v1/completions) "
          "instead of gRPC Generate");

namespace {

using mswa::client::MswaClient;

constexpr char kProgram[] = "mswa-client";

constexpr char kCommands[] =
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

struct FlagGroup {
  const char* title;
  std::vector<const char*> flags;
};

// The full --help: the command list, then every flag by the command it belongs to, with its
// default and help text taken from the flag definitions above.
void PrintHelp(std::ostream& out) {
  static const FlagGroup kGroups[] = {
      {"global flags", {"target", "deadline", "tls", "tls_ca", "tls_server_name", "json", "quiet"}},
      {"generate",
       {"max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed",
        "ignore_eos", "logprobs", "top_logprobs", "no_bos"}},
      {"score", {"no_bos", "per_token"}},
      {"health", {"service"}},
      {"tokenize", {"bos"}},
      {"bench",
       {"concurrency", "request_rate", "num_requests", "duration", "prompt_len", "output_len",
        "prompts_file", "temperature", "seed"}},
  };
  out << kCommands;
  for (const FlagGroup& group : kGroups) {
    out << "\n" << group.title << ":\n";
    for (const char* name : group.flags) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      if (flag == nullptr) continue;
      std::string default_value = flag->DefaultValue();
      if (default_value.empty()) default_value = "\"\"";
      out << absl::StrFormat("  --%-20s %s (default %s)\n", name, flag->Help(), default_value);
    }
    if (std::string(group.title) == "generate") {
      out << absl::StrFormat("  --%-20s %s\n", "stop S",
                             "stop at string S; repeatable, S may contain commas");
    }
  }
  out << "\nexit codes: 0 ok, 1 RPC error (or unreadable input file), 2 usage error\n";
}

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

// absl::ParseCommandLine exits with status 1 on an unknown flag or a bad value; usage errors
// here exit 2, so the arguments are checked first (values are parsed into the flags, which
// ParseCommandLine then sets again to the same values).
absl::Status CheckFlags(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // positional, or "-" (stdin)
    absl::string_view body = arg;
    if (!absl::ConsumePrefix(&body, "--")) absl::ConsumePrefix(&body, "-");
    const size_t eq = body.find('=');
    const std::string name(body.substr(0, eq));
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      // "--nofoo" negates the boolean flag foo.
      absl::string_view negated = name;
      if (absl::ConsumePrefix(&negated, "no") && eq == absl::string_view::npos) {
        const absl::CommandLineFlag* base = absl::FindCommandLineFlag(negated);
        if (base != nullptr && base->IsOfType<bool>()) continue;
      }
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (flag->IsOfType<bool>() && eq == absl::string_view::npos) continue;
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(body.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(error);
    }
  }
  return absl::OkStatus();
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") return false;
    if (args[i] == "--help" || args[i] == "-help" || args[i] == "-h") return true;
  }
  return false;
}

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
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

// "length", "eos", "stop", ...
std::string FinishReasonName(mswa::v1::FinishReason reason) {
  const std::string name = mswa::v1::FinishReason_Name(reason);
  return absl::AsciiStrToLower(std::string(absl::StripPrefix(name, "FINISH_REASON_")));
}

// Seeds are uint64; the flag is a string so that "unset" is distinguishable.
absl::StatusOr<std::optional<uint64_t>> ParseSeed() {
  const std::string text = absl::GetFlag(FLAGS_seed);
  if (text.empty()) return std::optional<uint64_t>();
  uint64_t seed = 0;
  if (!absl::SimpleAtoi(text, &seed)) {
    return absl::InvalidArgumentError(absl::StrCat("--seed: not an unsigned integer: '", text, "'"));
  }
  return std::optional<uint64_t>(seed);
}

// ---- generate ----------------------------------------------------------------------------------

void PrintLogprobs(const std::vector<mswa::v1::SampledToken>& tokens) {
  std::cout << "logprobs:\n";
  for (const mswa::v1::SampledToken& sampled : tokens) {
    const mswa::v1::TokenLogprob& t = sampled.token();
    std::cout << absl::StrFormat("  %6d %10.4f  \"%s\"", t.token_id(), t.logprob(),
                                 absl::CHexEscape(t.token()));
    if (sampled.top_size() > 0) {
      std::vector<std::string> top;
      for (const mswa::v1::TokenLogprob& alt : sampled.top()) {
        top.push_back(absl::StrFormat("\"%s\" %.4f", absl::CHexEscape(alt.token()), alt.logprob()));
      }
      std::cout << "   top: " << absl::StrJoin(top, ", ");
    }
    std::cout << "\n";
  }
}

int RunGenerate(MswaClient& client, const std::vector<std::string>& args,
                const std::vector<std::string>& stops) {
  if (args.size() != 1) return UsageError("generate takes exactly one PROMPT argument");
  mswa::client::GenerateOptions options;
  options.prompt = args[0] == "-" ? ReadAll(std::cin) : args[0];
  options.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  options.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  options.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.min_p = static_cast<float>(absl::GetFlag(FLAGS_min_p));
  options.repetition_penalty = static_cast<float>(absl::GetFlag(FLAGS_repetition_penalty));
  absl::StatusOr<std::optional<uint64_t>> seed = ParseSeed();
  if (!seed.ok()) return UsageError(std::string(seed.status().message()));
  options.seed = *seed;
  options.stop = stops;
  options.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  options.logprobs = absl::GetFlag(FLAGS_logprobs);
  options.top_logprobs = absl::GetFlag(FLAGS_top_logprobs);
  options.add_bos = !absl::GetFlag(FLAGS_no_bos);
  absl::StatusOr<mswa::v1::GenerateRequest> request = mswa::client::MakeGenerateRequest(options);
  if (!request.ok()) return UsageError(std::string(request.status().message()));

  const bool json = absl::GetFlag(FLAGS_json);
  std::vector<mswa::v1::SampledToken> logprobs;
  std::optional<mswa::v1::GenerateResponse> last;
  bool printed_text = false;
  const grpc::Status status =
      client.Generate(*request, [&](const mswa::v1::GenerateResponse& response) {
        if (json) {
          std::cout << ToJson(response) << "\n" << std::flush;
        } else {
          std::cout << response.text() << std::flush;
          printed_text = printed_text || !response.text().empty();
          logprobs.insert(logprobs.end(), response.logprobs().begin(), response.logprobs().end());
        }
        if (response.finished()) last = response;
      });
  if (!json) {
    if (printed_text) std::cout << "\n";
    if (!logprobs.empty()) PrintLogprobs(logprobs);
    std::cout << std::flush;
  }
  if (!status.ok()) return RpcError(status);
  if (!absl::GetFlag(FLAGS_quiet)) {
    if (last.has_value()) {
      const mswa::v1::Timings& t = last->timings();
      std::string line = absl::StrCat("[finish: ", FinishReasonName(last->finish_reason()));
      if (last->finish_reason() == mswa::v1::FINISH_REASON_STOP) {
        absl::StrAppend(&line, " \"", absl::CHexEscape(last->matched_stop()), "\"");
      }
      absl::StrAppend(
          &line,
          absl::StrFormat(", prompt %d tokens, completion %d tokens, queue %.1f ms, ttft %.1f ms, "
                          "total %.1f ms",
                          last->usage().prompt_tokens(), last->usage().completion_tokens(),
                          1000 * t.queue_seconds(), 1000 * t.time_to_first_token_seconds(),
                          1000 * t.total_seconds()));
      if (!last->request_id().empty()) absl::StrAppend(&line, ", request ", last->request_id());
      std::cerr << line << "]\n";
    } else {
      std::cerr << "[the stream ended without a finished message]\n";
    }
  }
  return 0;
}

// ---- score -------------------------------------------------------------------------------------

// Progress of one ScoreStream on stderr: on a terminal an in-place bar (at most 10 updates/s);
// otherwise a plain line at most every 2 s.
class ProgressLine {
 public:
  ProgressLine(std::string name, int64_t bytes_total, bool tty, bool quiet)
      : name_(std::move(name)),
        bytes_total_(bytes_total),
        tty_(tty),
        quiet_(quiet),
        last_(std::chrono::steady_clock::now()) {}

  void Update(const mswa::v1::ScoreProgress& progress) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(2))) return;
    last_ = now;
    mswa::client::ProgressView view;
    view.bytes_done = progress.bytes_received();
    view.bytes_total = bytes_total_;
    view.tokens = progress.tokens_scored();
    view.tokens_per_second = progress.tokens_per_second();
    view.total_nll = progress.total_nll();
    if (tty_) {
      // \033[K clears what a longer previous line left behind.
      std::cerr << "\r" << mswa::client::FormatScoreProgress(view, 20) << "\033[K" << std::flush;
      shown_ = true;
    } else {
      std::cerr << kProgram << ": " << name_ << ": " << mswa::client::FormatScoreProgress(view, 0)
                << "\n";
    }
  }

  void Clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  const std::string name_;
  const int64_t bytes_total_;
  const bool tty_;
  const bool quiet_;
  std::chrono::steady_clock::time_point last_;
  bool shown_ = false;
};

// Size of a regular file behind `fd`, else -1 (pipes, terminals).
int64_t RegularFileSize(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<int64_t>(st.st_size);
}

struct ScoreTotals {
  int64_t files = 0;
  int64_t tokens = 0;
  int64_t bytes = 0;
  double total_nll = 0;
};

std::string ScoreJson(const std::string& file, const mswa::v1::ScoreResult& r) {
  std::string json = absl::StrCat(
      "{\"file\":", mswa::client::JsonQuote(file), ",\"tokens\":", r.tokens(),
      ",\"bytes\":", r.bytes(), ",\"total_nll\":", mswa::client::JsonNumber(r.total_nll()),
      ",\"perplexity\":", mswa::client::JsonNumber(r.perplexity()),
      ",\"bits_per_byte\":", mswa::client::JsonNumber(r.bits_per_byte()));
  if (r.token_ids_size() > 0 || r.token_logprobs_size() > 0) {
    absl::StrAppend(&json, ",\"token_ids\":[", absl::StrJoin(r.token_ids(), ","),
                    "],\"token_logprobs\":[");
    for (int i = 0; i < r.token_logprobs_size(); ++i) {
      absl::StrAppend(&json, i > 0 ? "," : "", mswa::client::JsonNumber(r.token_logprobs(i)));
    }
    json += "]";
  }
  return json + "}";
}

void PrintPerToken(const mswa::v1::ScoreResult& r) {
  std::cout << "# index token_id logprob\n";
  for (int i = 0; i < r.token_logprobs_size(); ++i) {
    const std::string id = i < r.token_ids_size() ? absl::StrCat(r.token_ids(i)) : "-";
    std::cout << absl::StrFormat("%d %s %.6f\n", i, id, r.token_logprobs(i));
  }
}

int RunScore(MswaClient& client, const std::vector<std::string>& files) {
  if (files.empty()) return UsageError("score needs at least one FILE ('-' = stdin)");
  // Every file is checked before the first is scored, so a typo in the last one does not cost
  // the time spent on the others.
  for (const std::string& file : files) {
    if (file == "-") continue;
    std::ifstream probe(file, std::ios::binary);
    if (!probe) {
      std::cerr << kProgram << ": cannot open '" << file << "': " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  mswa::v1::ScoreOptions options;
  options.set_add_bos(!absl::GetFlag(FLAGS_no_bos));
  options.set_per_token_logprobs(absl::GetFlag(FLAGS_per_token));
  const bool json = absl::GetFlag(FLAGS_json);
  const bool tty = isatty(STDERR_FILENO) != 0;
  ScoreTotals totals;
  // Chunks no larger than the server accepts (a server configured below 64 KiB); an older
  // server without the field, or a failed call, leaves the default.
  size_t chunk_bytes = mswa::client::MswaClient::kScoreChunkBytes;
  {
    mswa::v1::GetModelInfoResponse info;
    if (client.GetModelInfo(&info).ok()) {
      chunk_bytes = mswa::client::MswaClient::ScoreChunkBytesFor(info.max_stream_chunk_bytes());
    }
  }
  for (const std::string& file : files) {
    std::ifstream stream;
    int64_t size = -1;
    if (file == "-") {
      size = RegularFileSize(STDIN_FILENO);
    } else {
      stream.open(file, std::ios::binary);
      if (!stream) {
        std::cerr << kProgram << ": cannot open '" << file << "': " << std::strerror(errno) << "\n";
        return 1;
      }
      struct stat st;
      if (stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) size = st.st_size;
    }
    std::istream& in = file == "-" ? std::cin : stream;
    // A known size lets models with full-attention layers reserve the stream's KV memory.
    options.set_max_bytes(size > 0 ? size : 0);
    ProgressLine progress(file, size, tty, absl::GetFlag(FLAGS_quiet));
    mswa::v1::ScoreResult result;
    const grpc::Status status = client.ScoreStream(
        in, options, [&](const mswa::v1::ScoreProgress& p) { progress.Update(p); }, &result,
        chunk_bytes);
    progress.Clear();
    if (!status.ok()) return RpcError(status);
    ++totals.files;
    totals.tokens += result.tokens();
    totals.bytes += result.bytes();
    totals.total_nll += result.total_nll();
    if (json) {
      std::cout << ScoreJson(file, result) << "\n" << std::flush;
    } else {
      if (options.per_token_logprobs()) PrintPerToken(result);
      std::cout << absl::StrFormat("%s: %d tokens, %d bytes, perplexity %.6g, bits/byte %.4f\n",
                                   file, result.tokens(), result.bytes(), result.perplexity(),
                                   result.bits_per_byte())
                << std::flush;
    }
  }
  // Totals pool the sums, so they weigh files by size (not a mean of per-file values).
  const double perplexity = totals.tokens > 0
                                ? std::exp(totals.total_nll / static_cast<double>(totals.tokens))
                                : std::nan("");
  const double bits_per_byte =
      totals.bytes > 0 ? totals.total_nll / std::log(2.0) / static_cast<double>(totals.bytes)
                       : std::nan("");
  if (json) {
    std::cout << "{\"total\":true,\"files\":" << totals.files << ",\"tokens\":" << totals.tokens
              << ",\"bytes\":" << totals.bytes
              << ",\"total_nll\":" << mswa::client::JsonNumber(totals.total_nll)
              << ",\"perplexity\":" << mswa::client::JsonNumber(perplexity)
              << ",\"bits_per_byte\":" << mswa::client::JsonNumber(bits_per_byte) << "}\n";
  } else if (totals.files > 1) {
    std::cout << absl::StrFormat(
        "total (%d files): %d tokens, %d bytes, perplexity %.6g, bits/byte %.4f\n", totals.files,
        totals.tokens, totals.bytes, perplexity, bits_per_byte);
  }
  return 0;
}

// ---- info --------------------------------------------------------------------------------------

std::string WindowName(int64_t window) { return window == 0 ? "full" : absl::StrCat(window); }

// One layer's per-head windows, run-length encoded: "128 x4, full x4".
std::string LayerWindowsText(const mswa::v1::LayerWindows& layer) {
  std::vector<std::string> runs;
  for (int i = 0; i < layer.windows_size();) {
    int j = i;
    while (j < layer.windows_size() && layer.windows(j) == layer.windows(i)) ++j;
    runs.push_back(absl::StrCat(WindowName(layer.windows(i)), " x", j - i));
    i = j;
  }
  return absl::StrJoin(runs, ", ");
}

int RunInfo(MswaClient& client) {
  mswa::v1::GetModelInfoResponse info;
  const grpc::Status status = client.GetModelInfo(&info);
  if (!status.ok()) return RpcError(status);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(info) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("model:        %s (%s) on %s, %s\n", info.model_name(),
                               info.model_type(), info.device(), info.dtype());
  std::cout << absl::StrFormat("parameters:   %d (%.1f M)\n", info.num_parameters(),
                               static_cast<double>(info.num_parameters()) / 1e6);
  std::string eos = absl::StrCat(info.eos_token_id());
  if (info.eos_token_ids_size() > 1) eos = absl::StrJoin(info.eos_token_ids(), ",");
  std::cout << absl::StrFormat("tokenizer:    %s, vocab %d, bos %d, eos %s\n", info.tokenizer(),
                               info.vocab_size(), info.bos_token_id(), eos);
  std::cout << absl::StrFormat(
      "layers:       %d, hidden %d, intermediate %d, heads %d (kv %d), head_dim %d\n",
      info.num_layers(), info.hidden_size(), info.intermediate_size(),
      info.num_attention_heads(), info.num_key_value_heads(), info.head_dim());
  // Consecutive layers with the same windows share a line.
  std::cout << "windows (keys a query sees, per query head; full = unbounded):\n";
  for (int i = 0; i < info.attention_windows_size();) {
    const std::string text = LayerWindowsText(info.attention_windows(i));
    int j = i + 1;
    while (j < info.attention_windows_size() &&
           LayerWindowsText(info.attention_windows(j)) == text) {
      ++j;
    }
    const std::string layers = j - i == 1 ? absl::StrCat("layer ", i)
                                          : absl::StrCat("layers ", i, "-", j - 1);
    std::cout << absl::StrFormat("  %-14s %s\n", layers + ":", text);
    i = j;
  }
  if (info.native_windows_size() > 0) {
    std::cout << "  (an MSWA schedule replaces the windows the model was trained with)\n";
  }
  for (const mswa::v1::KvBytesAtLength& k : info.kv_bytes_at_length()) {
    std::cout << absl::StrFormat("KV at %6d tokens: %s per sequence (full attention: %s)\n", k.tokens(),
                                 mswa::client::FormatBytes(k.bytes()),
                                 mswa::client::FormatBytes(k.full_attention_bytes()));
  }
  std::cout << absl::StrFormat("KV cache:     %s, %s, block size %d tokens\n",
                               mswa::client::FormatBytes(info.kv_cache_bytes()), info.kv_dtype(),
                               info.kv_block_size());
  if (info.window_groups_size() > 0) {
    std::cout << absl::StrFormat("  %-8s %8s %18s %12s\n", "window", "kv_heads",
                                 "max blocks/seq", "total blocks");
    for (const mswa::v1::WindowGroupInfo& g : info.window_groups()) {
      std::cout << absl::StrFormat("  %-8s %8d %18s %12d\n", WindowName(g.window()), g.kv_heads(),
                                   g.window() == 0 ? std::string("-")
                                                   : absl::StrCat(g.max_blocks_per_sequence()),
                                   g.total_blocks());
    }
  }
  std::cout << "KV bound:     "
            << (info.kv_bytes_per_sequence_bound() > 0
                    ? absl::StrCat(mswa::client::FormatBytes(info.kv_bytes_per_sequence_bound()),
                                   " per sequence, whatever its length")
                    : std::string("none (some window is unbounded)"))
            << "\n";
  std::cout << absl::StrFormat(
      "limits:       max_tokens %d, waiting requests %d, tokens per step %d, sequence length %s\n",
      info.max_tokens_limit(), info.max_waiting_requests(), info.max_tokens_per_step(),
      info.max_sequence_length() > 0 ? absl::StrCat(info.max_sequence_length()) : "no limit");
  if (info.max_score_bytes() > 0) {  // servers that report their input limits
    std::cout << absl::StrFormat(
        "input limits: prompt %s or %d token ids, score %s, stream chunk %s, tokenize %s, "
        "idle stream %s\n",
        mswa::client::FormatBytes(info.max_prompt_bytes()), info.max_prompt_tokens(),
        mswa::client::FormatBytes(info.max_score_bytes()),
        mswa::client::FormatBytes(info.max_stream_chunk_bytes()),
        mswa::client::FormatBytes(info.max_tokenize_bytes()),
        info.stream_idle_timeout_seconds() > 0
            ? absl::StrCat(info.stream_idle_timeout_seconds(), " s")
            : std::string("no timeout"));
  }
  return 0;
}

// ---- health, tokenize --------------------------------------------------------------------------

int RunHealth(MswaClient& client) {
  grpc::health::v1::HealthCheckResponse::ServingStatus serving =
      grpc::health::v1::HealthCheckResponse::UNKNOWN;
  const grpc::Status status = client.Health(absl::GetFlag(FLAGS_service), &serving);
  if (!status.ok()) return RpcError(status);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(serving) << "\n";
  return serving == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int RunTokenize(MswaClient& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("tokenize takes exactly one TEXT argument");
  mswa::v1::TokenizeRequest request;
  request.set_text(args[0] == "-" ? ReadAll(std::cin) : args[0]);
  request.set_add_bos(absl::GetFlag(FLAGS_bos));
  mswa::v1::TokenizeResponse response;
  const grpc::Status status = client.Tokenize(request, &response);
  if (!status.ok()) return RpcError(status);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
    return 0;
  }
  std::cout << absl::StrJoin(response.token_ids(), " ") << "\n";
  for (int i = 0; i < response.token_ids_size(); ++i) {
    const std::string bytes = i < response.tokens_size() ? response.tokens(i) : std::string();
    std::cout << absl::StrFormat("%8d  \"%s\"\n", response.token_ids(i), absl::CHexEscape(bytes));
  }
  return 0;
}

// ---- bench -------------------------------------------------------------------------------------

int RunBenchCommand(MswaClient& client, const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("bench takes no arguments, only flags");
  mswa::client::BenchOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.request_rate = absl::GetFlag(FLAGS_request_rate);
  options.num_requests = absl::GetFlag(FLAGS_num_requests);
  options.duration_seconds = absl::GetFlag(FLAGS_duration);
  options.prompt_len = absl::GetFlag(FLAGS_prompt_len);
  options.output_len = absl::GetFlag(FLAGS_output_len);
  options.prompts_file = absl::GetFlag(FLAGS_prompts_file);
  options.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  absl::StatusOr<std::optional<uint64_t>> seed = ParseSeed();
  if (!seed.ok()) return UsageError(std::string(seed.status().message()));
  options.seed = seed->value_or(0);
  if (absl::Status valid = options.Validate(); !valid.ok()) {
    return UsageError(std::string(valid.message()));
  }
  if (!absl::GetFlag(FLAGS_quiet)) {
    std::cerr << absl::StrFormat(
        "bench: %s, concurrency %s, request rate %s, %s requests, duration %s, output %d "
        "tokens\n",
        absl::GetFlag(FLAGS_http_target).empty()
            ? client.options().target
            : absl::StrCat("http://", absl::GetFlag(FLAGS_http_target)),
        options.concurrency > 0 ? absl::StrCat(options.concurrency) : "unbounded",
        std::isinf(options.request_rate) ? "inf" : absl::StrCat(options.request_rate, "/s"),
        options.num_requests > 0 ? absl::StrCat(options.num_requests) : "unbounded",
        options.duration_seconds > 0 ? absl::StrCat(options.duration_seconds, " s") : "unbounded",
        options.output_len);
  }
  const std::string http_target = absl::GetFlag(FLAGS_http_target);
  absl::StatusOr<mswa::client::BenchReport> report =
      http_target.empty()
          ? mswa::client::RunBench(client, options)
          : mswa::client::RunHttpBench(http_target, client.options().api_key, options);
  if (!report.ok()) {
    std::cerr << kProgram << ": " << report.status().message() << "\n";
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << mswa::client::ReportJson(*report, options) << "\n";
  } else {
    std::cout << mswa::client::FormatReport(*report);
  }
  // A run where nothing completed measured nothing: report it like a failed RPC.
  if (report->completed == 0 && !report->errors.empty()) {
    const auto& [code, errors] = *report->errors.begin();
    std::cerr << kProgram << ": " << code << ": " << errors.example << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kCommands);
  std::vector<std::string> args(argv, argv + argc);
  // --stop may repeat and contain commas; absl's list flags split on commas, so it is taken out
  // before absl sees the arguments.
  absl::StatusOr<std::vector<std::string>> stops =
      mswa::client::ExtractRepeatedFlag(&args, "stop");
  if (!stops.ok()) return UsageError(std::string(stops.status().message()));
  if (WantsHelp(args)) {
    PrintHelp(std::cout);
    return 0;
  }
  if (absl::Status flags = CheckFlags(args); !flags.ok()) {
    return UsageError(std::string(flags.message()));
  }
  std::vector<char*> c_args;
  for (std::string& arg : args) c_args.push_back(arg.data());
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(c_args.size()), c_args.data());
  if (positional.size() < 2) return UsageError("no command given");
  const std::string command = positional[1];
  const std::vector<std::string> command_args(positional.begin() + 2, positional.end());
  if (command == "help") {
    PrintHelp(std::cout);
    return 0;
  }
  if (!stops->empty() && command != "generate") {
    return UsageError("--stop only applies to generate");
  }

  if (!absl::GetFlag(FLAGS_tls) &&
      (!absl::GetFlag(FLAGS_tls_ca).empty() || !absl::GetFlag(FLAGS_tls_server_name).empty())) {
    return UsageError("--tls_ca and --tls_server_name need --tls");
  }
  mswa::client::ClientOptions client_options;
  client_options.target = absl::GetFlag(FLAGS_target);
  client_options.deadline_seconds = absl::GetFlag(FLAGS_deadline);
  client_options.tls = absl::GetFlag(FLAGS_tls);
  client_options.api_key = absl::GetFlag(FLAGS_api_key);
  if (client_options.api_key.empty() && std::getenv("MSWA_API_KEY") != nullptr) {
    client_options.api_key = std::getenv("MSWA_API_KEY");
  }
  client_options.tls_root_cert_file = absl::GetFlag(FLAGS_tls_ca);
  client_options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  absl::StatusOr<std::unique_ptr<MswaClient>> client = MswaClient::Create(client_options);
  if (!client.ok()) return UsageError(std::string(client.status().message()));

  if (command == "generate") return RunGenerate(**client, command_args, *stops);
  if (command == "score") return RunScore(**client, command_args);
  if (command == "info") {
    if (!command_args.empty()) return UsageError("info takes no arguments");
    return RunInfo(**client);
  }
  if (command == "health") {
    if (!command_args.empty()) return UsageError("health takes no arguments");
    return RunHealth(**client);
  }
  if (command == "tokenize") return RunTokenize(**client, command_args);
  if (command == "bench") return RunBenchCommand(**client, command_args);
  return UsageError(absl::StrCat("unknown command '", command, "'"));
}
