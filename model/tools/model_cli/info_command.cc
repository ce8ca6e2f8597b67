// mswa-model info: any loadable model directory described: family and architecture switches,
// parameters and a check of the weight files against config.json, tokenizer, EOS ids, the windows
// of every layer and head, KV window groups, and KV memory per sequence beside full attention.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/format/weights.h"
#include "model/runtime/kv_layout.h"
#include "model/status_macros.h"
#include "model/tools/model_cli/model_cli.h"
#include "nlohmann/json.hpp"

namespace mswa::model_cli {
namespace {

using json = nlohmann::json;

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

// 268098176 -> "268.1M".
std::string Count(int64_t n) {
  if (n >= 1000000000) return absl::StrFormat("%.2fB", static_cast<double>(n) / 1e9);
  if (n >= 1000000) return absl::StrFormat("%.1fM", static_cast<double>(n) / 1e6);
  if (n >= 1000) return absl::StrFormat("%.1fK", static_cast<double>(n) / 1e3);
  return absl::StrCat(n);
}

// Shortest readable form: 10000 -> "10000", 1000000 -> "1e6", 0.5 -> "0.5", 25.25 -> "25.25".
std::string Num(double v) {
  std::string s = absl::StrFormat("%g", v);
  const size_t e = s.find("e+");
  if (e != std::string::npos) {
    size_t digits = e + 2;
    while (digits + 1 < s.size() && s[digits] == '0') ++digits;
    s = s.substr(0, e + 1) + s.substr(digits);
  }
  return s;
}

// Sorted layer indices as runs: {0,1,2,3,4,6,7} -> "0-4,6-7".
std::string LayerRuns(const std::vector<int64_t>& layers) {
  std::vector<std::string> runs;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    runs.push_back(i == j ? absl::StrCat(layers[i]) : absl::StrCat(layers[i], "-", layers[j]));
    i = j + 1;
  }
  return absl::StrJoin(runs, ",");
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The config as the server loads it (LoadModelConfig). A directory without tokenizer files
// cannot be served as it is, but its shapes and windows can still be inspected: it is parsed
// on its own (with generation_config.json's EOS ids, as LoadModelConfig reads them) and
// `has_tokenizer` is false.
struct InspectedConfig {
  ModelConfig config;
  bool has_tokenizer = true;
};

absl::StatusOr<InspectedConfig> LoadForInspection(const std::string& dir) {
  InspectedConfig out;
  const absl::StatusOr<std::string> text = ReadText(dir + "/config.json");
  json root = text.ok() ? json::parse(*text, nullptr, false) : json();
  const bool tokenizer_files =
      FileExists(dir + "/tokenizer.json") || FileExists(dir + "/tokenizer.model");
  if (tokenizer_files || !root.is_object() || root.contains("tokenizer")) {
    ASSIGN_OR_RETURN(out.config, LoadModelConfig(dir));
    return out;
  }
  out.has_tokenizer = false;
  root["tokenizer"] = {{"type", "bytes"}};
  ASSIGN_OR_RETURN(out.config, ParseModelConfig(root.dump(), dir + "/config.json"));
  const std::string gen_path = dir + "/generation_config.json";
  if (!FileExists(gen_path)) return out;
  ASSIGN_OR_RETURN(std::string gen_text, ReadText(gen_path));
  const json gen = json::parse(gen_text, nullptr, false);
  if (gen.is_discarded() || !gen.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(gen_path, ": not a JSON object"));
  }
  auto eos = gen.find("eos_token_id");
  if (eos == gen.end() || eos->is_null()) return out;
  const json list = eos->is_array() ? *eos : json::array({*eos});
  std::vector<int64_t> ids;
  for (const json& id : list) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= out.config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          gen_path, ": \"eos_token_id\" must be token ids in [0, ", out.config.vocab_size, ")"));
    }
    ids.push_back(id.get<int64_t>());
  }
  out.config.eos_token_ids = ids;
  return out;
}

// The weight files' headers (no tensor data is read): model.safetensors, or the shards
// model.safetensors.index.json names.
struct WeightFiles {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const TensorView*> tensors;
};

