#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "kernels/cuda/paged_attention_cuda.h"
#include "kernels/window.h"

namespace mswa::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// fp32 <-> storage type.
__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ float FromFloat<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// The block holding `pos` of sequence `seq` in window group `group` (ring tables, see
// kernels/paged_attention.h).
__device__ __forceinline__ int64_t BlockOf(const PagedKvParams& p, int32_t seq, int32_t group, int64_t pos) {
  return p.block_tables[static_cast<int64_t>(seq) * p.table_stride + p.table_offsets[group] +
                        (pos / p.block_size) % p.ring_sizes[group]];
}

// Element offset of the row (block, group_head, slot) in a pool.
__device__ __forceinline__ int64_t RowOffset(const PagedKvParams& p, const KvPoolView& pool, int64_t block,
                                             int32_t group_head, int64_t slot) {
  return ((block * pool.num_heads + group_head) * p.block_size + slot) * p.head_dim;
}

// Loads N consecutive elements as fp32, with one vector load when N * sizeof(T) is 4, 8 or 16
// bytes (rows start at multiples of head_dim elements, so such runs are aligned).
template <typename T, int N>
__device__ __forceinline__ void LoadRow(const T* src, float (&dst)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  if constexpr (kBytes == 16 || kBytes == 8 || kBytes == 4) {
    using Vec = std::conditional_t<kBytes == 16, uint4, std::conditional_t<kBytes == 8, uint2, uint32_t>>;
    Vec raw = *reinterpret_cast<const Vec*>(src);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = ToFloat(e[i]);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = ToFloat(src[i]);
  }
}

__device__ __forceinline__ int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float WarpSum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// ---- cache write ------------------------------------------------------------------------------

template <typename T>
__global__ void WriteKvCacheKernel(PagedKvParams p, const T* k, const T* v, int64_t row_stride) {
  const int64_t t = blockIdx.x;
  const int32_t h = blockIdx.y;
  const KvHeadDesc head = p.kv_heads[h];
  const KvPoolView pool = p.pools[head.group];
  const int64_t pos = p.positions[t];
  const int64_t block = BlockOf(p, p.seq_index[t], head.group, pos);
  const int64_t dst = RowOffset(p, pool, block, head.group_head, pos % p.block_size);
  const int64_t src = t * row_stride + static_cast<int64_t>(h) * p.head_dim;
  T* pk = static_cast<T*>(pool.k);
  T* pv = static_cast<T*>(pool.v);
  for (int64_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    pk[dst + d] = k[src + d];
    pv[dst + d] = v[src + d];
  }
}

// ---- decode -----------------------------------------------------------------------------------

constexpr int kDecodeWarps = 4;
constexpr int kMaxQPerBlock = 8;  // query heads of one KV head per thread block

