// Runs the engine on a model directory and writes what an independent reference checks
// (tests/python/hf_reference.py check):
//   {"score": {"tokens": [...], "logprobs": [...]},          log p(tokens[i+1] | tokens[..i])
//    "generate": {"prompt": [...], "tokens": [...], "logprobs": [...]}}   greedy, raw logprobs
// Scoring goes through prefill chunks of --chunk tokens (the step budget), generation through
// chunked prefill then one decode step per token, so both engine paths are covered. Freed KV
// blocks are poisoned with NaN: a kernel that reads outside its window fails the check.
//
// Usage: engine_oracle MODEL_DIR OUT_JSON [--chunk N] [--tokens N] [--seed S]
//                      [--activation_dtype float32|bfloat16|auto]   (default float32)
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/runtime/device_options.h"
#include "model/tokenizer/byte_tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/engine.h"
#include "server/model_loader.h"

namespace mswa {
namespace {

int Run(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: engine_oracle MODEL_DIR OUT_JSON [--chunk N] [--tokens N] [--seed S]"
                 " [--activation_dtype float32|bfloat16|auto]\n";
    return 2;
  }
  const std::string dir = argv[1], out_path = argv[2];
  int64_t chunk = 7, num_tokens = 64;
  uint32_t seed = 1;
  // float32 unless asked: the check against the float64 reference is tight for exact
  // activations, and the default rounds them to bfloat16 for bfloat16 weights on some CPUs.
  std::optional<at::ScalarType> activation_dtype = at::kFloat;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long long v = std::atoll(argv[i + 1]);
    if (flag == "--activation_dtype") {
      auto t = ParseActivationDType(argv[i + 1]);
      if (!t.ok()) {
        std::cerr << "engine_oracle: " << t.status() << "\n";
        return 2;
      }
      activation_dtype = *t;
    } else if (flag == "--chunk") chunk = v;
    else if (flag == "--tokens") num_tokens = v;
    else if (flag == "--seed") seed = static_cast<uint32_t>(v);
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  EngineOptions o;
  o.max_tokens_per_step = chunk;
  o.kv_cache_bytes = int64_t{64} << 20;
  o.max_model_len = 4096;
  o.poison_freed_blocks = true;
  o.num_threads = 2;
  o.activation_dtype = activation_dtype;
  // The reference's directories carry no tokenizer (ids are given): load them with the byte
  // tokenizer, which only names the tokens.
  const bool has_tokenizer = std::ifstream(dir + "/tokenizer.json").good() ||
                             std::ifstream(dir + "/tokenizer.model").good();
  absl::StatusOr<std::unique_ptr<Engine>> engine = absl::UnknownError("not loaded");
  if (has_tokenizer) {
    engine = LoadEngine(dir, o);
  } else {
    std::ifstream in(dir + "/config.json");
    std::stringstream text;
    text << in.rdbuf();
    auto config = ParseModelConfig(text.str(), dir + "/config.json");
    if (!config.ok()) {
      std::cerr << "engine_oracle: " << config.status() << "\n";
      return 1;
    }
    auto weights = LoadModelWeights(dir, *config, std::nullopt);
    if (!weights.ok()) {
      std::cerr << "engine_oracle: " << weights.status() << "\n";
      return 1;
    }
    engine = Engine::Create(*config, std::move(*weights), std::make_unique<ByteTokenizer>(), o);
  }
  if (!engine.ok()) {
    std::cerr << "engine_oracle: " << engine.status() << "\n";
    return 1;
  }
  Engine& e = **engine;
  std::mt19937 rng(seed);
  std::vector<int32_t> tokens(num_tokens);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % e.config().vocab_size);

  auto run = [&](bool& done) {
    for (int i = 0; i < 1000000 && !done; ++i) e.Step();
  };
  nlohmann::json out;
  {
    ScoreOptions so;
    so.add_bos = false;
    so.per_token_logprobs = true;
    std::vector<float> logprobs;
    bool done = false;
    absl::Status error;
    auto id = e.SubmitScore(so, num_tokens, [&](EngineEvent ev) {
      logprobs.insert(logprobs.end(), ev.token_logprobs.begin(), ev.token_logprobs.end());
      if (ev.finished) {
        done = true;
        error = ev.error;
      }
    });
    if (!id.ok() || !e.FeedScore(*id, tokens, num_tokens, true).ok()) {
      std::cerr << "engine_oracle: score: " << id.status() << "\n";
      return 1;
    }
    run(done);
    if (!done || !error.ok()) {
      std::cerr << "engine_oracle: score did not finish: " << error << "\n";
      return 1;
    }
    out["score"] = {{"tokens", tokens}, {"logprobs", logprobs}};
  }
  {
    std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + std::min<int64_t>(20, num_tokens));
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_tokens = 24;
    g.ignore_eos = true;
    g.logprobs = true;
    std::vector<int32_t> generated;
    std::vector<float> logprobs;
    bool done = false;
    absl::Status error;
    auto id = e.SubmitGenerate(prompt, g, [&](EngineEvent ev) {
      generated.insert(generated.end(), ev.token_ids.begin(), ev.token_ids.end());
      for (const auto& s : ev.logprobs) logprobs.push_back(s.logprob);
      if (ev.finished) {
        done = true;
        error = ev.error;
      }
    });
    if (!id.ok()) {
      std::cerr << "engine_oracle: generate: " << id.status() << "\n";
      return 1;
    }
    run(done);
    if (!done || !error.ok()) {
      std::cerr << "engine_oracle: generate did not finish: " << error << "\n";
      return 1;
    }
    out["generate"] = {{"prompt", prompt}, {"tokens", generated}, {"logprobs", logprobs}};
  }
  std::ofstream f(out_path);
  f << out.dump() << "\n";
  if (!f) {
    std::cerr << "engine_oracle: cannot write " << out_path << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace mswa

int main(int argc, char** argv) { return mswa::Run(argc, argv); }
