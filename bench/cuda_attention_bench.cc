// The CUDA paged MSWA kernels' figures (fp16 KV, 32 query / 8 KV heads, head_dim 128, 16-token
// blocks scattered at random over the pool):
//   decode   bytes of K and V inside the windows / time, beside a device-to-device cudaMemcpy
//            measured in the same run (its read + write bytes / time): the fraction of the
//            bandwidth the GPU can move at all.
//   prefill  TFLOP/s on the work inside the windows (QK and PV, 4 * head_dim flops per visible
//            query-key pair).
// Usage: cuda_attention_bench [--quick]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/paged_attention_cuda.h"

namespace {

using namespace mswa;

constexpr int64_t kQHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlock = 16, kElem = 2;  // fp16

#define CHECK_CUDA(expr)                                                                  \
  do {                                                                                    \
    const cudaError_t err_ = (expr);                                                      \
    if (err_ != cudaSuccess) {                                                            \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(err_)); \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)
#define CHECK_KERNEL(expr)                                                  \
  do {                                                                      \
    const std::string err_ = (expr);                                        \
    if (!err_.empty()) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, err_.c_str()); \
      std::exit(1);                                                         \
    }                                                                       \
  } while (0)

template <typename T>
T* Upload(const std::vector<T>& host) {
  T* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, std::max<size_t>(1, host.size() * sizeof(T))));
  CHECK_CUDA(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// Mean milliseconds of fn() over `iters` runs after 3 warm-ups.
template <typename F>
double TimeMs(F&& fn, int iters) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  CHECK_CUDA(cudaEventRecord(a));
  for (int i = 0; i < iters; ++i) fn();
  CHECK_CUDA(cudaEventRecord(b));
  CHECK_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
  CHECK_CUDA(cudaEventDestroy(a));
  CHECK_CUDA(cudaEventDestroy(b));
  return ms / iters;
}

// One window group holding every KV head, `seqs` sequences of `ring` blocks each, block ids
// shuffled over the pool; pools filled with ~1.0 in fp16 (0x3c3c).
struct Cache {
  void* k = nullptr;
  void* v = nullptr;
  PagedKvParams params;
  std::vector<void*> owned;

  Cache(int64_t seqs, int64_t ring, int64_t window, std::mt19937& rng) {
    const int64_t blocks = seqs * ring;
    const size_t bytes = static_cast<size_t>(blocks * kKvHeads * kBlock * kHeadDim * kElem);
    CHECK_CUDA(cudaMalloc(&k, bytes));
    CHECK_CUDA(cudaMalloc(&v, bytes));
    CHECK_CUDA(cudaMemset(k, 0x3c, bytes));
    CHECK_CUDA(cudaMemset(v, 0x3c, bytes));
    std::vector<int32_t> tables(blocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), rng);
    std::vector<KvHeadDesc> heads;
    for (int32_t h = 0; h < kKvHeads; ++h) heads.push_back(KvHeadDesc{window, 0, h});
    const std::vector<KvPoolView> pools = {KvPoolView{k, v, blocks, kKvHeads}};
    params.num_q_heads = kQHeads;
    params.num_kv_heads = kKvHeads;
    params.head_dim = kHeadDim;
    params.block_size = kBlock;
    params.block_tables = Keep(Upload(tables));
    params.table_stride = ring;
    params.table_offsets = Keep(Upload(std::vector<int64_t>{0}));
    params.ring_sizes = Keep(Upload(std::vector<int64_t>{ring}));
    params.kv_heads = Keep(Upload(heads));
    params.pools = Keep(Upload(pools));
    params.num_groups = 1;
    params.kv_dtype = KvDType::kF16;
  }
  ~Cache() {
    cudaFree(k);
    cudaFree(v);
    for (void* p : owned) cudaFree(p);
  }
  template <typename T>
  T* Keep(T* p) {
    owned.push_back(const_cast<void*>(static_cast<const void*>(p)));
    return p;
  }
};

// Device-to-device copy bandwidth (bytes read + written per second) of a 1 GiB buffer.
double MemcpyBytesPerSecond() {
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  CHECK_CUDA(cudaMemset(a, 1, bytes));
  const double ms = TimeMs([&] { CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice)); }, 10);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (ms * 1e-3);
}

