// mswa-model: create and inspect model directories.
//
//   mswa-model init DIR [--preset mswa] [--window 256] [--hidden 256] [--layers 6] ...
//   mswa-model info DIR [--block-size 16] [--chunk 512] [--kv-dtype f16]
//   mswa-model logits DIR (--text STR | --tokens 1,2,3) [--bos] [--start-pos N] --out FILE
//
// Exit codes: 0 ok, 1 error (message on stderr), 2 usage error.
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/format/config.h"
#include "model/runtime/kv_layout.h"
#include "model/runtime/reference_forward.h"
#include "model/status_macros.h"
#include "model/tokenizer/tokenizer.h"
#include "model/format/weights.h"
#include "model/format/window_schedule.h"

namespace mswa {
namespace {

constexpr char kUsage[] = R"(mswa-model: create and inspect MSWA model directories.

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

  mswa-model info DIR [options]     parameters, the windows of every layer and head, and the KV
                                    memory per sequence beside a full-attention model
      --block-size N      KV block size in tokens                      (default 16)
      --chunk N           largest prefill chunk in tokens              (default 512)
      --kv-dtype D        f32 | f16 | bf16 cache                       (default f16)

  mswa-model logits DIR --out FILE  dense reference logits as safetensors ("logits" [T, vocab],
                                    metadata "tokens", "start_pos")
      --text STR | --tokens 1,2,3   input (text is tokenized with the model's tokenizer)
      --bos               prepend the BOS token
      --start-pos N       absolute position of the first token         (default 0)
)";

struct Args {
  std::string command, dir;
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
};

// Parses `--name value`, `--name=value` and bare switches. `known` lists value options,
// `known_switches` flag options; anything else is a usage error.
absl::StatusOr<Args> ParseArgs(int argc, char** argv, const std::set<std::string>& known,
                               const std::set<std::string>& known_switches) {
  Args args;
  args.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      if (!args.dir.empty()) return absl::InvalidArgumentError("unexpected argument: " + a);
      args.dir = a;
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (known_switches.count(name)) {
      args.switches.insert(name);
      continue;
    }
    if (!known.count(name)) return absl::InvalidArgumentError("unknown option --" + name);
    if (!has_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError("--" + name + " needs a value");
      value = argv[++i];
    }
    args.values[name] = value;
  }
  if (args.dir.empty()) return absl::InvalidArgumentError("missing model directory");
  return args;
}

absl::StatusOr<int64_t> IntOpt(const Args& a, const std::string& name, int64_t fallback) {
  auto it = a.values.find(name);
  if (it == a.values.end()) return fallback;
  int64_t v;
  if (!absl::SimpleAtoi(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be an integer, got \"",
                                                   it->second, "\""));
  }
  return v;
}

absl::StatusOr<double> DoubleOpt(const Args& a, const std::string& name, double fallback) {
  auto it = a.values.find(name);
  if (it == a.values.end()) return fallback;
  double v;
  if (!absl::SimpleAtod(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be a number, got \"",
                                                   it->second, "\""));
  }
  return v;
}

absl::StatusOr<std::vector<double>> ListOpt(const Args& a, const std::string& name,
                                            std::vector<double> fallback) {
  auto it = a.values.find(name);
  if (it == a.values.end()) return fallback;
  std::vector<double> out;
  for (absl::string_view part : absl::StrSplit(it->second, ',')) {
    double v;
    if (!absl::SimpleAtod(part, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name,
                                                     " must be comma-separated numbers, got \"",
                                                     it->second, "\""));
    }
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<DType> DTypeOpt(const Args& a, const std::string& name, DType fallback) {
  auto it = a.values.find(name);
  if (it == a.values.end()) return fallback;
  if (it->second == "f32") return DType::kF32;
  if (it->second == "f16") return DType::kF16;
  if (it->second == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, " must be f32, f16 or bf16, got \"", it->second, "\""));
}

