#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-batched-bench for this CPU (GGML_NATIVE) into DIR,
# from the source that the node-llama-cpp npm package carries as a git bundle (the npm
# registry is reachable where GitHub may not be). Takes about 4 minutes on 2 cores.
#   bench/llama_cpp/build.sh [DIR] [NODE_LLAMA_CPP_VERSION]
# NO_AMX=1 builds without the AMX kernels (into DIR/build-noamx): on a 2-core Xeon VM with AMX,
# this version's AMX matrix product for q8_0 and q4_0 (ggml_backend_amx_mul_mat) crashed.
set -euo pipefail
dir=${1:-build/llama.cpp}
version=${2:-3.22.1}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [[ ! -d "$dir/src/.git" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
  tar -xzf "$tmp"/node-llama-cpp-*.tgz -C "$tmp" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  git clone -q "$tmp/package/llama/gitRelease.bundle" "$dir/src"
  cp "$tmp/package/llama/llama.cpp.info.json" "$dir/"
fi
build=build flags=()
if [[ ${NO_AMX:-0} == 1 ]]; then
  # Explicit -mno-* flags win over the -march=native that GGML_NATIVE adds.
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  build=build-noamx flags=(-DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx")
fi
cmake -S "$dir/src" -B "$dir/$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON "${flags[@]}" \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
ninja -C "$dir/$build" -j2 llama-bench llama-batched-bench
echo "llama.cpp $(grep -o '"tag": *"[^"]*"' "$dir/llama.cpp.info.json") in $dir/$build/bin"