// Thread block (token, KV head, query-head chunk x split). Each warp takes every kDecodeWarps-th
// key of the split's range; a lane holds D / 32 dims of a K/V row and of each query. Scores are
// in log2 units (q pre-scaled by scale * log2 e) so exp2f does the softmax.
template <typename T, int D>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    DecodeKernel(PagedKvParams p, const T* q, int64_t q_row_stride, float scale_log2, T* out, int32_t num_splits,
                 float* ws_acc, float* ws_ml) {
  constexpr int E = D / 32;
  const int64_t t = blockIdx.x;
  const int32_t kvh = blockIdx.y;
  const int32_t chunk = blockIdx.z / num_splits;
  const int32_t split = blockIdx.z % num_splits;
  const int32_t group = static_cast<int32_t>(p.num_q_heads / p.num_kv_heads);
  const int32_t q0 = kvh * group + chunk * kMaxQPerBlock;
  const int32_t nq = min(kMaxQPerBlock, group - chunk * kMaxQPerBlock);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  const KvHeadDesc head = p.kv_heads[kvh];
  const KvPoolView pool = p.pools[head.group];
  const int32_t seq = p.seq_index[t];
  const int64_t pos = p.positions[t];
  const int64_t oldest = OldestVisible(pos, head.window);
  const int64_t per_split = (pos - oldest + num_splits) / num_splits;  // ceil(keys / splits)
  const int64_t first = oldest + split * per_split;
  const int64_t last = Min64(pos, first + per_split - 1);  // < first: this split has no keys

  float qr[kMaxQPerBlock][E], acc[kMaxQPerBlock][E], m[kMaxQPerBlock], l[kMaxQPerBlock];
#pragma unroll
  for (int h = 0; h < kMaxQPerBlock; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[h][e] = qr[h][e] = 0.f;
    if (h < nq) {
      LoadRow<T, E>(q + t * q_row_stride + static_cast<int64_t>(q0 + h) * D + lane * E, qr[h]);
#pragma unroll
      for (int e = 0; e < E; ++e) qr[h][e] *= scale_log2;
    }
  }
  const T* pk = static_cast<const T*>(pool.k);
  const T* pv = static_cast<const T*>(pool.v);
#pragma unroll 2
  for (int64_t key = first + warp; key <= last; key += kDecodeWarps) {
    const int64_t row = RowOffset(p, pool, BlockOf(p, seq, head.group, key), head.group_head, key % p.block_size) +
                        lane * E;
    float kr[E], vr[E];
    LoadRow<T, E>(pk + row, kr);
    LoadRow<T, E>(pv + row, vr);
#pragma unroll
    for (int h = 0; h < kMaxQPerBlock; ++h) {
      if (h >= nq) break;  // uniform across the block
      float s = 0.f;
#pragma unroll
      for (int e = 0; e < E; ++e) s += qr[h][e] * kr[e];
      s = WarpSum(s);
      const float m_new = fmaxf(m[h], s);  // finite: every key in range is visible
      const float corr = exp2f(m[h] - m_new);  // 0 for the first key (m = -inf)
      const float pr = exp2f(s - m_new);
      l[h] = l[h] * corr + pr;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[h][e] = acc[h][e] * corr + pr * vr[e];
      m[h] = m_new;
    }
  }

  // Merge the warps' partials.
  __shared__ float sm_m[kDecodeWarps][kMaxQPerBlock], sm_l[kDecodeWarps][kMaxQPerBlock];
  __shared__ float sm_acc[kDecodeWarps][kMaxQPerBlock][D];
#pragma unroll
  for (int h = 0; h < kMaxQPerBlock; ++h) {
    if (h >= nq) break;
    if (lane == 0) {
      sm_m[warp][h] = m[h];
      sm_l[warp][h] = l[h];
    }
#pragma unroll
    for (int e = 0; e < E; ++e) sm_acc[warp][h][lane * E + e] = acc[h][e];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nq * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float mx = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, sm_m[w][h]);
    float sum = 0.f, a = 0.f;
    if (mx != -INFINITY) {
      for (int w = 0; w < kDecodeWarps; ++w) {
        if (sm_m[w][h] == -INFINITY) continue;  // a warp that saw no key
        const float f = exp2f(sm_m[w][h] - mx);
        sum += sm_l[w][h] * f;
        a += sm_acc[w][h][d] * f;
      }
    }
    const int64_t row = t * p.num_q_heads + q0 + h;  // [token, query head]
    if (num_splits == 1) {
      out[row * D + d] = FromFloat<T>(sum > 0.f ? a / sum : 0.f);
    } else {
      const int64_t part = row * num_splits + split;
      ws_acc[part * D + d] = a;
      if (d == 0) {
        ws_ml[2 * part] = mx;
        ws_ml[2 * part + 1] = sum;
      }
    }
  }
}

// out[row] = the log-sum-exp merge of the row's split partials. Thread block per row.
template <typename T>
__global__ void MergeSplitsKernel(int32_t num_splits, int64_t head_dim, const float* ws_acc, const float* ws_ml,
                                  T* out) {
  const int64_t row = blockIdx.x;
  const float* ml = ws_ml + 2 * row * num_splits;
  float mx = -INFINITY;
  for (int s = 0; s < num_splits; ++s) mx = fmaxf(mx, ml[2 * s]);
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.f, a = 0.f;
    if (mx != -INFINITY) {
      for (int s = 0; s < num_splits; ++s) {
        if (ml[2 * s] == -INFINITY) continue;  // a split with no keys
        const float f = exp2f(ml[2 * s] - mx);
        sum += ml[2 * s + 1] * f;
        a += ws_acc[(row * num_splits + s) * head_dim + d] * f;
      }
    }
    out[row * head_dim + d] = FromFloat<T>(sum > 0.f ? a / sum : 0.f);
  }
}

