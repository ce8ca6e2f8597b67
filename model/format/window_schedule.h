// The MSWA schedule generator: turns (preset, base window w, head/layer ladders) into the
// explicit per-layer, per-head windows of config.json. Used by mswa-model and the trainer; the
// engine never calls it (it reads the explicit windows).
//
// Query heads are split into G contiguous head groups, layers into L contiguous layer groups;
//   window(head group i, layer group j) = round(w * layer_scales[j] * head_scales[i])   (>= 1)
// Worked example, preset "mswa", w = 256, 12 layers, 8 heads, G = L = 4:
//   layers 0-5:  [32 32 64 64 128 128 256 256]      (layer scale 1/2)
//   layers 6-8:  [64 64 128 128 256 256 512 512]    (layer scale 1)
//   layers 9-11: [128 128 256 256 512 512 1024 1024] (layer scale 2)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mswa {

struct WindowScheduleOptions {
  // "full" (every window 0 = unbounded), "swa" (every window w), "mswa-h" (head ladder only),
  // "mswa-l" (layer ladder only), "mswa" (both).
  std::string preset = "mswa";
  int64_t base_window = 256;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  // Ladders, shallow-to-deep for layers. Their lengths are G and L. Paper text: heads
  // w/4..2w; the released code: layers [1/2, 1/2, 1, 2].
  std::vector<double> head_scales = {0.25, 0.5, 1.0, 2.0};
  std::vector<double> layer_scales = {0.5, 0.5, 1.0, 2.0};
};

// attention_windows[layer][query head]. InvalidArgument (naming the option) when the preset is
// unknown, w < 1 for a windowed preset, a scale is not > 0, there are more head groups than KV
// heads or the KV heads do not split evenly into head groups (heads sharing a KV head must share
// a window), or there are more layer groups than layers. Layers that do not divide evenly go
// to groups by floor(layer * L / num_layers).
absl::StatusOr<std::vector<std::vector<int64_t>>> MakeWindowSchedule(
    const WindowScheduleOptions& options);

// The presets' names, for --help texts.
const std::vector<std::string>& WindowPresetNames();

}  // namespace mswa
