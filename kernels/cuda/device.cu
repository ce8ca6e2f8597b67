#include "kernels/cuda/device.h"

#include <cuda_runtime.h>

#include "kernels/window.h"

namespace mswa::cuda {
namespace {

__global__ void WindowPredicateKernel(const int64_t* q_pos, const int64_t* k_pos,
                                      const int64_t* window, int64_t n, bool* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = InWindow(q_pos[i], k_pos[i], window[i]);
}

}  // namespace

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

int DeviceSmCount() {
  int device = 0, count = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string EvalWindowPredicateOnDevice(const int64_t* q_pos, const int64_t* k_pos,
                                        const int64_t* window, int64_t n, bool* out) {
  int64_t* d_in = nullptr;
  bool* d_out = nullptr;
  const size_t bytes = static_cast<size_t>(n) * sizeof(int64_t);
  cudaError_t err = cudaMalloc(&d_in, 3 * bytes);
  if (err == cudaSuccess) err = cudaMalloc(&d_out, static_cast<size_t>(n) * sizeof(bool));
  if (err == cudaSuccess) err = cudaMemcpy(d_in, q_pos, bytes, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(d_in + n, k_pos, bytes, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(d_in + 2 * n, window, bytes, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && n > 0) {
    const int threads = 256;
    const int blocks = static_cast<int>((n + threads - 1) / threads);
    WindowPredicateKernel<<<blocks, threads>>>(d_in, d_in + n, d_in + 2 * n, n, d_out);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) {
    err = cudaMemcpy(out, d_out, static_cast<size_t>(n) * sizeof(bool), cudaMemcpyDeviceToHost);
  }
  cudaFree(d_in);
  cudaFree(d_out);
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

}  // namespace mswa::cuda