// ---- prefill ----------------------------------------------------------------------------------

constexpr int kTileQ = 64;   // queries per thread block
constexpr int kTileK = 32;   // keys per step
constexpr int kPrefillThreads = 128;  // two threads per query row

template <int D>
constexpr int PrefillSmemFloats() {
  return kTileQ * (D + 1) + kTileK * (D + 1) + kTileK * D + kTileQ * (kTileK + 1);
}

// Thread block (query tile of one sequence, sequence, query head). Thread 2r + c owns query row
// r: it scores key columns [16c, 16c + 16) of each key tile and accumulates output dims
// [c D/2, (c + 1) D/2). Shared rows are padded by one float against bank conflicts.
template <typename T, int D>
__global__ void __launch_bounds__(kPrefillThreads)
    PrefillKernel(PagedKvParams p, const int32_t* query_starts, const T* q, int64_t q_row_stride, float scale_log2,
                  T* out) {
  constexpr int kHalfD = D / 2, kCols = kTileK / 2;
  extern __shared__ float smem[];
  float* sq = smem;                            // [kTileQ][D + 1]
  float* sk = sq + kTileQ * (D + 1);           // [kTileK][D + 1]
  float* sv = sk + kTileK * (D + 1);           // [kTileK][D]
  float* sp = sv + kTileK * D;                 // [kTileQ][kTileK + 1]
  __shared__ int64_t key_rows[kTileK];

  const int32_t s = blockIdx.y;
  const int32_t h = blockIdx.z;
  const int64_t begin = query_starts[s], len = query_starts[s + 1] - begin;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.x) * kTileQ;
  if (tile0 >= len) return;
  const int64_t rows = Min64(kTileQ, len - tile0);
  const int32_t kvh = static_cast<int32_t>(h / (p.num_q_heads / p.num_kv_heads));
  const KvHeadDesc head = p.kv_heads[kvh];
  const KvPoolView pool = p.pools[head.group];
  const int32_t seq = p.seq_index[begin];
  const int64_t first_pos = p.positions[begin + tile0];
  const int64_t last_pos = p.positions[begin + tile0 + rows - 1];
  const int64_t lo = OldestVisible(first_pos, head.window);  // keys below are seen by no row

  for (int i = threadIdx.x; i < kTileQ * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    sq[r * (D + 1) + d] =
        r < rows ? ToFloat(q[(begin + tile0 + r) * q_row_stride + static_cast<int64_t>(h) * D + d]) * scale_log2 : 0.f;
  }
  const int r = threadIdx.x / 2, c = threadIdx.x % 2;
  const bool row_valid = r < rows;
  const int64_t q_pos = row_valid ? p.positions[begin + tile0 + r] : -1;
  float m = -INFINITY, l = 0.f, acc[kHalfD];
#pragma unroll
  for (int d = 0; d < kHalfD; ++d) acc[d] = 0.f;
  const T* pk = static_cast<const T*>(pool.k);
  const T* pv = static_cast<const T*>(pool.v);

  for (int64_t k0 = lo; k0 <= last_pos; k0 += kTileK) {
    __syncthreads();  // the previous tile's sk/sv/sp are consumed
    if (threadIdx.x < kTileK) {
      const int64_t key = k0 + threadIdx.x;
      key_rows[threadIdx.x] =
          key <= last_pos ? RowOffset(p, pool, BlockOf(p, seq, head.group, key), head.group_head, key % p.block_size)
                          : -1;  // past the last query: not loaded (its block may not exist)
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kTileK * D; i += blockDim.x) {
      const int j = i / D, d = i % D;
      const int64_t row = key_rows[j];
      sk[j * (D + 1) + d] = row >= 0 ? ToFloat(pk[row + d]) : 0.f;
      sv[j * D + d] = row >= 0 ? ToFloat(pv[row + d]) : 0.f;
    }
    __syncthreads();

    float sc[kCols];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const int col = c * kCols + j;
      const int64_t key = k0 + col;
      float dot = 0.f;
#pragma unroll 8
      for (int d = 0; d < D; ++d) dot += sq[r * (D + 1) + d] * sk[col * (D + 1) + d];
      sc[j] = row_valid && key <= last_pos && InWindow(q_pos, key, head.window) ? dot : -INFINITY;
      tile_max = fmaxf(tile_max, sc[j]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));  // the row's other half
    const float m_new = fmaxf(m, tile_max);
    // A row with nothing visible yet keeps m = -inf; use 0 so exp2f gives 0, not NaN.
    const float base = m_new == -INFINITY ? 0.f : m_new;
    const float corr = exp2f(m - base);
    float psum = 0.f;
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const float pr = exp2f(sc[j] - base);  // 0 for masked keys
      sp[r * (kTileK + 1) + c * kCols + j] = pr;
      psum += pr;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    l = l * corr + psum;
    m = m_new;
    __syncthreads();  // the partner's probabilities are in sp
