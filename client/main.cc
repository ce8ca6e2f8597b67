// mswa-client: command-line client for mswa-serve.
//
//   mswa-client [global flags] COMMAND [args] [flags]
//
// Exit codes: 0 success; 1 an RPC failed (stderr: "mswa-client: <CODE>: <message>") or an input
// file could not be read; 2 usage error (unknown command or flag, bad flag value, missing
// arguments). Flags may appear anywhere; "--" ends them (for a prompt that starts with '-').
#include <unistd.h>

#include <cstdlib>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
#include "client/cli/cli.h"
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
ABSL_FLAG(bool, skip_prefix_cache, false,
          "compute the whole prompt even if the server has its prefix cached (same output)");
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

using mswa::client::cli::kCommands;
using mswa::client::cli::kProgram;
using mswa::client::cli::RpcError;
using mswa::client::cli::RunInfo;
using mswa::client::cli::RunScore;
using mswa::client::cli::ToJson;
using mswa::client::cli::UsageError;

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
        "ignore_eos", "logprobs", "top_logprobs", "no_bos", "skip_prefix_cache"}},
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
  options.skip_prefix_cache = absl::GetFlag(FLAGS_skip_prefix_cache);
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
