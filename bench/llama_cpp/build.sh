#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-batched-bench for this CPU (GGML_NATIVE) into DIR,
# from the source that the node-llama-cpp npm package carries as a git bundle (the npm
# registry is reachable where GitHub may not be). Takes about 4 minutes on 2 cores.
#   bench/llama_cpp/build.sh [DIR] [NODE_LLAMA_CPP_VERSION]
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
cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
ninja -C "$dir/build" -j2 llama-bench llama-batched-bench
echo "llama.cpp $(grep -o '"tag": *"[^"]*"' "$dir/llama.cpp.info.json") in $dir/build/bin"
