# shellcheck shell=bash
# Sourced by the HTTP shell tests (bash, set -euo pipefail): runs mswa-server in the background.
#
#   start_http_server SERVER WORK_DIR [FLAG...]
#
# Starts SERVER with the FLAGs plus gRPC and HTTP listeners on free 127.0.0.1 ports and no
# metrics listener, and waits (60 s at most) until it logs that it is serving. Sets PID (the
# server's) and PORT (its HTTP API's; empty if the server never printed it). The server's stdout
# and stderr go to WORK_DIR/server.out and WORK_DIR/server.err. An EXIT trap stops it when the
# test ends (replacing any earlier EXIT trap). If the server exits first, prints its stderr and
# exits 1.
start_http_server() {
  local server=$1 work=$2
  shift 2
  "$server" "$@" --listen 127.0.0.1:0 --metrics_listen "" --http_listen 127.0.0.1:0 \
    > "$work/server.out" 2> "$work/server.err" &
  PID=$!
  trap 'kill $PID 2> /dev/null || true; wait $PID 2> /dev/null || true' EXIT
  for _ in $(seq 600); do
    grep -q '"event":"serving"' "$work/server.err" 2> /dev/null && break
    kill -0 $PID 2> /dev/null || { cat "$work/server.err"; exit 1; }
    sleep 0.1
  done
  # shellcheck disable=SC2034  # PORT is read by the sourcing script
  PORT=$(sed -n 's|.*HTTP API on http://[^:]*:||p' "$work/server.out")
}
