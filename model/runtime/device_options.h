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
// "auto" (nullopt), "float32", "float16", "bfloat16", "int8" (at::kChar: on the CPU, every
// matrix quantized once at load to int8 with a scale per 32 values of a row; kernels/
// small_linear.h) or "q4" (at::kQUInt4x2 as a marker: the layers' matrices in 4 bits per
// value, llama.cpp's q4_0 scheme, the embedding and LM head in int8); InvalidArgument otherwise.
absl::StatusOr<std::optional<at::ScalarType>> ParseComputeDType(const std::string& name);

// The type of the activations entering the matrix products, for a model computing in
// `compute_dtype`. On the CPU with bfloat16 weights, bfloat16 rounds them (nearest even) so each
// product is bfloat16 x bfloat16 summed in fp32, as llama.cpp and GPU servers compute: on CPUs
// with AVX-512 BF16 prompts and large batches run up to twice as fast, for the activations'
// rounding (kernels/small_linear.h, SmallLinearBf16Dot); float32 keeps them exact. Unset:
// bfloat16 for bfloat16 weights where SmallLinearBf16Dot runs on AVX-512 BF16, float32 otherwise.
// On CUDA the activations have the checkpoint's type. InvalidArgument for bfloat16 activations
// with weights of another type, or on CUDA for a type other than the weights'.
absl::StatusOr<at::ScalarType> ResolveActivationDType(ModelDevice device, at::ScalarType compute_dtype,
                                                      std::optional<at::ScalarType> requested);
// "auto" (nullopt), "float32" or "bfloat16"; InvalidArgument otherwise.
absl::StatusOr<std::optional<at::ScalarType>> ParseActivationDType(const std::string& name);

// The kernel a decode step's matrix products take, for users to see what their CPU runs: int8
// and q4 the integer kernel for `in` columns ("avx512vnni", "avx2", "widened"); bfloat16
// activations the bfloat16 one ("amxbf16", "avx512bf16", "widened"); float32 activations
// "float32" (fp32 products, of bfloat16 weights too); on CUDA "cuda".
std::string ProductKernelName(ModelDevice device, at::ScalarType compute_dtype,
                              at::ScalarType activation_dtype, int64_t in);

}  // namespace mswa
