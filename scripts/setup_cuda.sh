#!/usr/bin/env bash
# The CUDA build's dependencies on Debian 12, on top of scripts/setup.sh: NVIDIA's CUDA Toolkit
# (from NVIDIA's Debian 12 repository) and a CUDA-enabled LibTorch (PyTorch's CUDA wheel in the
# virtual environment /opt/torch; Debian packages only a CPU LibTorch). Needs network access to
# developer.download.nvidia.com and download.pytorch.org. Idempotent.
#
#   scripts/setup_cuda.sh                 install
#   scripts/setup_cuda.sh --cmake-args    print the CMake arguments of the CUDA build
#
#   CUDA_PACKAGE=cuda-toolkit-12-6  TORCH_INDEX=https://download.pytorch.org/whl/cu126  (defaults)
set -euo pipefail
TORCH_ENV=${TORCH_ENV:-/opt/torch}

if [ "${1:-}" = "--cmake-args" ]; then
  prefix=$("$TORCH_ENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  echo "-DMSWA_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_PREFIX_PATH=$prefix"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# Both download hosts first, so that a machine (or image build) without them fails in seconds
# with the reason instead of half-way through an install.
if [ ! -x /usr/local/cuda/bin/nvcc ] || [ ! -x "$TORCH_ENV/bin/python" ]; then
  for url in https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ \
             "${TORCH_INDEX:-https://download.pytorch.org/whl/cu126}/"; do
    if ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' "$url" 2>/dev/null; then
      echo "setup_cuda.sh: cannot reach $url: the CUDA variant needs NVIDIA's CUDA repository and" >&2
      echo "PyTorch's CUDA wheels from the network. Build the CPU variant (the default), or build" >&2
      echo "where both hosts are reachable (or behind a proxy: https_proxy is honoured)." >&2
      exit 1
    fi
  done
fi
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/local/cuda/bin/nvcc ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends wget ca-certificates
  wget -qO /tmp/cuda-keyring.deb \
    https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb
  $SUDO dpkg -i /tmp/cuda-keyring.deb
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${CUDA_PACKAGE:-cuda-toolkit-12-6}"
fi
if [ ! -x "$TORCH_ENV/bin/python" ] || ! "$TORCH_ENV/bin/python" -c 'import torch' 2>/dev/null; then
  $SUDO apt-get install -y -q --no-install-recommends python3-venv
  $SUDO python3 -m venv "$TORCH_ENV"
  $SUDO "$TORCH_ENV/bin/pip" install -q --no-cache-dir torch \
    --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cu126}"
fi
echo "CUDA toolkit: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
echo "LibTorch: $("$TORCH_ENV/bin/python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
