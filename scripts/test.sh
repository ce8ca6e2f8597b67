#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine, builds, and runs every test.
#   bash scripts/test.sh                 all tests, then the fuzz and sanitizer runs
#                                        (scripts/sanitizers.sh; MSWA_SANITIZERS=0 skips them)
#   bash scripts/test.sh -L unit         only one label (unit, model, integration, gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd "${MSWA_BUILD_DIR:-build}" && ctest --output-on-failure -j 2 "$@")
if [ $# -eq 0 ] && [ "${MSWA_SANITIZERS:-1}" != 0 ]; then
  bash scripts/sanitizers.sh
fi
