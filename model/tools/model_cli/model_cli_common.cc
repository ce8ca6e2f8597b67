// Shared pieces of the mswa-model commands (model_cli.h).
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "model/status_macros.h"
#include "model/tools/model_cli/model_cli.h"

namespace mswa::model_cli {

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

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --preset, --window, --head-scales, --layer-scales for a model of `c`'s shape.
absl::StatusOr<WindowScheduleOptions> ScheduleOptions(const Args& a, const ModelConfig& c,
                                                      int64_t default_window) {
  WindowScheduleOptions s;
  s.preset = a.values.count("preset") ? a.values.at("preset") : "mswa";
  ASSIGN_OR_RETURN(s.base_window, IntOpt(a, "window", default_window));
  ASSIGN_OR_RETURN(s.head_scales, ListOpt(a, "head-scales", s.head_scales));
  ASSIGN_OR_RETURN(s.layer_scales, ListOpt(a, "layer-scales", s.layer_scales));
  s.num_layers = c.num_hidden_layers;
  s.num_heads = c.num_attention_heads;
  s.num_kv_heads = c.num_key_value_heads;
  return s;
}

const Windows& OwnWindows(const ModelConfig& c) {
  return c.native_windows.empty() ? c.attention_windows : c.native_windows;
}

bool UniformRows(const Windows& w) {
  for (const auto& row : w) {
    for (int64_t x : row) {
      if (x != row[0]) return false;
    }
  }
  return true;
}

// "window 512 on 15 layers, unbounded on 3"; "window 4096 on all 32 layers";
// "per-head windows 8 to 256 on 6 layers" when the heads of a layer differ.
std::string DescribeWindows(const Windows& w) {
  const int64_t layers = static_cast<int64_t>(w.size());
  if (!UniformRows(w)) {
    int64_t lo = INT64_MAX, hi = 0;
    bool unbounded = false;
    for (const auto& row : w) {
      for (int64_t x : row) {
        if (x == 0) {
          unbounded = true;
        } else {
          lo = std::min(lo, x);
          hi = std::max(hi, x);
        }
      }
    }
    std::string s =
        hi == 0 ? "per-head windows" : absl::StrCat("per-head windows ", lo, " to ", hi);
    if (unbounded) absl::StrAppend(&s, ", some unbounded,");
    return absl::StrCat(s, " on ", layers, " layers");
  }
  std::map<int64_t, int64_t> count;  // window -> layers
  for (const auto& row : w) ++count[row.empty() ? 0 : row[0]];
  std::vector<std::string> parts;
  auto part = [&](int64_t window, int64_t n) {
    std::string s = window == 0 ? "unbounded" : absl::StrCat("window ", window);
    if (n == layers) return absl::StrCat(s, " on all ", n, " layers");
    return absl::StrCat(s, " on ", n, parts.empty() ? " layers" : "");
  };
  for (const auto& [window, n] : count) {
    if (window != 0) parts.push_back(part(window, n));
  }
  if (count.count(0) != 0) parts.push_back(part(0, count.at(0)));
  return absl::StrJoin(parts, ", ");
}

}  // namespace mswa::model_cli
