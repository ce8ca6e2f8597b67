#!/usr/bin/env bash
# The image's build stage (Dockerfile), for one variant: the same build and unit tests as CI,
# then the files the runtime stages copy, staged under /out:
#   /out/bin, /out/lib/mswa, /out/share/mswa   the binaries (stripped), the SentencePiece wrapper,
#                                              the models (the same places under /usr/local in
#                                              every variant)
#   /out/deps                                  the shared libraries the binaries load, ldd's
#                                              closure (scripts/bundle_libs.sh): the runtime
#                                              image gets exactly these instead of their Debian
#                                              packages, whose other files (LibTorch's pull in
#                                              OpenCV, FFmpeg and Qt with data and tools) would
#                                              double its size
#   /out/cuda/root                             CUDA only: LibTorch's CUDA libraries at their
#                                              build paths
# MSWA_IMAGE_TESTS=0 neither builds nor runs the unit tests (CI's image test: CI has just run
# them).
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
if [ "${MSWA_IMAGE_TESTS:-1}" != 0 ]; then
  bash scripts/build.sh -DMSWA_BUILD_BENCH=OFF $cuda_args
  (cd build && ctest -L unit --output-on-failure -j 2)
else
  bash scripts/build.sh -DMSWA_BUILD_BENCH=OFF -DMSWA_BUILD_TESTS=OFF $cuda_args
fi
mkdir -p /out/bin /out/lib/mswa /out/share/mswa/models /out/cuda/root /out/deps
cp build/server/mswa-server build/client/mswa-client build/model/mswa-model build/model/mswa-train /out/bin/
cp build/lib/libmswa_spm.so /out/lib/mswa/
strip --strip-unneeded /out/bin/* /out/lib/mswa/*
cp -r "$src/models/." /out/share/mswa/models/
if [ "$variant" = cuda ]; then
  site=$(/opt/torch/bin/python -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
  for d in torch/lib nvidia cusparselt; do
    if [ -e "$site/$d" ]; then mkdir -p "/out/cuda/root$site/$d" && cp -a "$site/$d/." "/out/cuda/root$site/$d/"; fi
  done
fi
bash "$src/scripts/bundle_libs.sh" collect /out/deps /out/bin/* /out/lib/mswa/*
