// Where and in which types the model runs: the device, the compute type of the matrix
// products and the KV pools' element type; how the server's flags name them and which
// combinations each device supports.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/paged_attention.h"

namespace mswa {

enum class ModelDevice { kCpu, kCuda };
// "cpu" or "cuda"; InvalidArgument otherwise.
absl::StatusOr<ModelDevice> ParseModelDevice(const std::string& name);

// The element type of the KV pools for `device` and weights of `weights_dtype`: `requested`
// when given, else fp32 on the CPU and the weights' dtype on CUDA. fp16/bf16 pools halve the
// cache (twice the sequences in the same memory, half the bytes each attention reads) at the
// cost of rounding keys and values. InvalidArgument on CUDA for a type other than the weights'
// (its kernels keep queries and outputs in the pool's type).
absl::StatusOr<KvDType> ResolveKvDType(ModelDevice device, at::ScalarType weights_dtype,
                                       std::optional<KvDType> requested);
// "auto" (nullopt), "float32", "float16" or "bfloat16"; InvalidArgument otherwise.
absl::StatusOr<std::optional<KvDType>> ParseKvCacheDType(const std::string& name);
const char* KvDTypeName(KvDType t);  // "float32", "float16", "bfloat16"
int64_t KvDTypeBytes(KvDType t);
at::ScalarType ScalarTypeOf(KvDType t);  // the LibTorch type of a pool element

// The type the model computes its matrix products with: `requested` when given, else the
// checkpoint's (fp16 checkpoints run in fp32 on the CPU). On the CPU, bfloat16 keeps the weights
// of decode-sized products in bfloat16 (half the bytes each step reads; every weight rounded
// once at load, so prefill and decode see the same values); float16 is refused there. On CUDA
// only the checkpoint's type. InvalidArgument otherwise, naming what to use instead.
absl::StatusOr<at::ScalarType> ResolveComputeDType(ModelDevice device, at::ScalarType weights_dtype,
                                                   std::optional<at::ScalarType> requested);
// "auto" (nullopt), "float32", "float16", "bfloat16" or "int8" (at::kChar: on the CPU, every
// matrix quantized once at load to int8 with a scale per 32 values of a row; kernels/
// small_linear.h); InvalidArgument otherwise.
absl::StatusOr<std::optional<at::ScalarType>> ParseComputeDType(const std::string& name);

}  // namespace mswa
