// mswa-server: serves an MSWA model over gRPC (mswa.v1.MswaService, grpc.health.v1, server
// reflection) and an OpenAI-compatible HTTP API (server/http/http_api.h) on one engine, with
// Prometheus metrics on a third port.
//
// Life cycle: listen (health NOT_SERVING / HTTP /health 503, requests UNAVAILABLE / 503) ->
// load the model -> warm up -> SERVING. SIGTERM/SIGINT: NOT_SERVING and /health 503, refuse new
// requests on both protocols, let running ones finish for --drain_grace_seconds, abort the
// rest, exit 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/api/api_keys.h"
#include "server/api/chat_prompt.h"
#include "server/http/http_api.h"
#include "server/json_log.h"
#include "server/metrics.h"
#include "server/model_loader.h"
#include "server/server_config.h"
#include "server/service.h"

#ifndef MSWA_DEFAULT_MODEL_DIR
#define MSWA_DEFAULT_MODEL_DIR "models/mswa-books-small"
#endif

ABSL_FLAG(std::string, model_dir, MSWA_DEFAULT_MODEL_DIR,
          "Model directory (config.json, model.safetensors, tokenizer); default: the model that "
          "ships with mswa-serve");
ABSL_FLAG(std::string, model_name, "", "Name reported and accepted in requests (default: the directory's name)");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC address HOST:PORT (port 0: any free port)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9090", "Prometheus /metrics address; empty disables");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:8000",
          "OpenAI-compatible HTTP API address HOST:PORT (port 0: any free port); empty disables");
ABSL_FLAG(int32_t, http_threads, 32,
          "HTTP connections served at once (a streaming request holds one until it ends)");
ABSL_FLAG(double, http_timeout_seconds, 30,
          "HTTP: limit on one socket read or write and on receiving a whole request; a client "
          "that reads its stream slower is disconnected and its request cancelled");