absl::StatusOr<WeightFiles> OpenWeightFiles(const std::string& dir) {
  ASSIGN_OR_RETURN(const std::vector<std::string> paths, CheckpointFiles(dir));
  WeightFiles w;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    for (const TensorView& t : file->tensors()) {
      if (!w.tensors.emplace(t.name, &t).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            file->path(), ": tensor \"", t.name, "\" is also in another shard"));
      }
    }
    w.files.push_back(std::move(file));
  }
  return w;
}

std::string TorchDTypeName(DType d) {
  switch (d) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "?";
}

// The files against the config, by header: what the decoder reads, what it ignores (as
// LoadModelWeights does: a vision tower, a tied model's lm_head copy, rotary buffers), and
// every tensor that is missing, misshapen or unexpected.
struct WeightSummary {
  int64_t params = 0, bytes = 0;
  int64_t ignored_params = 0;
  std::set<std::string> dtypes;
  std::vector<std::string> problems;
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

WeightSummary SummarizeWeights(const WeightFiles& w, const ModelConfig& c) {
  const ArchSpec& a = c.arch;
  std::string prefix = a.weight_prefix, lm_head = a.lm_head_name;
  if (!a.alt_weight_prefix.empty() && w.tensors.count(prefix + "embed_tokens.weight") == 0 &&
      w.tensors.count(a.alt_weight_prefix + "embed_tokens.weight") != 0) {
    prefix = a.alt_weight_prefix;
    lm_head = a.alt_lm_head_name;
  }
  WeightSummary s;
  std::set<std::string> used;
  for (auto [name, shape] : ExpectedTensors(c)) {
    if (name == a.lm_head_name) {
      name = lm_head;
    } else if (absl::StartsWith(name, a.weight_prefix)) {
      name = prefix + name.substr(a.weight_prefix.size());
    }
    auto it = w.tensors.find(name);
    if (it == w.tensors.end()) {
      s.problems.push_back(absl::StrCat("missing tensor \"", name, "\" ", ShapeText(shape)));
      continue;
    }
    if (it->second->shape != shape) {
      s.problems.push_back(absl::StrCat("tensor \"", name, "\" has shape ",
                                        ShapeText(it->second->shape), ", config.json implies ",
                                        ShapeText(shape)));
    }
    used.insert(name);
  }
  for (const auto& [name, t] : w.tensors) {
    if (used.count(name) != 0) {
      s.params += t->numel();
      s.bytes += static_cast<int64_t>(t->nbytes);
      s.dtypes.insert(TorchDTypeName(t->dtype));
      continue;
    }
    bool ignored = (c.tie_word_embeddings && (name == lm_head || name == "lm_head.weight")) ||
                   absl::EndsWith(name, "rotary_emb.inv_freq");
    for (const std::string& p : a.skipped_prefixes) ignored = ignored || absl::StartsWith(name, p);
    if (ignored) {
      s.ignored_params += t->numel();
    } else {
      s.problems.push_back(absl::StrCat("unexpected tensor \"", name, "\""));
    }
  }
  return s;
}

std::string RopeText(const RopeSpec& r, int64_t head_dim, bool with_rotary_dims) {
  std::string s = absl::StrCat("theta ", Num(r.theta));
  switch (r.scaling) {
    case RopeSpec::Scaling::kNone:
      break;
    case RopeSpec::Scaling::kLinear:
      absl::StrAppend(&s, " linear x", Num(r.factor));
      break;
    case RopeSpec::Scaling::kLlama3:
      absl::StrAppend(&s, " llama3 x", Num(r.factor), " (low ", Num(r.low_freq_factor), ", high ",
                      Num(r.high_freq_factor), ", original ", Num(r.original_max_position), ")");
      break;
  }
  if (with_rotary_dims && r.rotary_dim != head_dim) {
    absl::StrAppend(&s, " on ", r.rotary_dim, " of ", head_dim, " dims");
  }
  return s;
}

// The switches of the forward pass that differ from a plain Llama layer, in one line, e.g.
// "(1+w) norms, sandwich norms, q/k norm, embeddings x25.25, GELU-tanh, RoPE per layer type:
// local theta 10000 / global theta 1e6".
std::string ArchSummary(const ModelConfig& c) {
  const ArchSpec& a = c.arch;
  std::vector<std::string> on;
  if (a.norm_plus_one) on.push_back("(1+w) norms");
  if (a.sandwich_norms) on.push_back("sandwich norms");
  if (a.qk_norm) on.push_back("q/k norm");
  if (a.embed_scale != 1.0) on.push_back(absl::StrCat("embeddings x", Num(a.embed_scale)));
  switch (a.activation) {
    case Activation::kSilu:
      break;
    case Activation::kGeluTanh:
      on.push_back("GELU-tanh");
      break;
  }
  const double default_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  if (a.attn_scale != 0 && std::abs(a.attn_scale - default_scale) > 1e-12 * default_scale) {
    const double n = 1.0 / (a.attn_scale * a.attn_scale);
    on.push_back(std::abs(n - std::round(n)) < 1e-6
                     ? absl::StrCat("attn scale 1/sqrt(", Num(std::round(n)), ")")
                     : absl::StrCat("attn scale ", Num(a.attn_scale)));
  }
  if (a.attn_softcap != 0 && a.final_softcap != 0) {
    on.push_back(
        absl::StrCat("softcap attn ", Num(a.attn_softcap), " / final ", Num(a.final_softcap)));
  } else if (a.attn_softcap != 0) {
    on.push_back(absl::StrCat("softcap attn ", Num(a.attn_softcap)));
  } else if (a.final_softcap != 0) {
    on.push_back(absl::StrCat("softcap final ", Num(a.final_softcap)));
  }
  std::vector<std::string> biases;
  if (a.qkv_bias) biases.push_back("qkv");
  if (a.o_bias) biases.push_back("o");
  if (a.mlp_bias) biases.push_back("mlp");
  if (!biases.empty()) on.push_back("biases " + absl::StrJoin(biases, "/"));
  if (a.fused_qkv) on.push_back("fused qkv_proj");
  if (a.fused_gate_up) on.push_back("fused gate_up_proj");

  // RoPE: the distinct specs, each with the layers that use it.
  std::vector<std::pair<RopeSpec, std::vector<int64_t>>> ropes;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const RopeSpec r = c.rope(l);
    auto it = std::find_if(ropes.begin(), ropes.end(), [&](const auto& p) { return p.first == r; });
    if (it == ropes.end()) {
      ropes.push_back({r, {l}});
    } else {
      it->second.push_back(l);
    }
  }
  bool same_rotary = true;
  for (const auto& p : ropes) {
    same_rotary = same_rotary && p.first.rotary_dim == ropes[0].first.rotary_dim;
  }
  if (same_rotary && !ropes.empty() && ropes[0].first.rotary_dim != c.head_dim) {
    on.push_back(absl::StrCat("partial rotary ",
                              Num(static_cast<double>(ropes[0].first.rotary_dim) /
                                  static_cast<double>(c.head_dim))));
  }
  if (ropes.size() == 1) {
    on.push_back("RoPE " + RopeText(ropes[0].first, c.head_dim, !same_rotary));
  } else if (ropes.size() > 1) {
    // Named by the layers' own windows: local (sliding) or global (unbounded) layers.
    const Windows& own = OwnWindows(c);
    std::vector<std::string> kinds;
    for (const auto& [rope, layers] : ropes) {
      bool all_local = true, all_global = true;
      for (int64_t l : layers) {
        for (int64_t w : own[l]) {
          all_local = all_local && w > 0;
          all_global = all_global && w == 0;
        }
      }
      const std::string who = all_local    ? "local"
                              : all_global ? "global"
                                           : "layers " + LayerRuns(layers);
      kinds.push_back(who + " " + RopeText(rope, c.head_dim, !same_rotary));
    }
    on.push_back("RoPE per layer type: " + absl::StrJoin(kinds, " / "));
  }
  if (on.size() == 1) return "plain Llama layer (RMSNorm, SwiGLU), " + on[0];
  return absl::StrJoin(on, ", ");
}

