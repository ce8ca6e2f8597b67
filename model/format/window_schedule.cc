#include "model/format/window_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mswa {

const std::vector<std::string>& WindowPresetNames() {
  static const std::vector<std::string> names = {"full", "swa", "mswa-h", "mswa-l", "mswa"};
  return names;
}

absl::StatusOr<std::vector<std::vector<int64_t>>> MakeWindowSchedule(
    const WindowScheduleOptions& o) {
  const auto& names = WindowPresetNames();
  if (std::find(names.begin(), names.end(), o.preset) == names.end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown window preset \"", o.preset,
                                                   "\"; expected one of: ",
                                                   absl::StrJoin(names, ", ")));
  }
  if (o.num_layers <= 0 || o.num_heads <= 0 || o.num_kv_heads <= 0 ||
      o.num_heads % o.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window schedule needs layers > 0 and heads a positive multiple of kv heads; got layers=",
        o.num_layers, " heads=", o.num_heads, " kv_heads=", o.num_kv_heads));
  }
  if (o.preset == "full") {
    return std::vector<std::vector<int64_t>>(o.num_layers, std::vector<int64_t>(o.num_heads, 0));
  }
  if (o.base_window < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("base window must be >= 1 for preset \"", o.preset, "\", got ",
                     o.base_window));
  }
  const bool head_ladder = o.preset == "mswa" || o.preset == "mswa-h";
  const bool layer_ladder = o.preset == "mswa" || o.preset == "mswa-l";
  const std::vector<double> one = {1.0};
  const std::vector<double>& hs = head_ladder ? o.head_scales : one;
  const std::vector<double>& ls = layer_ladder ? o.layer_scales : one;
  for (const auto* ladder : {&hs, &ls}) {
    if (ladder->empty()) return absl::InvalidArgumentError("a scale ladder is empty");
    for (double s : *ladder) {
      if (!(s > 0)) {
        return absl::InvalidArgumentError(absl::StrCat("window scales must be > 0, got ", s));
      }
    }
  }
  const int64_t G = static_cast<int64_t>(hs.size());
  const int64_t L = static_cast<int64_t>(ls.size());
  if (o.num_kv_heads % G != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        G, " head groups do not split ", o.num_kv_heads,
        " KV heads evenly; heads that share a KV head must share a window, so the number of KV "
        "heads must be a multiple of the number of head scales"));
  }
  if (L > o.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(L, " layer groups for only ", o.num_layers, " layers"));
  }
  const int64_t heads_per_group = o.num_heads / G;
  std::vector<std::vector<int64_t>> windows(o.num_layers, std::vector<int64_t>(o.num_heads));
  for (int64_t layer = 0; layer < o.num_layers; ++layer) {
    const int64_t j = layer * L / o.num_layers;
    for (int64_t head = 0; head < o.num_heads; ++head) {
      const int64_t i = head / heads_per_group;
      const double w = static_cast<double>(o.base_window) * ls[j] * hs[i];
      windows[layer][head] = std::max<int64_t>(1, std::llround(w));
    }
  }
  return windows;
}

}  // namespace mswa