void Decode(int64_t batch, int64_t window, double memcpy_bps, int sms, std::mt19937& rng) {
  const int64_t ring = (window + kBlock - 1) / kBlock + 1;  // a full window plus the newest token's block
  Cache cache(batch, ring, window, rng);
  const int64_t pos = 2 * window + 5;  // past the first window: the ring has wrapped
  std::vector<int64_t> positions(batch, pos);
  std::vector<int32_t> seqs(batch);
  std::iota(seqs.begin(), seqs.end(), 0);
  PagedKvParams p = cache.params;
  p.num_tokens = batch;
  p.positions = cache.Keep(Upload(positions));
  p.seq_index = cache.Keep(Upload(seqs));
  void *q = nullptr, *out = nullptr, *ws = nullptr;
  CHECK_CUDA(cudaMalloc(&q, batch * kQHeads * kHeadDim * kElem));
  CHECK_CUDA(cudaMalloc(&out, batch * kQHeads * kHeadDim * kElem));
  CHECK_CUDA(cudaMemset(q, 0x30, batch * kQHeads * kHeadDim * kElem));
  const cuda::DecodePlan plan = cuda::PlanDecode(batch, kQHeads, kKvHeads, kHeadDim, window, sms);
  if (plan.workspace_bytes > 0) CHECK_CUDA(cudaMalloc(&ws, plan.workspace_bytes));
  const double ms = TimeMs(
      [&] { CHECK_KERNEL(cuda::PagedDecode(p, q, kQHeads * kHeadDim, 0.088f, out, plan, ws, nullptr)); }, 20);
  const double bytes = 2.0 * batch * kKvHeads * window * kHeadDim * kElem;  // K and V in the windows
  const double bps = bytes / (ms * 1e-3);
  std::printf("decode   batch %4ld  window %5ld  splits %2d  %9.1f us  %7.1f GB/s  %5.2f of memcpy\n",
              static_cast<long>(batch), static_cast<long>(window), plan.num_splits, ms * 1e3, bps / 1e9,
              bps / memcpy_bps);
  cudaFree(q);
  cudaFree(out);
  cudaFree(ws);
}

void Prefill(int64_t length, int64_t window, std::mt19937& rng) {
  const int64_t ring = (window - 1 + length + kBlock - 1) / kBlock + 1;
  Cache cache(1, ring, window, rng);
  std::vector<int64_t> positions(length);
  std::iota(positions.begin(), positions.end(), 0);
  PagedKvParams p = cache.params;
  p.num_tokens = length;
  p.positions = cache.Keep(Upload(positions));
  p.seq_index = cache.Keep(Upload(std::vector<int32_t>(length, 0)));
  const int32_t* starts = cache.Keep(Upload(std::vector<int32_t>{0, static_cast<int32_t>(length)}));
  void *q = nullptr, *out = nullptr;
  CHECK_CUDA(cudaMalloc(&q, length * kQHeads * kHeadDim * kElem));
  CHECK_CUDA(cudaMalloc(&out, length * kQHeads * kHeadDim * kElem));
  CHECK_CUDA(cudaMemset(q, 0x30, length * kQHeads * kHeadDim * kElem));
  const cuda::PrefillBatch batch{starts, 1, static_cast<int32_t>(length)};
  const double ms = TimeMs(
      [&] { CHECK_KERNEL(cuda::PagedPrefill(p, batch, q, kQHeads * kHeadDim, 0.088f, out, nullptr)); }, 5);
  double pairs = 0;  // visible (query, key) pairs per head
  for (int64_t t = 0; t < length; ++t) pairs += static_cast<double>(std::min(window, t + 1));
  const double flops = 4.0 * kHeadDim * pairs * kQHeads;
  std::printf("prefill  length %5ld  window %5ld  %9.3f ms  %7.2f TFLOP/s\n", static_cast<long>(length),
              static_cast<long>(window), ms, flops / (ms * 1e-3) / 1e12);
  cudaFree(q);
  cudaFree(out);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (cuda::DeviceCount() == 0) {
    std::printf("cuda_attention_bench: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const int sms = cuda::DeviceSmCount();
  std::printf("device: %s, %d SMs; fp16 KV, %ld query / %ld KV heads, head_dim %ld, block %ld\n", prop.name, sms,
              static_cast<long>(kQHeads), static_cast<long>(kKvHeads), static_cast<long>(kHeadDim),
              static_cast<long>(kBlock));
  const double memcpy_bps = MemcpyBytesPerSecond();
  std::printf("memcpy   device to device: %.1f GB/s (read + write)\n", memcpy_bps / 1e9);
  std::mt19937 rng(1);
  const std::vector<int64_t> batches = quick ? std::vector<int64_t>{1, 16} : std::vector<int64_t>{1, 16, 64, 256};
  const std::vector<int64_t> windows =
      quick ? std::vector<int64_t>{64, 1024} : std::vector<int64_t>{64, 256, 1024, 4096, 8192};
  for (int64_t b : batches) {
    for (int64_t w : windows) Decode(b, w, memcpy_bps, sms, rng);
  }
  for (int64_t len : quick ? std::vector<int64_t>{1024} : std::vector<int64_t>{2048, 8192}) {
    for (int64_t w : {int64_t{512}, int64_t{4096}}) Prefill(len, w, rng);
  }
  return 0;
}
