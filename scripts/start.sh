#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine, builds, and starts mswa-server on the model that
# ships in models/mswa-books-small (gRPC on 127.0.0.1:50051, metrics on 127.0.0.1:9090/metrics).
# Extra arguments go to mswa-server, e.g. --listen 0.0.0.0:50051 or --model_dir DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/server/mswa-server --model_dir models/mswa-books-small "$@"
