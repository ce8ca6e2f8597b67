// mswa-model: create, inspect and re-window model directories.
//
//   mswa-model init DIR [--preset mswa] [--window 256] [--hidden 256] [--layers 6] ...
//   mswa-model info DIR [--block-size 16] [--chunk 512] [--kv-dtype f16]
//   mswa-model set-windows DIR (--preset P [--window W] ... | --windows "L0;L1;..." | --reset)
//   mswa-model logits DIR (--text STR | --tokens 1,2,3) [--bos] [--start-pos N] --out FILE
//
// Exit codes: 0 ok, 1 error (message on stderr), 2 usage error.
//
// This file keeps the help text and the dispatch; each command is in a file of its own under
// model/tools/model_cli/.
#include <iostream>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tools/model_cli/model_cli.h"

namespace mswa::model_cli {
namespace {

constexpr char kUsage[] = R"(mswa-model: create, inspect and re-window model directories.

Usage:
  mswa-model init DIR [options]     write config.json + model.safetensors with deterministic
                                    random weights
      --preset P          full | swa | mswa-h | mswa-l | mswa          (default mswa)
      --window W          base window w                                (default 256)
      --head-scales LIST  head-group ladder, e.g. 0.25,0.5,1,2         (default 0.25,0.5,1,2)
      --layer-scales LIST layer-group ladder, shallow to deep          (default 0.5,0.5,1,2)
      --hidden N          hidden size                                  (default 256)
      --layers N          decoder layers                               (default 6)
      --heads N           query heads                                  (default 8)
      --kv-heads N        key/value heads (GQA)                        (default = heads)
      --head-dim N        per-head dimension                           (default hidden/heads)
      --intermediate N    MLP size                                     (default ~8/3 hidden, x64)
      --vocab N           vocabulary size (bytes tokenizer: >= 258)    (default 258)
      --untied            separate lm_head (default: tied to the embeddings)
      --rope-theta X      (default 10000)       --seed N   (default 0)
      --dtype D           f32 | f16 | bf16 storage                     (default f32)

  mswa-model info DIR [options]     any loadable directory (mswa or Hugging Face, one
                                    model.safetensors or shards with an index): family and
                                    architecture switches, parameters, tokenizer, EOS ids, the
                                    windows of every layer and head (and the model's own when a
                                    schedule replaces them), KV window groups, and the KV memory
                                    per sequence beside a full-attention model
      --block-size N      KV block size in tokens                      (default 16)
      --chunk N           largest prefill chunk in tokens              (default 512)
      --kv-dtype D        f32 | f16 | bf16 cache                       (default f16)

  mswa-model set-windows DIR        rewrite DIR/config.json with an "attention_windows" entry
                                    (one list per layer of one window per query head) that
                                    replaces the model's own windows; every other field is kept.
                                    The result is validated before anything is written: heads
                                    that share a KV head must share a window.
      --preset P          a schedule as for init: full | swa | mswa-h | mswa-l | mswa
        --window W        base window       (default: the model's largest own window)
        --head-scales LIST, --layer-scales LIST     ladders as for init
      --windows "L0;L1;..."  explicit windows, one entry per layer separated by ';', each
                          one window per query head separated by ',' (or one window for
                          every head of the layer), e.g. "512;512;0" for 3 layers
      --reset             remove "attention_windows": the model's own windows apply again

  mswa-model logits DIR --out FILE  dense reference logits as safetensors ("logits" [T, vocab],
                                    metadata "tokens", "start_pos")
      --text STR | --tokens 1,2,3   input (text is tokenized with the model's tokenizer)
      --bos               prepend the BOS token
      --start-pos N       absolute position of the first token         (default 0)

Exit codes: 0 ok, 1 error (message on stderr), 2 usage error.
)";

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  std::set<std::string> values, switches;
  absl::Status (*run)(const Args&) = nullptr;
  absl::Status (*check_usage)(const Args&) = nullptr;
  if (cmd == "init") {
    values = {"preset", "window", "head-scales", "layer-scales", "hidden", "layers", "heads",
              "kv-heads", "head-dim", "intermediate", "vocab", "rope-theta", "seed", "dtype"};
    switches = {"untied"};
    run = Init;
  } else if (cmd == "info") {
    values = {"block-size", "chunk", "kv-dtype"};
    run = Info;
  } else if (cmd == "set-windows") {
    values = {"preset", "window", "head-scales", "layer-scales", "windows"};
    switches = {"reset"};
    run = SetWindows;
    check_usage = CheckSetWindowsUsage;
  } else if (cmd == "logits") {
    values = {"text", "tokens", "start-pos", "out"};
    switches = {"bos"};
    run = Logits;
  } else {
    std::cerr << "mswa-model: unknown command \"" << cmd
              << "\" (init, info, set-windows, logits; --help)\n";
    return 2;
  }
  absl::StatusOr<Args> args = ParseArgs(argc, argv, values, switches);
  absl::Status usage = args.ok() ? absl::OkStatus() : args.status();
  if (usage.ok() && check_usage != nullptr) usage = check_usage(*args);
  if (!usage.ok()) {
    std::cerr << "mswa-model " << cmd << ": " << usage.message() << " (see --help)\n";
    return 2;
  }
  absl::Status s = run(*args);
  if (!s.ok()) {
    std::cerr << "mswa-model " << cmd << ": " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace mswa::model_cli

int main(int argc, char** argv) { return mswa::model_cli::Main(argc, argv); }
