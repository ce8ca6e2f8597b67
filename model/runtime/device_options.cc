#include "model/runtime/device_options.h"

#include "absl/strings/str_cat.h"
#include "kernels/small_linear.h"
#include "model/status_macros.h"

namespace mswa {

absl::StatusOr<ModelDevice> ParseModelDevice(const std::string& name) {
  if (name == "cpu") return ModelDevice::kCpu;
  if (name == "cuda") return ModelDevice::kCuda;
  return absl::InvalidArgumentError(absl::StrCat("unknown device \"", name, "\" (cpu or cuda)"));
}

namespace {

absl::StatusOr<KvDType> KvDTypeOf(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return KvDType::kF32;
    case at::kHalf: return KvDType::kF16;
    case at::kBFloat16: return KvDType::kBF16;
    default: return absl::InvalidArgumentError(absl::StrCat("no KV cache type for weights of ", c10::toString(t)));
  }
}

}  // namespace

at::ScalarType ScalarTypeOf(KvDType t) {
  return t == KvDType::kF16 ? at::kHalf : t == KvDType::kBF16 ? at::kBFloat16 : at::kFloat;
}

absl::StatusOr<KvDType> ResolveKvDType(ModelDevice device, at::ScalarType weights_dtype,
                                       std::optional<KvDType> requested) {
  if (device == ModelDevice::kCpu) return requested.value_or(KvDType::kF32);
  ASSIGN_OR_RETURN(KvDType weights_kv, KvDTypeOf(weights_dtype));
  if (requested.has_value() && *requested != weights_kv) {
    return absl::InvalidArgumentError(absl::StrCat(
        "on cuda the KV cache has the weights' type (", KvDTypeName(weights_kv), "), not ",
        KvDTypeName(*requested), "; use --kv_cache_dtype=auto or convert the weights"));
  }
  return weights_kv;
}

absl::StatusOr<at::ScalarType> ResolveComputeDType(ModelDevice device, at::ScalarType weights_dtype,
                                                   std::optional<at::ScalarType> requested) {
  if (device == ModelDevice::kCpu) {
    const at::ScalarType t = requested.value_or(weights_dtype == at::kBFloat16 ? at::kBFloat16 : at::kFloat);
    if (t == at::kHalf) {
      return absl::InvalidArgumentError(
          "float16 compute is not supported on the CPU; use --dtype=bfloat16 (same size) or float32");
    }
    if (t != at::kFloat && t != at::kBFloat16 && t != at::kChar && t != at::kQUInt4x2) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported compute type ", c10::toString(t)));
    }
    return t;
  }
  if (requested.has_value() && *requested != weights_dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        "on cuda the model computes in its checkpoint's type (", c10::toString(weights_dtype),
        "); use --dtype=auto or convert the checkpoint"));
  }
  return weights_dtype;
}

absl::StatusOr<std::optional<at::ScalarType>> ParseComputeDType(const std::string& name) {
  using T = std::optional<at::ScalarType>;
  if (name == "auto") return T();
  if (name == "float32") return T(at::kFloat);
  if (name == "float16") return T(at::kHalf);
  if (name == "bfloat16") return T(at::kBFloat16);
  if (name == "int8") return T(at::kChar);
  if (name == "q4") return T(at::kQUInt4x2);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown type \"", name, "\" (auto, float32, float16, bfloat16, int8 or q4)"));
}

absl::StatusOr<at::ScalarType> ResolveActivationDType(ModelDevice device, at::ScalarType compute_dtype,
                                                      std::optional<at::ScalarType> requested) {
  if (device == ModelDevice::kCuda) {
    if (requested.has_value() && *requested != compute_dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "on cuda the activations have the weights' type (", c10::toString(compute_dtype),
          "); use --activation_dtype=auto"));
    }
    return compute_dtype;
  }
  // Unset: bfloat16 where the products have the instruction that makes it pay; elsewhere the
  // rounded activations would run on the widened kernel, no faster, so float32 keeps them exact.
  const bool native_bf16 = Bf16DotKernelNow() != Bf16DotKernel::kWidened;
  const at::ScalarType t = requested.value_or(
      compute_dtype == at::kBFloat16 && native_bf16 ? at::kBFloat16 : at::kFloat);
  if (t == at::kBFloat16 && compute_dtype != at::kBFloat16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bfloat16 activations need bfloat16 weights (--dtype=bfloat16); the model computes in ",
        c10::toString(compute_dtype)));
  }
  if (t != at::kFloat && t != at::kBFloat16) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported activation type ", c10::toString(t)));
  }
  return t;
}

absl::StatusOr<std::optional<at::ScalarType>> ParseActivationDType(const std::string& name) {
  using T = std::optional<at::ScalarType>;
  if (name == "auto") return T();
  if (name == "float32") return T(at::kFloat);
  if (name == "bfloat16") return T(at::kBFloat16);
  return absl::InvalidArgumentError(absl::StrCat("unknown type \"", name, "\" (auto, float32 or bfloat16)"));
}

absl::StatusOr<std::optional<KvDType>> ParseKvCacheDType(const std::string& name) {
  if (name == "auto") return std::optional<KvDType>();
  if (name == "float32") return std::optional<KvDType>(KvDType::kF32);
  if (name == "float16") return std::optional<KvDType>(KvDType::kF16);
  if (name == "bfloat16") return std::optional<KvDType>(KvDType::kBF16);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown KV cache type \"", name, "\" (auto, float32, float16 or bfloat16)"));
}

const char* KvDTypeName(KvDType t) {
  return t == KvDType::kF16 ? "float16" : t == KvDType::kBF16 ? "bfloat16" : "float32";
}

int64_t KvDTypeBytes(KvDType t) { return t == KvDType::kF32 ? 4 : 2; }

std::string ProductKernelName(ModelDevice device, at::ScalarType compute_dtype,
                              at::ScalarType activation_dtype, int64_t in) {
  if (device == ModelDevice::kCuda) return "cuda";
  if (compute_dtype == at::kChar || compute_dtype == at::kQUInt4x2) {
    // Where the tile unit takes the products of many rows and VNNI those of few, both.
    const Int8Kernel one = Int8KernelFor(1, in), many = Int8KernelFor(kSmallLinearMaxRows, in);
    if (many != one) return std::string(Int8KernelName(many)) + "+" + Int8KernelName(one);
    return Int8KernelName(one);
  }
  if (activation_dtype == at::kBFloat16) return Bf16DotKernelName(Bf16DotKernelNow());
  return "float32";
}

}  // namespace mswa
