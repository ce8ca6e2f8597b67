#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/gated_activation.h"
#include "kernels/paged_attention.h"
#include "kernels/small_linear.h"
#include "model/runtime/ops.h"
#include "model/runtime/paged_model_cpu.h"
#include "model/runtime/rope.h"

namespace mswa {

void PagedModelCpu::PrepareHeads(float* r, int64_t layer, int64_t kvh, const float* cos,
                                 const float* sin) const {
  const ModelConfig& c = config_;
  const LayerExtras& ex = extras_[layer];
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t G = H / KV;
  float* q = r + kvh * G * D;
  float* k = r + (H + kvh) * D;
  float* v = r + (H + KV + kvh) * D;
  if (ex.qkv_bias.defined()) {
    const float* b = ex.qkv_bias.data_ptr<float>();
    const float* bq = b + kvh * G * D;
    const float* bk = b + (H + kvh) * D;
    const float* bv = b + (H + KV + kvh) * D;
#pragma omp simd
    for (int64_t i = 0; i < G * D; ++i) q[i] += bq[i];
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) {
      k[i] += bk[i];
      v[i] += bv[i];
    }
  }
  if (c.arch.qk_norm) {
    RmsNormRows(q, ex.q_scale.data_ptr<float>(), G, D, c.rms_norm_eps, q, D);
    RmsNormRows(k, ex.k_scale.data_ptr<float>(), 1, D, c.rms_norm_eps, k, D);
  }
  const int64_t rot = 2 * static_cast<int64_t>(inv_freq_[layer_rope_[layer]].size());
  RotateHeads(q, G, D, rot, cos, sin);
  RotateHeads(k, 1, D, rot, cos, sin);
}

