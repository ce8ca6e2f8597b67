// Engine::Info: the one place that turns the model config, the engine options and the KV
// layout into the numbers every front end reports.
#include "model/runtime/device_options.h"
#include "model/runtime/kv_layout.h"
#include "server/engine.h"

namespace mswa {

namespace {

std::string DTypeName(at::ScalarType t) {
  switch (t) {
    case at::kChar:
      return "int8";
    case at::kQUInt4x2:
      return "q4";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    default:
      return "float32";
  }
}

}  // namespace

EngineInfo Engine::Info() const {
  const ModelConfig& c = config();
  const EngineOptions& o = options_;
  EngineInfo info;
  info.model_type = c.model_type;
  info.vocab_size = c.vocab_size;
  info.hidden_size = c.hidden_size;
  info.intermediate_size = c.intermediate_size;
  info.num_layers = c.num_hidden_layers;
  info.num_attention_heads = c.num_attention_heads;
  info.num_key_value_heads = c.num_key_value_heads;
  info.head_dim = c.head_dim;
  info.num_parameters = num_parameters_;
  info.tokenizer = tokenizer_->kind();
  info.bos_token_id = c.bos_token_id;
  info.eos_token_ids = c.eos_token_ids;
  info.attention_windows = c.attention_windows;
  if (c.windows_overridden()) info.native_windows = c.native_windows;

  const KvDType kv = kv_dtype();
  info.kv_block_size = o.block_size;
  info.kv_dtype = KvDTypeName(kv);
  const KvLayout layout = BuildKvLayout(c);
  const EngineStats s = stats();
  int64_t bound = 0;
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    EngineInfo::WindowGroup group;
    group.window = layout.groups[g].window;
    group.kv_heads = layout.groups[g].num_heads;
    group.max_blocks_per_sequence =
        group.window == 0 ? 0 : MaxBlocksPerSequence(group.window, o.max_tokens_per_step, o.block_size);
    if (g < s.groups.size()) group.total_blocks = s.groups[g].total_blocks;
    bound += 2 * group.max_blocks_per_sequence * group.kv_heads * o.block_size * c.head_dim *
             KvDTypeBytes(kv);
    info.window_groups.push_back(group);
  }
  info.kv_bytes_per_sequence_bound = c.all_windows_finite() ? bound : 0;
  const KvMemoryOptions memory{o.block_size, o.max_tokens_per_step, KvDTypeBytes(kv)};
  for (int64_t tokens : {4096, 32768, 131072}) {
    info.kv_bytes_at_length.push_back({tokens, KvBytesPerSequence(layout, c.head_dim, memory, tokens),
                                       FullAttentionKvBytes(c, memory.bytes_per_element, tokens)});
  }
  info.kv_cache_bytes = o.kv_cache_bytes;
  info.max_new_tokens = o.max_new_tokens;
  info.max_waiting = o.max_waiting;
  info.max_tokens_per_step = o.max_tokens_per_step;
  info.max_sequence_length = c.all_windows_finite() ? 0 : o.max_model_len;
  info.device = o.device == ModelDevice::kCuda ? "cuda" : "cpu";
  info.dtype = DTypeName(dtype());
  info.activation_dtype = DTypeName(activation_dtype());
  info.product_kernel = ProductKernelName(o.device, dtype(), activation_dtype(), c.hidden_size);
  info.prefix_caching = o.enable_prefix_caching;
  return info;
}

}  // namespace mswa
