// The CUDA implementation of PagedModel (see paged_model.h), created by PagedModel::Create for
// ModelDevice::kCuda. Declared apart so that paged_model.cc needs no CUDA headers.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/runtime/paged_model.h"

namespace mswa {

// OK when the CUDA model implements every switch of config.arch (today: Llama's layer, i.e.
// the mswa, llama, mistral families without biases or RoPE scaling); InvalidArgument naming
// the first switch it lacks otherwise, so a model is refused at load, never approximated.
absl::Status CudaSupportsArch(const ModelConfig& config);

// FailedPrecondition when the build has no CUDA kernels, LibTorch has no CUDA, or there is no
// GPU; InvalidArgument for a head_dim the CUDA kernels lack or CudaSupportsArch's refusal.
absl::StatusOr<std::unique_ptr<PagedModel>> CreatePagedModelCuda(const ModelConfig& config, ModelWeights weights,
                                                                 const PagedModelOptions& options);

}  // namespace mswa