#pragma unroll
    for (int d = 0; d < kHalfD; ++d) acc[d] *= corr;
    for (int j = 0; j < kTileK; ++j) {
      const float pr = sp[r * (kTileK + 1) + j];
      if (pr == 0.f) continue;  // masked (or underflowed): V is never multiplied in
#pragma unroll
      for (int d = 0; d < kHalfD; ++d) acc[d] += pr * sv[j * D + c * kHalfD + d];
    }
  }
  if (row_valid) {
    T* o = out + ((begin + tile0 + r) * p.num_q_heads + h) * D + c * kHalfD;
#pragma unroll
    for (int d = 0; d < kHalfD; ++d) o[d] = FromFloat<T>(l > 0.f ? acc[d] / l : 0.f);
  }
}

// ---- dispatch ---------------------------------------------------------------------------------

template <typename F>
std::string DispatchType(KvDType type, F&& f) {
  switch (type) {
    case KvDType::kF32:
      return f(float{});
    case KvDType::kF16:
      return f(__half{});
    case KvDType::kBF16:
      return f(__nv_bfloat16{});
  }
  return "unknown KV dtype";
}

template <typename F>
std::string DispatchHeadDim(int64_t head_dim, F&& f) {
  switch (head_dim) {
    case 32:
      return f(std::integral_constant<int, 32>{});
    case 64:
      return f(std::integral_constant<int, 64>{});
    case 96:
      return f(std::integral_constant<int, 96>{});
    case 128:
      return f(std::integral_constant<int, 128>{});
    case 256:
      return f(std::integral_constant<int, 256>{});
  }
  return "head_dim " + std::to_string(head_dim) + " has no CUDA kernel (32, 64, 96, 128 or 256)";
}

std::string LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

std::string CheckShape(const PagedKvParams& p) {
  if (p.num_kv_heads <= 0 || p.num_q_heads % p.num_kv_heads != 0) {
    return "num_q_heads must be a positive multiple of num_kv_heads";
  }
  if (p.num_kv_heads > 65535) return "at most 65535 KV heads";
  if (!SupportedHeadDim(p.head_dim)) {
    return "head_dim " + std::to_string(p.head_dim) + " has no CUDA kernel (32, 64, 96, 128 or 256)";
  }
  return "";
}

}  // namespace

bool SupportedHeadDim(int64_t d) { return d == 32 || d == 64 || d == 96 || d == 128 || d == 256; }

std::string WriteKvCache(const PagedKvParams& p, const void* k, const void* v, int64_t row_stride, void* stream) {
  if (std::string e = CheckShape(p); !e.empty()) return e;
  if (p.num_tokens == 0) return "";
  return DispatchType(p.kv_dtype, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>(p.num_kv_heads));
    const int threads = static_cast<int>(std::min<int64_t>(128, (p.head_dim + 31) / 32 * 32));
    WriteKvCacheKernel<T><<<grid, threads, 0, static_cast<cudaStream_t>(stream)>>>(
        p, static_cast<const T*>(k), static_cast<const T*>(v), row_stride);
    return LastError();
  });
}

DecodePlan PlanDecode(int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                      int64_t max_keys, int sm_count) {
  if (num_tokens <= 0 || num_kv_heads <= 0) return DecodePlan{};
  const int64_t chunks = (num_q_heads / num_kv_heads + kMaxQPerBlock - 1) / kMaxQPerBlock;
  const int64_t blocks = num_tokens * num_kv_heads * chunks;
  const int64_t wanted = 4 * static_cast<int64_t>(std::max(sm_count, 1));  // a few blocks per SM
  const int64_t by_keys = std::max<int64_t>(1, max_keys / 256);
  const int64_t by_device = (wanted + blocks - 1) / blocks;
  return DecodePlanWithSplits(num_tokens, num_q_heads, head_dim,
                              static_cast<int32_t>(std::clamp<int64_t>(std::min(by_keys, by_device), 1, 64)));
}