// The columns of the windows table: one per layer when every head of each layer shares a
// window; else one per query head while that stays narrow, else one per KV head (the heads of
// a KV head share a window by validation).
enum class WindowColumns { kLayer, kQueryHead, kKvHead };

WindowColumns ChooseColumns(const ModelConfig& c, const Windows& w) {
  if (UniformRows(w)) return WindowColumns::kLayer;
  return c.num_attention_heads <= 16 ? WindowColumns::kQueryHead : WindowColumns::kKvHead;
}

std::vector<std::string> ColumnHeaders(const ModelConfig& c, WindowColumns cols,
                                       const std::string& single) {
  std::vector<std::string> out;
  switch (cols) {
    case WindowColumns::kLayer:
      out.push_back(single);
      break;
    case WindowColumns::kQueryHead:
      for (int64_t h = 0; h < c.num_attention_heads; ++h) out.push_back(absl::StrCat("h", h));
      break;
    case WindowColumns::kKvHead:
      for (int64_t k = 0; k < c.num_key_value_heads; ++k) out.push_back(absl::StrCat("kv", k));
      break;
  }
  return out;
}

std::vector<int64_t> RowCells(const ModelConfig& c, WindowColumns cols,
                              const std::vector<int64_t>& row) {
  switch (cols) {
    case WindowColumns::kLayer:
      return {row[0]};
    case WindowColumns::kQueryHead:
      return row;
    case WindowColumns::kKvHead: {
      std::vector<int64_t> out;
      for (int64_t k = 0; k < c.num_key_value_heads; ++k) out.push_back(row[k * c.gqa_group()]);
      return out;
    }
  }
  return row;
}

