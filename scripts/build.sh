#!/usr/bin/env bash
# Configures and builds mswa-serve into ./build (Release, Ninja, 2 parallel jobs by default).
#   MSWA_JOBS=N        parallel compile jobs (default 2: LibTorch translation units need ~1 GiB each)
#   MSWA_BUILD_DIR=D   build directory (default build)
#   MSWA_CCACHE=0      do not compile through ccache (used when installed)
#   extra arguments    passed to cmake's configure step, e.g. -DMSWA_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MSWA_BUILD_DIR:-build}
LAUNCHER=()
if [ "${MSWA_CCACHE:-1}" != 0 ] && command -v ccache > /dev/null; then
  LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths relative to the source tree, and the compiler identified by its contents: a tree
  # elsewhere (another clone, the image's /src) with the same compiler hits the same entries.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
  export CCACHE_COMPILERCHECK=${CCACHE_COMPILERCHECK:-content}
  # ccache keys on the locale (it changes the compiler's messages): one fixed locale, so that a
  # shell's and a container's builds share entries.
  unset LC_ALL LC_CTYPE LC_MESSAGES
  export LANG=C.UTF-8
else
  LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${LAUNCHER[@]}" "$@"
cmake --build "$BUILD_DIR" -j "${MSWA_JOBS:-2}"