DecodePlan DecodePlanWithSplits(int64_t num_tokens, int64_t num_q_heads, int64_t head_dim, int32_t num_splits) {
  DecodePlan plan;
  plan.num_splits = std::max(num_splits, 1);
  if (plan.num_splits > 1) {
    // Accumulators [tokens, q heads, splits, head_dim], then (max, sum) pairs.
    plan.workspace_bytes = num_tokens * num_q_heads * plan.num_splits * (head_dim + 2) * static_cast<int64_t>(sizeof(float));
  }
  return plan;
}

std::string PagedDecode(const PagedKvParams& p, const void* q, int64_t q_row_stride, float scale, void* out,
                        const DecodePlan& plan, void* workspace, void* stream) {
  if (std::string e = CheckShape(p); !e.empty()) return e;
  if (p.num_tokens == 0) return "";
  if (plan.num_splits < 1) return "num_splits must be >= 1";
  if (plan.num_splits > 1 && workspace == nullptr) return "a split decode needs its workspace";
  const int64_t group = p.num_q_heads / p.num_kv_heads;
  const int64_t chunks = (group + kMaxQPerBlock - 1) / kMaxQPerBlock;
  if (chunks * plan.num_splits > 65535) return "too many query heads per KV head times splits";
  auto* ws_acc = static_cast<float*>(workspace);
  float* ws_ml = ws_acc == nullptr ? nullptr : ws_acc + p.num_tokens * p.num_q_heads * plan.num_splits * p.head_dim;
  const auto s = static_cast<cudaStream_t>(stream);
  return DispatchType(p.kv_dtype, [&](auto tag) {
    using T = decltype(tag);
    return DispatchHeadDim(p.head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>(p.num_kv_heads),
                      static_cast<unsigned>(chunks * plan.num_splits));
      DecodeKernel<T, D><<<grid, kDecodeWarps * 32, 0, s>>>(p, static_cast<const T*>(q), q_row_stride,
                                                             scale * kLog2e, static_cast<T*>(out), plan.num_splits,
                                                             ws_acc, ws_ml);
      if (plan.num_splits > 1) {
        MergeSplitsKernel<T><<<static_cast<unsigned>(p.num_tokens * p.num_q_heads), std::min(D, 128), 0, s>>>(
            plan.num_splits, D, ws_acc, ws_ml, static_cast<T*>(out));
      }
      return LastError();
    });
  });
}

std::string PagedPrefill(const PagedKvParams& p, const PrefillBatch& batch, const void* q, int64_t q_row_stride,
                         float scale, void* out, void* stream) {
  if (std::string e = CheckShape(p); !e.empty()) return e;
  if (batch.num_seqs == 0 || batch.max_query_len == 0) return "";
  if (batch.num_seqs > 65535 || p.num_q_heads > 65535) return "at most 65535 sequences and query heads a call";
  return DispatchType(p.kv_dtype, [&](auto tag) {
    using T = decltype(tag);
    return DispatchHeadDim(p.head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      constexpr int kSmem = PrefillSmemFloats<D>() * static_cast<int>(sizeof(float));
      // Above 48 KiB a kernel must opt in (per device, so on every call: it costs microseconds).
      const cudaError_t opt_in =
          cudaFuncSetAttribute(PrefillKernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
      if (opt_in != cudaSuccess) return std::string(cudaGetErrorString(opt_in));
      const dim3 grid(static_cast<unsigned>((batch.max_query_len + kTileQ - 1) / kTileQ),
                      static_cast<unsigned>(batch.num_seqs), static_cast<unsigned>(p.num_q_heads));
      PrefillKernel<T, D><<<grid, kPrefillThreads, kSmem, static_cast<cudaStream_t>(stream)>>>(
          p, batch.query_starts, static_cast<const T*>(q), q_row_stride, scale * kLog2e, static_cast<T*>(out));
      return LastError();
    });
  });
}

}  // namespace mswa::cuda
