// engine_bench --model_dir: a llama-bench-style table (pp512, tg128, batched decode, scoring)
// for any model directory the server loads, each figure beside the DRAM roofline of its weights
// or the matmul FLOP/s measured in the same run.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "kernels/paged_attention.h"
#include "kernels/small_linear.h"

namespace mswa {

struct DirBenchOptions {
  std::string model_dir;
  std::optional<at::ScalarType> dtype;
  std::optional<at::ScalarType> activation_dtype;
  std::optional<KvDType> kv_dtype;
  int threads = 0;
  std::vector<int> batches = {8, 32};
  Int8Kernel int8_kernel = Int8Kernel::kAuto;
  Bf16DotKernel bf16_kernel = Bf16DotKernel::kAuto;
  F32Layout f32_layout = F32Layout::kAuto;
  // Which rows to measure (all by default; a subset for profiling one of them).
  std::vector<std::string> tests = {"pp512", "tg128", "batches", "score2048"};
  int repetitions = 3;  // pp512 is the best of this many prompts
  // Tokens of context before each decode row (llama-bench's -d): 0 decodes after a 16-token
  // prompt; N > 0 after an N-token one, prefilled untimed.
  int depth = 0;

  bool Runs(absl::string_view test) const { return std::find(tests.begin(), tests.end(), test) != tests.end(); }
};

extern const char kDirUsage[];

// Runs the table's rows for `opt`; returns the process exit code (errors on stderr).
int RunModelDir(const DirBenchOptions& opt);

}  // namespace mswa