std::string Bytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(b, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

absl::Status Init(const Args& a) {
  ModelConfig c;
  ASSIGN_OR_RETURN(c.hidden_size, IntOpt(a, "hidden", 256));
  ASSIGN_OR_RETURN(c.num_hidden_layers, IntOpt(a, "layers", 6));
  ASSIGN_OR_RETURN(c.num_attention_heads, IntOpt(a, "heads", 8));
  ASSIGN_OR_RETURN(c.num_key_value_heads, IntOpt(a, "kv-heads", c.num_attention_heads));
  if (c.num_attention_heads <= 0) return absl::InvalidArgumentError("--heads must be > 0");
  ASSIGN_OR_RETURN(c.head_dim, IntOpt(a, "head-dim", c.hidden_size / c.num_attention_heads));
  // SwiGLU convention: ~8/3 of hidden, rounded up to a multiple of 64.
  ASSIGN_OR_RETURN(c.intermediate_size,
                   IntOpt(a, "intermediate", (8 * c.hidden_size / 3 + 63) / 64 * 64));
  ASSIGN_OR_RETURN(c.vocab_size, IntOpt(a, "vocab", 258));
  ASSIGN_OR_RETURN(c.rope_theta, DoubleOpt(a, "rope-theta", 10000.0));
  c.tie_word_embeddings = a.switches.count("untied") == 0;
  c.tokenizer.type = TokenizerSpec::Type::kBytes;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  if (c.vocab_size < 258) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vocab must be >= 258 for the bytes tokenizer (256 bytes + BOS + EOS), got ",
        c.vocab_size));
  }
  WindowScheduleOptions s;
  s.preset = a.values.count("preset") ? a.values.at("preset") : "mswa";
  ASSIGN_OR_RETURN(s.base_window, IntOpt(a, "window", 256));
  ASSIGN_OR_RETURN(s.head_scales, ListOpt(a, "head-scales", s.head_scales));
  ASSIGN_OR_RETURN(s.layer_scales, ListOpt(a, "layer-scales", s.layer_scales));
  s.num_layers = c.num_hidden_layers;
  s.num_heads = c.num_attention_heads;
  s.num_kv_heads = c.num_key_value_heads;
  ASSIGN_OR_RETURN(c.attention_windows, MakeWindowSchedule(s));
  RETURN_IF_ERROR(c.Validate());
  ASSIGN_OR_RETURN(int64_t seed, IntOpt(a, "seed", 0));
  ASSIGN_OR_RETURN(DType dtype, DTypeOpt(a, "dtype", DType::kF32));
  ModelWeights w = RandomModelWeights(c, static_cast<uint64_t>(seed));
  RETURN_IF_ERROR(WriteModelDirectory(a.dir, c, w, dtype));
  std::cout << "wrote " << a.dir << " (" << s.preset << ", " << w.num_parameters()
            << " parameters)\n";
  return absl::OkStatus();
}

absl::Status Info(const Args& a) {
  ASSIGN_OR_RETURN(ModelConfig c, LoadModelConfig(a.dir));
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(a.dir + "/model.safetensors"));
  int64_t params = 0, file_bytes = 0;
  for (const TensorView& t : file->tensors()) {
    params += t.numel();
    file_bytes += static_cast<int64_t>(t.nbytes);
  }
  KvMemoryOptions kv;
  ASSIGN_OR_RETURN(kv.block_size, IntOpt(a, "block-size", 16));
  ASSIGN_OR_RETURN(kv.chunk, IntOpt(a, "chunk", 512));
  ASSIGN_OR_RETURN(DType kv_dtype, DTypeOpt(a, "kv-dtype", DType::kF16));
  kv.bytes_per_element = static_cast<int64_t>(DTypeSize(kv_dtype));
  if (kv.block_size <= 0 || kv.chunk <= 0) {
    return absl::InvalidArgumentError("--block-size and --chunk must be > 0");
  }

  std::cout << "model " << a.dir << "\n"
            << absl::StrFormat(
                   "  type %s, vocab %d, hidden %d, layers %d, heads %d (kv %d, head_dim %d), "
                   "intermediate %d, %s embeddings\n",
                   c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers,
                   c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                   c.intermediate_size, c.tie_word_embeddings ? "tied" : "untied")
            << "  parameters " << params << " (" << Bytes(file_bytes) << " of " << c.torch_dtype
            << " weights)\n"
            << "  tokenizer "
            << (c.tokenizer.type == TokenizerSpec::Type::kBytes ? "bytes"
                                                                : "sentencepiece " +
                                                                      c.tokenizer.model_file)
            << ", bos " << c.bos_token_id << ", eos " << absl::StrJoin(c.eos_token_ids, ",") << "\n\n";

  std::cout << "attention windows (keys a query sees, itself included; 0 = unbounded)\n";
  std::cout << "  layer |";
  for (int64_t h = 0; h < c.num_attention_heads; ++h) std::cout << absl::StrFormat(" %6s", absl::StrCat("h", h));
  std::cout << "\n";
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::cout << absl::StrFormat("  %5d |", l);
    for (int64_t h = 0; h < c.num_attention_heads; ++h) {
      std::cout << absl::StrFormat(" %6d", c.window(l, h));
    }
    std::cout << "\n";
  }

  const KvLayout layout = BuildKvLayout(c);
  std::cout << absl::StrFormat(
      "\nKV cache window groups (block %d tokens, prefill chunk <= %d, %s cache)\n",
      kv.block_size, kv.chunk, DTypeName(kv_dtype));
  for (const WindowGroup& g : layout.groups) {
    const int64_t per_block = 2 * g.num_heads * kv.block_size * c.head_dim * kv.bytes_per_element;
    if (g.window == 0) {
      std::cout << absl::StrFormat("  window unbounded: %3d KV heads, grows with length (%s per block)\n",
                                   g.num_heads, Bytes(per_block));
    } else {
      const int64_t r = MaxBlocksPerSequence(g.window, kv.chunk, kv.block_size);
      std::cout << absl::StrFormat("  window %9d: %3d KV heads, at most %d blocks = %s per sequence\n",
                                   g.window, g.num_heads, r, Bytes(r * per_block));
    }
  }
  std::cout << "\nKV bytes per sequence\n"
            << absl::StrFormat("  %8s  %14s  %16s  %8s\n", "tokens", "this model",
                               "full attention", "ratio");
  for (int64_t len : {4096, 32768, 131072}) {
    const int64_t ours = KvBytesPerSequence(layout, c.head_dim, kv, len);
    const int64_t full = FullAttentionKvBytes(c, kv.bytes_per_element, len);
    std::cout << absl::StrFormat("  %8d  %14s  %16s  %7.1fx\n", len, Bytes(ours), Bytes(full),
                                 static_cast<double>(full) / static_cast<double>(ours));
  }
  if (c.all_windows_finite()) {
    const int64_t bound = KvBytesPerSequence(layout, c.head_dim, kv, INT64_MAX / 4);
    std::cout << "  bounded: no sequence of any length needs more than " << Bytes(bound) << "\n";
  } else {
    std::cout << "  unbounded: some heads attend to the whole sequence\n";
  }
  return absl::OkStatus();
}

