#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine, builds, and starts mswa-server on the default
# model (gRPC on 127.0.0.1:50051, metrics on 127.0.0.1:9090/metrics). Extra arguments go to
# mswa-server, e.g. --listen 0.0.0.0:50051.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
MODEL=${MSWA_MODEL_DIR:-models/default}
if [ ! -f "$MODEL/config.json" ]; then
  # No trained model in the tree yet: a deterministic random-weight MSWA model of the default
  # shape, so the whole stack runs (its text is noise).
  build/model/mswa-model init "$MODEL" --preset mswa --window 128 --hidden 256 --layers 6 --heads 8
fi
exec build/server/mswa-server --model_dir "$MODEL" "$@"