// Per-op overhead dominates a small model's decode step, so the elementwise work is plain loops
// over preallocated buffers (model/runtime/ops.h), each layer costs four matrix products and one
// attention call, and a step runs all of its layers on one team of threads (kernels/cpu_team.h):
// the kernels split their work among the team instead of opening a parallel region each, and
// the loops here are worksharing loops. Prompts too, where every product takes a kernel (fp32
// panels, bfloat16 activations, int8 on VNNI): on the hidden-256 Llama's pp512, a region per
// kernel left the second thread waiting while the first normed, rotated and embedded alone.
// A step with a product on BLAS (which brings threads of its own) runs the layers on the
// calling thread.
at::Tensor PagedModelCpu::Forward(const StepInput& in) {
  const ModelConfig& c = config_;
  const ArchSpec& arch = c.arch;
  const int64_t N = in.num_tokens;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
  const int64_t E = c.hidden_size, F = c.intermediate_size;
  const int64_t row = (H + 2 * KV) * D;  // fused QKV row
  const float scale = static_cast<float>(arch.AttnScale(D));
  const double eps = c.rms_norm_eps;
  const int64_t V = c.vocab_size, L = in.num_logits;
  const int threads = omp_get_max_threads();
#if defined(__SANITIZE_THREAD__)
  // libgomp's barriers are invisible to ThreadSanitizer, which would report the team's
  // barrier-ordered accesses as races: there, every kernel opens its own region.
  const bool team = false;
#else
  const bool team = threads > 1 && (N <= kSmallLinearMaxRows || OnKernelsOnly(N, L));
#endif
  // Up to kSmallLinearMaxRows rows, each thread of a team norms every row into a copy of its
  // own rather than wait at a barrier for the other threads' rows; more, they share the rows.
  const bool norm_copies = team && N <= kSmallLinearMaxRows;

  // cos/sin per distinct RoPE and token: [N, rotary_dim / 2].
  cos_.resize(inv_freq_.size());
  sin_.resize(inv_freq_.size());
  for (size_t r = 0; r < inv_freq_.size(); ++r) {
    cos_[r].resize(N * inv_freq_[r].size());
    sin_[r].resize(N * inv_freq_[r].size());
    RopeAngles(inv_freq_[r], in.positions, N, cos_[r].data(), sin_[r].data());
  }

  PagedKvParams p = StepParams(N);
  p.positions = in.positions;
  p.seq_index = in.seq_index;
  p.block_tables = in.block_tables;
  p.table_offsets = table_offsets_.data();
  p.ring_sizes = options_.ring_sizes.data();
  p.pools = pools_.data();
  p.kv_dtype = options_.kv_dtype;
  p.softcap = static_cast<float>(arch.attn_softcap);

  // The step's buffers, carved from activations_ at 64-byte boundaries.
  const int64_t copies = norm_copies ? threads : 1;
  const int64_t sizes[] = {
      N * E,           // x: the residual stream
      copies * N * E,  // h: normed rows, one copy per thread of a team: each thread norms the
                       //    residual itself rather than wait at a barrier for one thread to
      N * row,         // qkv: [N, (H + 2KV) D]
      N * H * D,       // attn
      N * 2 * F,       // gu: [N, 2F], gate | up
      N * F,           // act
      N * E,           // branch: a branch's output before it joins the residual, when it needs a
                       //         bias or a norm first
      L * E,           // last: the normed rows that get logits
  };
  int64_t total = 0;
  for (int64_t n : sizes) total += (n + 15) / 16 * 16;
  activations_.resize(static_cast<size_t>(total) + 16);
  float* next = activations_.data() + (16 - reinterpret_cast<uintptr_t>(activations_.data()) / 4 % 16) % 16;
  float* buffers[8];
  for (int i = 0; i < 8; ++i) {
    buffers[i] = next;
    next += (sizes[i] + 15) / 16 * 16;
  }
  float* const xp = buffers[0];
  float* const h0 = buffers[1];
  float* const qkvp = buffers[2];
  float* const attnp = buffers[3];
  float* const gup = buffers[4];
  float* const actp = buffers[5];
  float* const bp = buffers[6];
  float* const lastp = buffers[7];
  at::Tensor logits = at::empty({L, V}, at::TensorOptions().dtype(at::kFloat));
  float* const logitsp = logits.data_ptr<float>();
  const float embed_scale = static_cast<float>(arch.embed_scale);
  const bool embed_bf16 = embed_.w.defined() && embed_.w.scalar_type() == at::kBFloat16;
  for (int64_t t = 0; t < N; ++t) {
    const int64_t offset = static_cast<int64_t>(in.tokens[t]) * E;
    float* xr = xp + t * E;
    if (embed_.q.defined()) {
      DequantizeInt8(embed_.int8(), E, in.tokens[t], in.tokens[t] + 1, xr);
      for (int64_t i = 0; i < E; ++i) xr[i] *= embed_scale;
    } else if (embed_bf16) {
      const uint16_t* e = static_cast<const uint16_t*>(embed_.w.data_ptr()) + offset;
      for (int64_t i = 0; i < E; ++i) {
        const uint32_t bits = static_cast<uint32_t>(e[i]) << 16;
        float f;
        std::memcpy(&f, &bits, sizeof f);
        xr[i] = f * embed_scale;
      }
    } else if (embed_.f32_panels) {
      UnpackF32Panels(embed_.w.data_ptr<float>(), V, E, in.tokens[t], in.tokens[t] + 1, xr);
      for (int64_t i = 0; i < E; ++i) xr[i] *= embed_scale;
    } else {
      const float* e = embed_.w.data_ptr<float>() + offset;
      for (int64_t i = 0; i < E; ++i) xr[i] = e[i] * embed_scale;
    }
  }
  // x += y, after y's bias and (sandwich norms) its norm; row by row.
  auto join = [&](const at::Tensor& bias, const at::Tensor& out_scale) {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < N; ++t) {
      float* y = bp + t * E;
      float* xr = xp + t * E;
      if (bias.defined()) {
        const float* b = bias.data_ptr<float>();
#pragma omp simd
        for (int64_t i = 0; i < E; ++i) y[i] += b[i];
      }
      if (out_scale.defined()) RmsNormRows(y, out_scale.data_ptr<float>(), 1, E, eps, y, E);
#pragma omp simd
      for (int64_t i = 0; i < E; ++i) xr[i] += y[i];
    }
  };

  // Run by every thread of the team (or by the calling thread alone): locals are the thread's.
  auto layers = [&] {
    float* const hp = h0 + (norm_copies ? omp_get_thread_num() * N * E : 0);  // the normed rows it reads
    // x's rows normed into hp: all of them by this thread, or its share of them.
    auto norm = [&](const at::Tensor& scale_of_layer) {
      const float* w = scale_of_layer.data_ptr<float>();
      if (!team || norm_copies) return RmsNormRows(xp, w, N, E, eps, hp, E);
      constexpr int64_t kRows = 16;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < N; t += kRows) RmsNormRows(xp + t * E, w, std::min(kRows, N - t), E, eps, hp + t * E, E);
    };
    PagedKvParams pl = p;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const LayerExtras& ex = extras_[l];
      norm(ex.input_scale);
      Linear(hp, N, E, l, Proj::kQkv, qkvp, row, false);
      // Each (token, KV head) item prepares the rows that head's attention reads; the KV write
      // below splits the same items with the same static schedule, so each thread writes the
      // rows it prepared and no barrier is needed between the two (OpenMP assigns equal
      // static loops alike).
      const int rope = layer_rope_[l];
      const int64_t half = static_cast<int64_t>(inv_freq_[rope].size());
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < N * KV; ++i) {
        const int64_t t = i / KV;
        PrepareHeads(qkvp + t * row, l, i % KV, cos_[rope].data() + t * half, sin_[rope].data() + t * half);
      }
      pl.kv_heads = kv_heads_[l].data();
      WriteKvCacheCpu(pl, qkvp + H * D, qkvp + (H + KV) * D, row);
      PagedAttentionCpu(pl, qkvp, row, scale, attnp);
      if (ex.o_bias.defined() || ex.attn_out_scale.defined()) {
        Linear(attnp, N, H * D, l, Proj::kO, bp, E, false);
        join(ex.o_bias, ex.attn_out_scale);
      } else {
        Linear(attnp, N, H * D, l, Proj::kO, xp, E, true);  // x += attn @ o^T
      }

      norm(ex.post_scale);
      Linear(hp, N, E, l, Proj::kGateUp, gup, 2 * F, false);
      if (ex.gate_up_bias.defined()) {
        const float* b = ex.gate_up_bias.data_ptr<float>();
#pragma omp for schedule(static)
        for (int64_t t = 0; t < N; ++t) {
#pragma omp simd
          for (int64_t i = 0; i < 2 * F; ++i) gup[t * 2 * F + i] += b[i];
        }
      }
      GatedActivation(gup, N, F, arch.activation, actp);
      if (ex.down_bias.defined() || ex.mlp_out_scale.defined()) {
        Linear(actp, N, F, l, Proj::kDown, bp, E, false);
        join(ex.down_bias, ex.mlp_out_scale);
      } else {
        Linear(actp, N, F, l, Proj::kDown, xp, E, true);  // x += act(gate) * up @ down^T
      }
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < L; ++i) {
      RmsNormRows(xp + in.logits_rows[i] * E, final_scale_.data_ptr<float>(), 1, E, eps, lastp + i * E, E);
    }
    Linear(lastp, L, E, -1, Proj::kLmHead, logitsp, V, false);
    if (arch.final_softcap > 0) {
      constexpr int64_t kChunk = 4096;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < L * V; i += kChunk) {
        SoftCap(logitsp + i, std::min(kChunk, L * V - i), arch.final_softcap);
      }
    }
  };
  if (team) {
#pragma omp parallel
    layers();
  } else {
    layers();
  }
  return logits;  // [num_logits, V]
}

}  // namespace mswa
