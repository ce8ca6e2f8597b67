#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine, builds, and runs every test.
#   bash scripts/test.sh                 all tests, then the container image's (label image:
#                                        tests/deploy/image_test.sh; MSWA_IMAGE_TEST=0 skips it),
#                                        then the fuzz and sanitizer runs (scripts/sanitizers.sh;
#                                        MSWA_SANITIZERS=0 skips them)
#   bash scripts/test.sh -L unit         only one label (unit, model, integration, image, gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
if [ $# -gt 0 ]; then
  (cd "${MSWA_BUILD_DIR:-build}" && ctest --output-on-failure -j 2 "$@")
  exit
fi
# The image test builds on its own (both cores), so it runs after the others.
(cd "${MSWA_BUILD_DIR:-build}" && ctest --output-on-failure -j 2 -LE image)
if [ "${MSWA_IMAGE_TEST:-1}" != 0 ]; then
  (cd "${MSWA_BUILD_DIR:-build}" && ctest --output-on-failure -L image)
fi
if [ "${MSWA_SANITIZERS:-1}" != 0 ]; then
  bash scripts/sanitizers.sh
fi
