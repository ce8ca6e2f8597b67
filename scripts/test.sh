#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine, builds, and runs every test.
#   bash scripts/test.sh                 all tests
#   bash scripts/test.sh -L unit         only one label (unit, model, integration, gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd "${MSWA_BUILD_DIR:-build}"
ctest --output-on-failure -j 2 "$@"
