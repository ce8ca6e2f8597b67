#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine, builds, and brings up the default model:
# creates models/default if it is missing and prints its architecture, windows and KV-memory
# bound. Arguments are passed to `mswa-model init` when the model is created.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
MODEL=${MSWA_MODEL_DIR:-models/default}
if [ ! -f "$MODEL/config.json" ]; then
  build/model/mswa-model init "$MODEL" --preset mswa --window 128 --hidden 256 --layers 6 \
    --heads 8 --kv-heads 8 "$@"
fi
build/model/mswa-model info "$MODEL"
