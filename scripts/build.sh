#!/usr/bin/env bash
# Configures and builds mswa-serve into ./build (Release, Ninja, 2 parallel jobs by default).
#   MSWA_JOBS=N        parallel compile jobs (default 2: LibTorch translation units need ~1 GiB each)
#   MSWA_BUILD_DIR=D   build directory (default build)
#   extra arguments    passed to cmake's configure step, e.g. -DMSWA_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MSWA_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "${MSWA_JOBS:-2}"
