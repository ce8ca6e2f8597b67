// mswa-model set-windows: rewrites a model directory's config.json with an "attention_windows"
// entry (or without one), validating the result before anything is written.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "model/status_macros.h"
#include "model/tools/model_cli/model_cli.h"
#include "nlohmann/json.hpp"

namespace mswa::model_cli {
namespace {

// "512;512,512,256,256;0": one entry per layer, each one window per query head or one window
// for every head of the layer.
absl::StatusOr<Windows> ParseWindowList(const std::string& spec, const ModelConfig& c) {
  Windows out;
  for (absl::string_view layer : absl::StrSplit(spec, ';')) {
    std::vector<int64_t> row;
    for (absl::string_view cell : absl::StrSplit(layer, ',')) {
      int64_t w;
      if (!absl::SimpleAtoi(cell, &w)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--windows: layer ", out.size(), ": \"", absl::StripAsciiWhitespace(cell),
            "\" is not a window (an integer, 0 = unbounded)"));
      }
      row.push_back(w);
    }
    if (row.size() == 1) row.assign(c.num_attention_heads, row[0]);
    out.push_back(std::move(row));
  }
  if (static_cast<int64_t>(out.size()) != c.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--windows lists ", out.size(), " layer", out.size() == 1 ? "" : "s", "; the model has ",
        c.num_hidden_layers, " (one entry per layer, separated by ';')"));
  }
  return out;
}

// Pretty-printed with a 2-space indent, as Hugging Face writes config.json, except that each
// layer's windows stay on one line; keys keep their order (a new "attention_windows" goes last).
std::string SerializeConfig(nlohmann::ordered_json root, const Windows* windows,
                            bool final_newline) {
  constexpr char kPlaceholder[] = "@@attention_windows@@";
  if (windows != nullptr) root["attention_windows"] = kPlaceholder;
  std::string text = root.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (windows != nullptr) {
    std::string rows = "[\n";
    for (size_t l = 0; l < windows->size(); ++l) {
      absl::StrAppend(&rows, "    [", absl::StrJoin((*windows)[l], ", "), "]",
                      l + 1 < windows->size() ? ",\n" : "\n");
    }
    rows += "  ]";
    const std::string quoted = absl::StrCat("\"", kPlaceholder, "\"");
    text.replace(text.find(quoted), quoted.size(), rows);
  }
  return final_newline ? text + "\n" : text;
}

}  // namespace

absl::Status SetWindows(const Args& a) {
  const std::string path = a.dir + "/config.json";
  ASSIGN_OR_RETURN(std::string text, ReadText(path));
  nlohmann::ordered_json root = nlohmann::ordered_json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  // The model's shape and own windows come from the config without an earlier override; an
  // mswa config has no windows besides its explicit ones, so it is read as it is.
  nlohmann::ordered_json base = root;
  base.erase("attention_windows");
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(base.dump(), path);
  if (!parsed.ok()) parsed = ParseModelConfig(text, path);
  if (!parsed.ok()) return parsed.status();
  const ModelConfig& c = *parsed;

  std::string what;
  Windows windows;
  if (a.switches.count("reset")) {
    if (!root.contains("attention_windows")) {
      std::cout << path << " has no \"attention_windows\"; the model's own windows apply ("
                << DescribeWindows(OwnWindows(c)) << ")\n";
      return absl::OkStatus();
    }
    root.erase("attention_windows");
  } else if (a.values.count("windows")) {
    ASSIGN_OR_RETURN(windows, ParseWindowList(a.values.at("windows"), c));
    what = "explicit windows";
  } else {
    int64_t own_max = 0;
    for (const auto& row : OwnWindows(c)) {
      for (int64_t w : row) own_max = std::max(own_max, w);
    }
    ASSIGN_OR_RETURN(WindowScheduleOptions s, ScheduleOptions(a, c, own_max));
    if (s.preset != "full" && a.values.count("window") == 0 && own_max == 0) {
      return absl::InvalidArgumentError(
          "--window W is required: the model has no sliding window of its own to start from");
    }
    ASSIGN_OR_RETURN(windows, MakeWindowSchedule(s));
    what = s.preset == "full" ? "preset full"
                              : absl::StrCat("preset ", s.preset, ", w ", s.base_window);
  }

  const std::string out = SerializeConfig(root, windows.empty() ? nullptr : &windows,
                                          absl::EndsWith(text, "\n"));
  absl::StatusOr<ModelConfig> check = ParseModelConfig(out, path);
  if (!check.ok()) {
    return absl::Status(check.status().code(),
                        absl::StrCat("the new windows are not valid (config.json left unchanged): ",
                                     check.status().message()));
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << out;
    f.close();
    if (!f) return absl::InternalError(absl::StrCat(tmp, ": cannot write"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot replace"));
  }
  if (windows.empty()) {
    std::cout << "wrote " << path << ": removed \"attention_windows\"; the model's own windows "
              << "apply (" << DescribeWindows(check->attention_windows) << ")\n";
  } else {
    std::cout << "wrote " << path << ": \"attention_windows\" (" << what << "): "
              << DescribeWindows(check->attention_windows) << "\n";
    if (!check->native_windows.empty()) {
      std::cout << "  the model was trained with: " << DescribeWindows(check->native_windows)
                << "\n";
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSetWindowsUsage(const Args& a) {
  const int modes = static_cast<int>(a.values.count("preset") + a.values.count("windows") +
                                     a.switches.count("reset"));
  if (modes != 1) {
    return absl::InvalidArgumentError(
        "set-windows needs exactly one of --preset, --windows, --reset");
  }
  for (const char* opt : {"window", "head-scales", "layer-scales"}) {
    if (a.values.count(opt) && !a.values.count("preset")) {
      return absl::InvalidArgumentError(absl::StrCat("--", opt, " goes with --preset"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mswa::model_cli
