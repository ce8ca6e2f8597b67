#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking mswa-serve needs.
# Idempotent: safe to run again; apt-get skips what is already installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  # LibTorch (CPU). Without libopenblas0-openmp Debian's LibTorch falls back to the reference BLAS
  # (~8 GFLOP/s instead of ~200 on two cores).
  libtorch-dev libopenblas0-openmp
  # gRPC, protobuf, Abseil, metrics, JSON, SentencePiece
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
  prometheus-cpp-dev nlohmann-json3-dev libsentencepiece-dev sentencepiece
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # promtool (metrics exposition checks) and curl for the integration tests
  prometheus curl openssl
  # the independent Python re-implementation of the forward pass used as a cross-check in tests
  python3 python3-torch python3-numpy
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
