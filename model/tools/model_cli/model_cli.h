// Shared pieces of the mswa-model commands (model/tools/mswa_model_main.cc prints the help and
// dispatches; each command in a file of its own): the parsed command line, option readers, and
// the window descriptions that info and set-windows print.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/format/config.h"
#include "model/format/safetensors.h"
#include "model/format/window_schedule.h"

namespace mswa::model_cli {

// One list per layer of one window per query head; 0 = unbounded.
using Windows = std::vector<std::vector<int64_t>>;

struct Args {
  std::string command, dir;
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
};

// Parses `--name value`, `--name=value` and bare switches. `known` lists value options,
// `known_switches` flag options; anything else is a usage error. argv[1] is the command; the one
// argument that is not an option is the model directory, which is required.
absl::StatusOr<Args> ParseArgs(int argc, char** argv, const std::set<std::string>& known,
                               const std::set<std::string>& known_switches);

// The option `--name` of `a`, or `fallback` when it is absent; InvalidArgument naming the option
// when its value is not an integer / a number / comma-separated numbers / f32, f16 or bf16.
absl::StatusOr<int64_t> IntOpt(const Args& a, const std::string& name, int64_t fallback);
absl::StatusOr<double> DoubleOpt(const Args& a, const std::string& name, double fallback);
absl::StatusOr<std::vector<double>> ListOpt(const Args& a, const std::string& name,
                                            std::vector<double> fallback);
absl::StatusOr<DType> DTypeOpt(const Args& a, const std::string& name, DType fallback);

// The whole file; NotFound when it cannot be opened.
absl::StatusOr<std::string> ReadText(const std::string& path);

// --preset, --window, --head-scales, --layer-scales for a model of `c`'s shape.
absl::StatusOr<WindowScheduleOptions> ScheduleOptions(const Args& a, const ModelConfig& c,
                                                      int64_t default_window);

// The windows the model was trained with: the family's own, or the explicit ones of an mswa
// config (which has no others).
const Windows& OwnWindows(const ModelConfig& c);

// True when every head of each layer has the same window.
bool UniformRows(const Windows& w);

// "window 512 on 15 layers, unbounded on 3"; "window 4096 on all 32 layers";
// "per-head windows 8 to 256 on 6 layers" when the heads of a layer differ.
std::string DescribeWindows(const Windows& w);

// The commands; each returns its error (exit status 1) as a status.
absl::Status Init(const Args& a);        // init_command.cc
absl::Status Info(const Args& a);        // info_command.cc
absl::Status SetWindows(const Args& a);  // set_windows_command.cc
absl::Status Logits(const Args& a);      // logits_command.cc
// Usage errors (exit 2) of set-windows: exactly one way to give the windows.
absl::Status CheckSetWindowsUsage(const Args& a);  // set_windows_command.cc

}  // namespace mswa::model_cli
