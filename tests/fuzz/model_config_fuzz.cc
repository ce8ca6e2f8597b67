// ParseModelConfig on arbitrary text (config.json of any supported family). Checked: it never
// crashes; an accepted config passes Validate(), and its per-layer accessors stay in bounds; an
// accepted "mswa" config serializes with ModelConfigToJson to text that parses back to the same
// windows, dimensions and first EOS id (the only one it writes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "model/format/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<mswa::ModelConfig> config = mswa::ParseModelConfig(text, "fuzz");
  if (!config.ok()) return 0;
  if (!config->Validate().ok()) std::abort();

  for (int64_t layer = 0; layer < config->num_hidden_layers; ++layer) {
    (void)config->rope(layer);
    for (int64_t head = 0; head < config->num_attention_heads; ++head) {
      if (config->window(layer, head) < 0) std::abort();
    }
    for (int64_t kv = 0; kv < config->num_key_value_heads; ++kv) (void)config->kv_window(layer, kv);
  }
  (void)config->max_window();
  (void)config->all_windows_finite();
  (void)config->windows_overridden();

  if (config->model_type == "mswa") {
    absl::StatusOr<mswa::ModelConfig> again =
        mswa::ParseModelConfig(mswa::ModelConfigToJson(*config), "fuzz (serialized)");
    if (!again.ok()) std::abort();
    if (again->attention_windows != config->attention_windows ||
        again->vocab_size != config->vocab_size || again->hidden_size != config->hidden_size ||
        again->num_hidden_layers != config->num_hidden_layers ||
        again->first_eos() != config->first_eos()) {
      std::abort();
    }
  }
  return 0;
}