ABSL_FLAG(int64_t, kv_cache_bytes, int64_t{1} << 30, "Memory for the KV cache pools, in bytes");
ABSL_FLAG(int64_t, block_size, 16, "KV cache block size in tokens (1..64)");
ABSL_FLAG(int64_t, max_tokens_per_step, 512, "Token budget of one engine step (also the prefill chunk)");
ABSL_FLAG(int64_t, max_model_len, 32768, "Longest sequence when the model has unbounded (full-attention) heads");
ABSL_FLAG(int32_t, max_waiting, 256, "Requests that may wait for admission; more get RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, max_new_tokens, 4096, "Upper limit of a Generate request's max_tokens");
ABSL_FLAG(int32_t, threads, 0, "Compute threads (0: every core)");
ABSL_FLAG(bool, enable_prefix_caching, true,
          "Reuse the K/V of prompt prefixes earlier requests computed (window-aware: a windowed "
          "head group keeps only the blocks its window still sees); --noenable_prefix_caching "
          "turns it off");
ABSL_FLAG(std::string, device, "cpu",
          "cpu, or cuda: weights and KV on the GPU (needs the CUDA kernels and a CUDA LibTorch)");
ABSL_FLAG(std::string, dtype, "auto",
          "Type of the matrix products: auto (the checkpoint's; float16 runs as float32 on cpu), "
          "float32, bfloat16 (on cpu: half the weight bytes per decode step), int8 (on cpu: "
          "quantized at load, a scale per 32 weights) or q4 (on cpu: the layers' weights in 4 "
          "bits, llama.cpp's q4_0 scheme, the embedding and LM head in int8)");
ABSL_FLAG(std::string, activation_dtype, "auto",
          "Type of the activations entering the matrix products: auto (bfloat16 for bfloat16 "
          "weights on a CPU with AVX-512 BF16, else float32), float32 (exact), or bfloat16 with "
          "bfloat16 weights (bfloat16 x bfloat16 products summed in float32, as llama.cpp "
          "computes: prompts and large batches up to 2x faster with AVX-512 BF16)");
ABSL_FLAG(std::string, kv_cache_dtype, "auto",
          "KV cache element type: auto (float32 on cpu, the weights' type on cuda), float32, "
          "float16 or bfloat16 (half the memory per sequence; keys and values rounded)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve gRPC over TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, api_key, "",
          "API keys (comma-separated) that every request must present, HTTP as \"Authorization: "
          "Bearer KEY\", gRPC as \"authorization\" metadata; health, reflection and /metrics "
          "stay open. Prefer --api_key_file: flags show in process listings. Empty: no keys");
ABSL_FLAG(std::string, api_key_file, "",
          "File of API keys, one per line ('#' comments), e.g. a mounted Kubernetes Secret");
ABSL_FLAG(double, drain_grace_seconds, 30, "On SIGTERM, how long running requests may finish");
ABSL_FLAG(bool, warmup, true, "Run one short generation before reporting SERVING");
// Input limits (server/api/limits.h): past one, the request fails with INVALID_ARGUMENT naming it.
ABSL_FLAG(int64_t, max_prompt_bytes, int64_t{1} << 20, "Largest Generate prompt, in bytes");
ABSL_FLAG(int64_t, max_prompt_tokens, int64_t{1} << 20, "Most Generate prompt_token_ids");
ABSL_FLAG(int64_t, max_score_bytes, int64_t{8} << 20,
          "Largest unary Score text, in bytes (ScoreStream takes texts of any size)");
ABSL_FLAG(int64_t, max_stream_chunk_bytes, int64_t{1} << 20, "Largest ScoreStream chunk, in bytes");
ABSL_FLAG(int64_t, max_tokenize_bytes, int64_t{1} << 20, "Largest Tokenize text, in bytes");
ABSL_FLAG(double, stream_idle_timeout_seconds, 60,
          "A ScoreStream whose client sends (or reads) nothing for this long ends with "
          "DEADLINE_EXCEEDED and its KV memory is freed; 0: never");

namespace mswa {
namespace {

constexpr char kServiceName[] = "mswa.v1.MswaService";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ServerConfig ConfigFromFlags() {
  ServerConfig c;
  c.model_dir = absl::GetFlag(FLAGS_model_dir);
  c.model_name = absl::GetFlag(FLAGS_model_name);
  c.listen = absl::GetFlag(FLAGS_listen);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.http_listen = absl::GetFlag(FLAGS_http_listen);
  c.http_threads = absl::GetFlag(FLAGS_http_threads);
  c.http_timeout_seconds = absl::GetFlag(FLAGS_http_timeout_seconds);
  c.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  c.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  c.drain_grace_seconds = absl::GetFlag(FLAGS_drain_grace_seconds);
  c.api_key = absl::GetFlag(FLAGS_api_key);
  c.api_key_file = absl::GetFlag(FLAGS_api_key_file);
  c.warmup = absl::GetFlag(FLAGS_warmup);
  c.engine.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_bytes);
  c.engine.block_size = absl::GetFlag(FLAGS_block_size);
  c.engine.max_tokens_per_step = absl::GetFlag(FLAGS_max_tokens_per_step);
  c.engine.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  c.engine.max_waiting = absl::GetFlag(FLAGS_max_waiting);
  c.engine.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  c.engine.num_threads = absl::GetFlag(FLAGS_threads);
  c.engine.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  c.limits.max_prompt_bytes = absl::GetFlag(FLAGS_max_prompt_bytes);
  c.limits.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  c.limits.max_score_bytes = absl::GetFlag(FLAGS_max_score_bytes);
  c.limits.max_stream_chunk_bytes = absl::GetFlag(FLAGS_max_stream_chunk_bytes);
  c.limits.max_tokenize_bytes = absl::GetFlag(FLAGS_max_tokenize_bytes);
  c.limits.stream_idle_timeout_seconds = absl::GetFlag(FLAGS_stream_idle_timeout_seconds);
  return c;
}

// Runs one tiny generation so the first real request does not pay for lazy initialization.
void Warmup(Engine& engine) {
  absl::Notification done;
  GenerateOptions g;
  g.max_tokens = 2;
  g.ignore_eos = true;
  g.sampling.temperature = 0;
  std::vector<int32_t> prompt = engine.tokenizer().Encode("warm up");
  if (prompt.empty()) prompt.push_back(0);
  auto id = engine.SubmitGenerate(prompt, g, [&done](EngineEvent e) {
    if (e.finished) done.Notify();
  });
  if (id.ok()) done.WaitForNotificationWithTimeout(absl::Seconds(60));
}

int Run(const ServerConfig& config, const ApiKeys& api_keys, sigset_t signals) {
  MswaServiceImpl service(ServiceOptions{config.ResolvedModelName(), config.limits, api_keys});
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!config.tls_cert_file.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({ReadFile(config.tls_key_file), ReadFile(config.tls_cert_file)});
    creds = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  builder.AddListeningPort(config.listen, creds, &port);
  builder.RegisterService(&service);
  // Just above the largest input a limit allows: bigger messages are refused by gRPC itself
  // (RESOURCE_EXHAUSTED) before they are parsed.
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.limits.MaxReceiveMessageBytes()));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "mswa-server: cannot listen on %s (address in use or not local?)\n",
                 config.listen.c_str());
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus(kServiceName, false);
  const std::string host = config.listen.substr(0, config.listen.rfind(':'));
  std::printf("mswa-server listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  // The HTTP API comes up with gRPC, before the model: /health answers 503 while it loads.
  std::unique_ptr<HttpApi> http;
  if (!config.http_listen.empty()) {
    HttpApiOptions http_options;
    http_options.model_name = config.ResolvedModelName();
    http_options.limits = config.limits;
    http_options.api_keys = api_keys;
    http_options.threads = config.http_threads;
    http_options.io_timeout = absl::Seconds(config.http_timeout_seconds);
    absl::StatusOr<std::unique_ptr<HttpApi>> started = HttpApi::Start(config.http_listen, http_options);
    if (!started.ok()) {
      std::fprintf(stderr, "mswa-server: --http_listen: %s\n",
                   std::string(started.status().message()).c_str());
      server->Shutdown();
      return 1;
    }
    http = std::move(started).value();
    std::printf("mswa-server HTTP API on http://%s:%d\n",
                config.http_listen.substr(0, config.http_listen.rfind(':')).c_str(), http->port());
    std::fflush(stdout);
  }

  const absl::Time load_start = absl::Now();
  absl::StatusOr<std::unique_ptr<Engine>> engine = LoadEngine(config.model_dir, config.engine);
  if (!engine.ok()) {
    std::fprintf(stderr, "mswa-server: cannot load the model: %s\n",
                 std::string(engine.status().message()).c_str());
    server->Shutdown();
    return 1;
  }
  std::unique_ptr<Metrics> metrics;
  if (!config.metrics_listen.empty()) {
    std::vector<int64_t> windows;
    for (const auto& g : (*engine)->stats().groups) windows.push_back(g.window);
    auto m = Metrics::Create(config.metrics_listen, windows);
    if (!m.ok()) {
      std::fprintf(stderr, "mswa-server: %s\n", std::string(m.status().message()).c_str());
      server->Shutdown();
      return 1;
    }
    metrics = std::move(m).value();
    std::printf("mswa-server metrics on %s:%d/metrics\n",
                config.metrics_listen.substr(0, config.metrics_listen.rfind(':')).c_str(), metrics->port());
    std::fflush(stdout);
    Metrics* mp = metrics.get();
    Engine* ep = engine->get();
    (*engine)->SetStepObserver([mp, ep](double seconds, int64_t tokens) {
      mp->Step(seconds, tokens);
      mp->Refresh(ep->stats());
    });
  }
  if (metrics) {
    Engine* ep = engine->get();
    metrics->SetStatsSource([ep] { return ep->stats(); });
  }
  // A model that fails for good (a GPU fault) cannot serve again: report NOT_SERVING on both
  // health services so that readiness takes the pod out and liveness restarts it.
  HttpApi* http_api = http.get();
  (*engine)->SetFailureObserver([health, http_api](const absl::Status& error, bool fatal) {
    LogEvent(fatal ? "model_failed" : "step_failed", {{"error", std::string(error.message())}});
    if (!fatal) return;
    if (http_api != nullptr) http_api->MarkFailed(error);
    health->SetServingStatus(false);
    health->SetServingStatus(kServiceName, false);
  });
  (*engine)->Start();
  if (config.warmup) Warmup(**engine);
  if (metrics) metrics->Refresh((*engine)->stats());
  service.Attach(engine->get(), metrics.get());
  if (http) {
    absl::StatusOr<ChatPrompt> chat = ChatPrompt::Load(config.model_dir);
    if (!chat.ok()) {
      LogEvent("chat_template_error", {{"error", std::string(chat.status().message())}});
    }
    http->Attach(engine->get(), metrics.get(), std::move(chat));
  }
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
  LogEvent("serving", {{"model", service.options().model_name},
                       {"port", port},
                       {"load_seconds", absl::ToDoubleSeconds(absl::Now() - load_start)}});

  int sig = 0;
  sigwait(&signals, &sig);
  auto in_flight = [&] { return service.in_flight() + (http ? http->in_flight() : 0); };
  LogEvent("draining", {{"signal", sig}, {"in_flight", in_flight()}});
  health->SetServingStatus(false);
  health->SetServingStatus(kServiceName, false);
  service.StartDraining();
  if (http) http->StartDraining();
  const absl::Time deadline = absl::Now() + absl::Seconds(config.drain_grace_seconds);
  while (in_flight() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  const int64_t aborted = in_flight();
  (*engine)->Shutdown();  // aborts what is left; their RPCs end with UNAVAILABLE
  // Every engine-backed RPC is finished by now (the rest were just aborted). gRPC's shutdown
  // waits until the deadline for their statuses to go out and for connected clients (idle
  // channels too) to hang up, then disconnects them: a short deadline is enough.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  http.reset();     // the aborted streams have ended; closes what connections are left
  metrics.reset();  // closes /metrics connections without waiting on their clients
  LogEvent("stopped", {{"aborted", aborted}});
  return 0;
}

}  // namespace
}  // namespace mswa

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "serves an MSWA language model over gRPC and an OpenAI-compatible HTTP API.\n"
      "  mswa-server [--model_dir DIR] [--listen HOST:PORT] [--http_listen HOST:PORT]\n"
      "              [--metrics_listen HOST:PORT] ...\n"
      "Clients: mswa-client, or any gRPC client (reflection is on; proto: proto/mswa/v1/mswa.proto).");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  mswa::RouteLibraryLogsToJson();
  if (positional.size() > 1) {
    std::fprintf(stderr, "mswa-server: unexpected argument \"%s\" (see --help)\n", positional[1]);
    return 2;
  }
  mswa::ServerConfig config = mswa::ConfigFromFlags();
  absl::StatusOr<mswa::ModelDevice> device = mswa::ParseModelDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "mswa-server: --device: %s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  config.engine.device = *device;
  absl::StatusOr<std::optional<mswa::KvDType>> kv_dtype =
      mswa::ParseKvCacheDType(absl::GetFlag(FLAGS_kv_cache_dtype));
  if (!kv_dtype.ok()) {
    std::fprintf(stderr, "mswa-server: --kv_cache_dtype: %s\n", std::string(kv_dtype.status().message()).c_str());
    return 2;
  }
  config.engine.kv_cache_dtype = *kv_dtype;
  absl::StatusOr<std::optional<at::ScalarType>> dtype = mswa::ParseComputeDType(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) {
    std::fprintf(stderr, "mswa-server: --dtype: %s\n", std::string(dtype.status().message()).c_str());
    return 2;
  }
  config.engine.dtype = *dtype;
  absl::StatusOr<std::optional<at::ScalarType>> activation_dtype =
      mswa::ParseActivationDType(absl::GetFlag(FLAGS_activation_dtype));
  if (!activation_dtype.ok()) {
    std::fprintf(stderr, "mswa-server: --activation_dtype: %s\n",
                 std::string(activation_dtype.status().message()).c_str());
    return 2;
  }
  config.engine.activation_dtype = *activation_dtype;
  if (absl::Status s = config.Validate(); !s.ok()) {
    std::fprintf(stderr, "mswa-server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // Block the shutdown signals in every thread (threads inherit the mask); main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  absl::StatusOr<mswa::ApiKeys> api_keys = mswa::ApiKeys::Load(config.api_key, config.api_key_file);
  if (!api_keys.ok()) {
    std::fprintf(stderr, "mswa-server: %s\n", std::string(api_keys.status().message()).c_str());
    return 2;
  }
  return mswa::Run(config, *api_keys, signals);
}
