#include "model/runtime/paged_model.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/runtime/paged_model_cpu.h"
#include "model/runtime/paged_model_cuda.h"

namespace mswa {

absl::Status PagedModel::Init(const ModelConfig& config, const PagedModelOptions& options) {
  if (options.block_size < 1 || options.block_size > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV block size must be in [1, 64], got ", options.block_size));
  }
  config_ = config;
  layout_ = BuildKvLayout(config);
  options_ = options;
  const size_t groups = layout_.groups.size();
  if (options.blocks_per_group.size() != groups || options.ring_sizes.size() != groups) {
    return absl::InvalidArgumentError(absl::StrCat("the model has ", groups,
                                                   " window groups but the KV options give ",
                                                   options.blocks_per_group.size(), " pools"));
  }
  for (size_t g = 0; g < groups; ++g) {
    table_offsets_.push_back(table_stride_);
    table_stride_ += options.ring_sizes[g];
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    std::vector<KvHeadDesc> heads;
    for (int64_t h = 0; h < config.num_key_value_heads; ++h) {
      heads.push_back(KvHeadDesc{config.kv_window(l, h),
                                 static_cast<int32_t>(layout_.group_of[l][h]),
                                 static_cast<int32_t>(layout_.head_offset[l][h])});
    }
    kv_heads_.push_back(std::move(heads));
  }
  return absl::OkStatus();
}

PagedKvParams PagedModel::StepParams(int64_t num_tokens) const {
  PagedKvParams p;
  p.num_tokens = num_tokens;
  p.num_q_heads = config_.num_attention_heads;
  p.num_kv_heads = config_.num_key_value_heads;
  p.head_dim = config_.head_dim;
  p.block_size = options_.block_size;
  p.table_stride = table_stride_;
  p.num_groups = static_cast<int32_t>(layout_.groups.size());
  return p;
}

absl::StatusOr<std::unique_ptr<PagedModel>> PagedModel::Create(const ModelConfig& config, ModelWeights weights,
                                                               const PagedModelOptions& options) {
  if (options.device == ModelDevice::kCuda) return CreatePagedModelCuda(config, std::move(weights), options);
  return PagedModelCpu::Create(config, std::move(weights), options);
}

}  // namespace mswa