// Per-layer windows; with an override, the model's own beside them. Up to 24 layers every
// layer has its row; longer tables merge runs of identical consecutive rows ("6-10").
void PrintWindowTable(const ModelConfig& c) {
  constexpr int64_t kMaxRows = 24;
  const bool overridden = c.windows_overridden();
  const WindowColumns cols = ChooseColumns(c, c.attention_windows);
  const WindowColumns own_cols = ChooseColumns(c, c.native_windows);
  std::cout << "attention windows (keys a query sees, itself included; 0 = unbounded";
  if (cols == WindowColumns::kKvHead) {
    std::cout << "; one column per KV head, shared by its " << c.gqa_group() << " query heads";
  }
  std::cout << ")\n  layer |";
  for (const std::string& h : ColumnHeaders(c, cols, "window")) {
    std::cout << absl::StrFormat(" %6s", h);
  }
  if (overridden) {
    std::cout << " |";
    for (const std::string& h : ColumnHeaders(c, own_cols, "native")) {
      std::cout << absl::StrFormat(" %6s", own_cols == WindowColumns::kLayer ? h : h + "'");
    }
  }
  std::cout << "\n";
  auto same_row = [&](int64_t l, int64_t m) {
    return c.attention_windows[l] == c.attention_windows[m] &&
           (!overridden || c.native_windows[l] == c.native_windows[m]);
  };
  for (int64_t l = 0; l < c.num_hidden_layers;) {
    int64_t last = l;
    if (c.num_hidden_layers > kMaxRows) {
      while (last + 1 < c.num_hidden_layers && same_row(last + 1, l)) ++last;
    }
    const std::string label = last == l ? absl::StrCat(l) : absl::StrCat(l, "-", last);
    std::cout << absl::StrFormat("  %5s |", label);
    for (int64_t w : RowCells(c, cols, c.attention_windows[l])) {
      std::cout << absl::StrFormat(" %6d", w);
    }
    if (overridden) {
      std::cout << " |";
      for (int64_t w : RowCells(c, own_cols, c.native_windows[l])) {
        std::cout << absl::StrFormat(" %6d", w);
      }
    }
    std::cout << "\n";
    l = last + 1;
  }
}

}  // namespace

