// The dense reference forward: the oracle every kernel and the engine are tested against.
// Simple and obviously right, not fast: full [T, T] scores per head with an explicit
// absolute-position mask built from InWindow (kernels/window.h).
//
// Architecture: the decoder layer of model/format/arch_spec.h with the config's switches
// (Llama's for the mswa family): x = embed[tokens] * embed_scale;
//   per layer: x += o_proj(attn(rope(q(norm(x))), rope(k(norm(x))), v(norm(x))))
//              x += down(act(gate(norm(x))) * up(norm(x)))
//   logits = lm_head(norm(x)).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "model/format/config.h"
#include "model/format/weights.h"

namespace mswa {

// Logits [T, vocab] (the weights' dtype) for `tokens` at absolute positions
// start_pos .. start_pos + T - 1, as if they were a whole sequence: keys before start_pos do not
// exist. Requires T >= 1 and token ids in [0, vocab).
at::Tensor ReferenceForward(const ModelWeights& weights, const ModelConfig& config,
                            const std::vector<int32_t>& tokens, int64_t start_pos = 0);

// x * rsqrt(mean(x^2, -1) + eps) * weight (RmsNormT of ops.h; weight as the norm multiplies).
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// The [T, T] boolean mask for one window: mask[i][j] = InWindow(start+i, start+j, window).
at::Tensor WindowMask(int64_t start_pos, int64_t num_tokens, int64_t window);

}  // namespace mswa
