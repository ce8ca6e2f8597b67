// Baselines on this machine: matmul FLOP/s (proves OpenBLAS is in use; the reference BLAS gives
// ~8 GFLOP/s on two cores) and the dense reference forward's tokens/s on a default-sized model.
//   build/bench/reference_forward_bench
#include <benchmark/benchmark.h>

#include "model/runtime/reference_forward.h"
#include "bench/default_shape.h"

namespace mswa {
namespace {

void BM_Matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(at::matmul(a, b));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Matmul)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);

void BM_ReferenceForward(benchmark::State& state) {
  const ModelConfig c = DefaultShapeConfig();
  ModelWeights w = RandomModelWeights(c, 0);
  std::vector<int32_t> tokens(state.range(0));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i % 256);
  for (auto _ : state) benchmark::DoNotOptimize(ReferenceForward(w, c, tokens));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens.size()),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ReferenceForward)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mswa

BENCHMARK_MAIN();
