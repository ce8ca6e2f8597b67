#!/usr/bin/env bash
# The image's build stage (Dockerfile), for one variant: the same build and unit tests as CI,
# then the files the runtime stages copy, staged under /out:
#   /out/bin, /out/lib/mswa, /out/share/mswa   the binaries, the SentencePiece wrapper, the models
#                                              (the same places under /usr/local in every variant)
#   /out/cuda/root, /out/cuda/deps             CUDA only: LibTorch's CUDA libraries at their
#                                              build paths, and the Debian libraries the CUDA
#                                              base image lacks (scripts/bundle_libs.sh)
# Usage: scripts/docker_build.sh cpu|cuda   (in the source tree, after scripts/setup.sh and, for
# cuda, scripts/setup_cuda.sh)
set -euo pipefail
variant=${1:?usage: docker_build.sh cpu|cuda}
case "$variant" in
  cpu) cuda_args="" ;;
  cuda) cuda_args=$(bash scripts/setup_cuda.sh --cmake-args) ;;
  *) echo "docker_build.sh: unknown variant '$variant' (cpu or cuda)" >&2; exit 2 ;;
esac
src=$(pwd)
# shellcheck disable=SC2086  # the CMake arguments are words
bash scripts/build.sh -DMSWA_BUILD_BENCH=OFF $cuda_args
(cd build && ctest -L unit --output-on-failure -j 2)
mkdir -p /out/bin /out/lib/mswa /out/share/mswa/models /out/cuda/root /out/cuda/deps
cp build/server/mswa-server build/client/mswa-client build/model/mswa-model build/model/mswa-train /out/bin/
cp build/lib/libmswa_spm.so /out/lib/mswa/
cp -r "$src/models/." /out/share/mswa/models/
if [ "$variant" = cuda ]; then
  site=$(/opt/torch/bin/python -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
  for d in torch/lib nvidia cusparselt; do
    if [ -e "$site/$d" ]; then mkdir -p "/out/cuda/root$site/$d" && cp -a "$site/$d/." "/out/cuda/root$site/$d/"; fi
  done
  bash "$src/scripts/bundle_libs.sh" collect /out/cuda/deps /out/bin/* /out/lib/mswa/*
fi
