// Small CUDA runtime helpers shared by the CUDA kernels' tests and the engine's device choice.
// Plain C++ interface: callers need no CUDA headers.
#pragma once

#include <cstdint>
#include <string>

namespace mswa::cuda {

// CUDA devices usable by this process; 0 when there is no driver or no device (never fails).
int DeviceCount();

// Multiprocessors of the current device (sizes PlanDecode's splits); 0 without a device.
int DeviceSmCount();

// Evaluates InWindow(q_pos[i], k_pos[i], window[i]) on device 0 into out[i], for the n entries of
// the host arrays, so tests can check that host and device share the one window predicate.
// Returns "" on success, else the CUDA error text.
std::string EvalWindowPredicateOnDevice(const int64_t* q_pos, const int64_t* k_pos,
                                        const int64_t* window, int64_t n, bool* out);

}  // namespace mswa::cuda
