#!/usr/bin/env bash
# The official `openai` npm package (tests/http/openai_node, installed by scripts/setup.sh)
# against a real mswa-server on a tiny model. Skips (exit 77) without node or the package.
#   openai_node_test.sh MSWA_SERVER MSWA_MODEL WORK_DIR
set -euo pipefail
SERVER=$1 MODEL_TOOL=$2 WORK=$3
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/start_server.sh"
if ! command -v node > /dev/null; then
  echo "SKIP: node is not installed (scripts/setup.sh installs it)"; exit 77
fi
if [ ! -d "$HERE/openai_node/node_modules/openai" ]; then
  echo "SKIP: the openai npm package is missing; run scripts/setup.sh"; exit 77
fi
rm -rf "$WORK" && mkdir -p "$WORK"
"$MODEL_TOOL" init "$WORK/tiny" --preset mswa --hidden 32 --layers 4 --heads 4 \
  --window 16 > /dev/null
start_http_server "$SERVER" "$WORK" --model_dir "$WORK/tiny"
node "$HERE/openai_node/openai_client_test.mjs" "http://127.0.0.1:$PORT/v1" tiny