absl::Status Logits(const Args& a) {
  ASSIGN_OR_RETURN(ModelConfig c, LoadModelConfig(a.dir));
  ASSIGN_OR_RETURN(ModelWeights w, LoadModelWeights(a.dir, c));
  std::vector<int32_t> tokens;
  if (a.switches.count("bos")) {
    if (c.bos_token_id < 0) return absl::InvalidArgumentError("the model has no BOS token");
    tokens.push_back(static_cast<int32_t>(c.bos_token_id));
  }
  if (a.values.count("text")) {
    ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(c.tokenizer, a.dir));
    for (int32_t t : tokenizer->Encode(a.values.at("text"))) tokens.push_back(t);
  } else if (a.values.count("tokens")) {
    for (absl::string_view part : absl::StrSplit(a.values.at("tokens"), ',')) {
      int32_t t;
      if (!absl::SimpleAtoi(part, &t) || t < 0 || t >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--tokens: \"", part, "\" is not a token id in [0, ", c.vocab_size, ")"));
      }
      tokens.push_back(t);
    }
  } else {
    return absl::InvalidArgumentError("logits needs --text or --tokens");
  }
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens to run");
  if (!a.values.count("out")) return absl::InvalidArgumentError("logits needs --out FILE");
  ASSIGN_OR_RETURN(int64_t start_pos, IntOpt(a, "start-pos", 0));
  if (start_pos < 0) return absl::InvalidArgumentError("--start-pos must be >= 0");

  at::Tensor logits = ReferenceForward(w, c, tokens, start_pos).to(at::kFloat).contiguous();
  TensorToWrite t{"logits", DType::kF32, logits.sizes().vec(), logits.data_ptr(),
                  static_cast<size_t>(logits.numel()) * 4};
  std::string token_list;
  for (size_t i = 0; i < tokens.size(); ++i) absl::StrAppend(&token_list, i ? "," : "", tokens[i]);
  return WriteSafetensors(a.values.at("out"), {t},
                          {{"tokens", token_list}, {"start_pos", absl::StrCat(start_pos)}});
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  std::set<std::string> values, switches;
  absl::Status (*run)(const Args&) = nullptr;
  if (cmd == "init") {
    values = {"preset", "window", "head-scales", "layer-scales", "hidden", "layers", "heads",
              "kv-heads", "head-dim", "intermediate", "vocab", "rope-theta", "seed", "dtype"};
    switches = {"untied"};
    run = Init;
  } else if (cmd == "info") {
    values = {"block-size", "chunk", "kv-dtype"};
    run = Info;
  } else if (cmd == "logits") {
    values = {"text", "tokens", "start-pos", "out"};
    switches = {"bos"};
    run = Logits;
  } else {
    std::cerr << "mswa-model: unknown command \"" << cmd << "\" (init, info, logits; --help)\n";
    return 2;
  }
  auto args = ParseArgs(argc, argv, values, switches);
  if (!args.ok()) {
    std::cerr << "mswa-model " << cmd << ": " << args.status().message() << " (see --help)\n";
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
}  // namespace mswa

int main(int argc, char** argv) { return mswa::Main(argc, argv); }
