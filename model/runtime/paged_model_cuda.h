// The CUDA implementation of PagedModel (see paged_model.h), created by PagedModel::Create for
// ModelDevice::kCuda. Declared apart so that paged_model.cc needs no CUDA headers.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/runtime/paged_model.h"

namespace mswa {

// FailedPrecondition when the build has no CUDA kernels, LibTorch has no CUDA, or there is no
// GPU; InvalidArgument for a head_dim the CUDA kernels lack.
absl::StatusOr<std::unique_ptr<PagedModel>> CreatePagedModelCuda(const ModelConfig& config, ModelWeights weights,
                                                                 const PagedModelOptions& options);

}  // namespace mswa
