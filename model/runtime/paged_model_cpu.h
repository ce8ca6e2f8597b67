// The CPU implementation of PagedModel (see paged_model.h), created by PagedModel::Create for
// ModelDevice::kCpu: paged_model_cpu.cc loads the weights into the kernels' layouts,
// paged_model_cpu_forward.cc runs a step. Internal to model/runtime.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/small_linear.h"
#include "model/runtime/paged_model.h"

namespace mswa {

// fp32 weights (bfloat16 for decode-sized products with options.dtype bfloat16), KV pools of
// options.kv_dtype, on the CPU; the kernels of kernels/paged_attention.h and small_linear.h.
class PagedModelCpu final : public PagedModel {
 public:
  static absl::StatusOr<std::unique_ptr<PagedModel>> Create(const ModelConfig& config, ModelWeights weights,
                                                            const PagedModelOptions& options);
  at::Tensor Forward(const StepInput& input) override;
  void PoisonBlock(int g, int32_t block) override;
  int64_t kv_bytes() const override;

 private:
  enum class Proj { kQkv, kO, kGateUp, kDown, kLmHead };
  // y (+)= x W^T for projection `proj` of `layer`, x [rows, in] and y [rows, out] (row stride
  // y_stride): a matrix-vector kernel for a few rows (int8 VNNI, fp32 panels: any number, so a
  // prompt's token computes what a decode step does), BLAS for more.
  // Inside a team (kernels/cpu_team.h) only the kernels: see OnKernelsOnly.
  void Linear(const float* x, int64_t rows, int64_t in, int64_t layer, Proj proj, float* y,
              int64_t y_stride, bool accumulate) const;
  struct Matrix;
  // Whether Linear takes BLAS for `rows` rows of matrix m with `in` columns (else a kernel of
  // kernels/small_linear.h, which a team can run).
  bool TakesBlas(const Matrix& m, int64_t rows, int64_t in) const;
  // Whether a step of `rows` tokens with `logits` logit rows takes kernels only (no BLAS), so
  // that all its layers can run on one team.
  bool OnKernelsOnly(int64_t rows, int64_t logits) const;
  // The bias, q/k norms and RoPE of KV head `kvh`'s rows of token t (its query heads, its key,
  // its value) in the fused QKV row.
  void PrepareHeads(float* qkv_row, int64_t layer, int64_t kvh, const float* cos, const float* sin) const;

  // Per layer, [out, in] in the compute type (fp32 or bfloat16), each projection one matrix:
  // [q; k; v] [(H + 2 KV) D, E], o [E, H D], [gate; up] [2F, E], down [E, F]. Decode-sized
  // batches read them with kernels/small_linear.h, larger ones with BLAS (transposed operand);
  // fp32 panels take small_linear.h's kernel at every size (as fast as BLAS on prompts).
  // One weight matrix [out, in]: `w` in fp32 or bfloat16 (fp32 in panels of kF32PanelRows
  // outputs, 1-D, where AVX-512 runs: `f32_panels`), or, for int8 and q4 compute, `q` with
  // `scales` (fp32, one per kInt8Group values of a row) laid out as `layout` says: row-major
  // int8 values, or packed in tiles for the AVX-512 VNNI kernel (scales inside q; q4's values
  // two a byte) where that kernel runs.
  struct Matrix {
    at::Tensor w, q, scales;
    int64_t q_out = 0;  // out, where neither q nor w is [out, in]
    Int8Layout layout = Int8Layout::kRows;
    bool f32_panels = false;
    int64_t out() const { return q.defined() || f32_panels ? q_out : w.size(0); }
    F32Panels panels() const { return F32Panels{w.data_ptr<float>(), q_out}; }
    Int8Matrix int8() const {
      return Int8Matrix{q.data_ptr<int8_t>(), scales.defined() ? scales.data_ptr<float>() : nullptr, q_out, layout};
    }
  };
  static Matrix MakeMatrix(const at::Tensor& t, at::ScalarType compute);
  std::vector<Matrix> w_qkv_, w_gate_up_, w_o_, w_down_;
  Matrix lm_head_;    // [V, E]; the embedding itself when tied
  // Per layer, fp32: what each RMSNorm multiplies by (NormScale), and the fused biases.
  struct LayerExtras {
    at::Tensor input_scale, post_scale, attn_out_scale, mlp_out_scale, q_scale, k_scale;
    at::Tensor qkv_bias, o_bias, gate_up_bias, down_bias;
  };
  std::vector<LayerExtras> extras_;
  at::Tensor final_scale_;
  Matrix embed_;  // [V, E], compute type
  // The distinct RoPEs (fp64 frequencies, rotary_dim / 2 each) and which one each layer uses.
  std::vector<std::vector<double>> inv_freq_;
  std::vector<int> layer_rope_;
  std::vector<at::Tensor> pool_k_, pool_v_;  // per group
  std::vector<KvPoolView> pools_;
  // A step's activations and RoPE angles, kept from step to step: nine tensor allocations a
  // step cost 5-8 us, 1-2% of a small model's decode step.
  std::vector<float> activations_;
  std::vector<std::vector<float>> cos_, sin_;
};

}  // namespace mswa
