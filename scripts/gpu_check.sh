#!/usr/bin/env bash
# The CUDA kernels on a GPU machine that has the CUDA Toolkit, CMake, Ninja and a C++ compiler but
# no gRPC, Abseil or GoogleTest install: a kernels-only build (MSWA_BUILD_MODEL=OFF) with
# GoogleTest built from source, then the GPU tests, compute-sanitizer memcheck over them, and the
# kernel benchmark. Results (test logs, benchmark figures) go to OUT_DIR.
#
#   scripts/gpu_check.sh --prepare     (on a machine with Debian's googletest package: copies its
#                                       sources to .deps/googletest to take along)
#   scripts/gpu_check.sh [OUT_DIR]     (on the GPU machine; default build-gpu/results)
#
# GoogleTest sources: $GTEST_SOURCE_DIR, else .deps/googletest, else /usr/src/googletest.
# CUDA architectures: $CUDA_ARCHS (default: the GPU's own, "native").
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  [ -f /usr/src/googletest/CMakeLists.txt ] || { echo "no /usr/src/googletest (apt-get install googletest)" >&2; exit 1; }
  rm -rf .deps/googletest && mkdir -p .deps && cp -r /usr/src/googletest .deps/googletest
  echo "copied GoogleTest sources to .deps/googletest"
  exit 0
fi

OUT=${1:-build-gpu/results}
mkdir -p "$OUT"
GTEST=""
for d in "${GTEST_SOURCE_DIR:-}" .deps/googletest /usr/src/googletest; do
  if [ -n "$d" ] && [ -f "$d/CMakeLists.txt" ]; then GTEST=$(cd "$d" && pwd); break; fi
done
[ -n "$GTEST" ] || { echo "no GoogleTest sources: set GTEST_SOURCE_DIR or run --prepare" >&2; exit 1; }
NVCC=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
GENERATOR=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")

cmake -S . -B build-gpu -G "$GENERATOR" -DCMAKE_BUILD_TYPE=Release -DMSWA_BUILD_MODEL=OFF -DMSWA_CUDA=ON \
  -DMSWA_GTEST_SOURCE_DIR="$GTEST" -DCMAKE_CUDA_COMPILER="$NVCC" \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-native}" > "$OUT/configure.log"
cmake --build build-gpu -j "$(nproc)" --target kernels_test kernels_cuda_test cuda_attention_bench > "$OUT/build.log"

status=0
build-gpu/tests/kernels_test > "$OUT/kernels_test.log" 2>&1 || status=1
build-gpu/tests/kernels_cuda_test > "$OUT/kernels_cuda_test.log" 2>&1 || status=1
tail -3 "$OUT/kernels_cuda_test.log"
SANITIZER=$(command -v compute-sanitizer || ls "$(dirname "$NVCC")"/compute-sanitizer "$(dirname "$NVCC")"/../compute-sanitizer/compute-sanitizer 2>/dev/null | head -1 || true)
if [ -n "$SANITIZER" ] && [ -x "$SANITIZER" ]; then
  "$SANITIZER" --tool memcheck --error-exitcode 3 build-gpu/tests/kernels_cuda_test \
    > "$OUT/memcheck.log" 2>&1 || status=1
  tail -2 "$OUT/memcheck.log"
else
  echo "compute-sanitizer not found: memcheck skipped" | tee "$OUT/memcheck.log"
fi
build-gpu/bench/cuda_attention_bench | tee "$OUT/cuda_attention_bench.txt"
exit $status