absl::Status Info(const Args& a) {
  ASSIGN_OR_RETURN(InspectedConfig inspected, LoadForInspection(a.dir));
  const ModelConfig& c = inspected.config;
  ASSIGN_OR_RETURN(WeightFiles files, OpenWeightFiles(a.dir));
  const WeightSummary weights = SummarizeWeights(files, c);
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
                   "  family %s, vocab %d, hidden %d, layers %d, heads %d (kv %d, head_dim %d), "
                   "intermediate %d, %s embeddings\n",
                   c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers,
                   c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                   c.intermediate_size, c.tie_word_embeddings ? "tied" : "untied")
            << "  arch: " << ArchSummary(c) << "\n"
            << "  parameters " << weights.params << " (" << Count(weights.params) << "; "
            << Bytes(weights.bytes) << " of " << absl::StrJoin(weights.dtypes, "+")
            << " weights in " << files.files.size()
            << (files.files.size() == 1 ? " file)\n" : " shards)\n");
  if (weights.ignored_params > 0) {
    std::cout << "  also " << weights.ignored_params
              << " parameters in tensors the decoder does not read (vision tower, projector, "
                 "a copy of the tied embeddings)\n";
  }
  for (size_t i = 0; i < weights.problems.size() && i < 5; ++i) {
    std::cout << "  WEIGHTS DO NOT MATCH config.json: " << weights.problems[i] << "\n";
  }
  if (weights.problems.size() > 5) {
    std::cout << "  ... and " << weights.problems.size() - 5 << " more\n";
  }
  std::string tokenizer;
  if (!inspected.has_tokenizer) {
    tokenizer = "none (no tokenizer.json or tokenizer.model: the server needs the model's "
                "tokenizer files to load this directory)";
  } else {
    switch (c.tokenizer.type) {
      case TokenizerSpec::Type::kBytes:
        tokenizer = "bytes";
        break;
      case TokenizerSpec::Type::kSentencePiece:
        tokenizer = "sentencepiece " + c.tokenizer.model_file;
        break;
      case TokenizerSpec::Type::kHfJson:
        tokenizer = c.tokenizer.model_file;
        break;
    }
  }
  std::cout << "  tokenizer " << tokenizer << "\n"
            << "  bos " << (c.bos_token_id < 0 ? "none" : absl::StrCat(c.bos_token_id)) << ", eos "
            << (c.eos_token_ids.empty() ? "none" : absl::StrJoin(c.eos_token_ids, ","))
            << "\n";
  if (c.windows_overridden()) {
    std::cout << "  windows: an MSWA schedule replaces the model's own (trained with: "
              << DescribeWindows(c.native_windows) << ")\n"
              << "           served: " << DescribeWindows(c.attention_windows) << "\n";
  } else if (c.native_windows.empty()) {
    std::cout << "  windows: explicit attention_windows (" << DescribeWindows(c.attention_windows)
              << ")\n";
  } else {
    std::cout << "  windows: the model's own (" << DescribeWindows(c.attention_windows) << ")\n";
  }
  std::cout << "\n";
  PrintWindowTable(c);

  const KvLayout layout = BuildKvLayout(c);
  std::cout << absl::StrFormat(
      "\nKV cache window groups (block %d tokens, prefill chunk <= %d, %s cache)\n",
      kv.block_size, kv.chunk, DTypeName(kv_dtype));
  for (const WindowGroup& g : layout.groups) {
    std::set<int64_t> layers;
    for (int64_t s : g.slices) layers.insert(layout.slices[s].layer);
    const std::string heads = absl::StrFormat("%3d KV heads in %d layer%s", g.num_heads,
                                              layers.size(), layers.size() == 1 ? "" : "s");
    const int64_t per_block = 2 * g.num_heads * kv.block_size * c.head_dim * kv.bytes_per_element;
    if (g.window == 0) {
      std::cout << absl::StrFormat("  window unbounded: %s, grows with length (%s per block)\n",
                                   heads, Bytes(per_block));
    } else {
      const int64_t r = MaxBlocksPerSequence(g.window, kv.chunk, kv.block_size);
      std::cout << absl::StrFormat("  window %9d: %s, at most %d blocks = %s per sequence\n",
                                   g.window, heads, r, Bytes(r * per_block));
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
  if (!weights.problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        a.dir, ": the weight files do not match config.json (", weights.problems.size(),
        " problem", weights.problems.size() == 1 ? "" : "s", ", listed above)"));
  }
  return absl::OkStatus();
}

}  // namespace mswa::model_cli
