#!/usr/bin/env bash
# Builds the CPU image from this tree with podman (buildah) and checks it as a user would run it:
# gRPC health, Generate and Score, the OpenAI-style HTTP API's health, Prometheus /metrics, and
# a clean exit (status 0) on SIGTERM. Prints the image's size and what it is made of.
#
#   tests/deploy/image_test.sh SOURCE_DIR BUILD_DIR
#
# BUILD_DIR gives the client the checks run (build/client/mswa-client) and, through ccache
# (scripts/build.sh), the compiled objects the image's build stage reuses. The Debian 12 base is
# made by scripts/debian_base.sh (debootstrap; cached). The host's apt archive is lent to the
# build (/var/cache/apt/archives), so packages already downloaded are not fetched again.
#
# The image runs under `podman run` where the machine allows it; where the OCI runtime cannot
# (a container without the privileges to set resource limits or make cgroups), its root
# filesystem runs instead under unshare + chroot as the image's user (uid 10001), with the
# image's entry point and default flags. Exits 77 (skipped) without podman or root.
#   MSWA_IMAGE=NAME      image name (default localhost/mswa-serve:test)
#   MSWA_IMAGE_KEEP=1    keep the image and its build stage's layers afterwards
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
IMAGE=${MSWA_IMAGE:-localhost/mswa-serve:test}
BASE=localhost/debian:bookworm-slim
CLIENT=$BUILD/client/mswa-client
fail() { echo "FAIL (image): $*"; exit 1; }
source "$(dirname "$0")/free_port.sh"
seconds() { date +%s; }

if ! command -v podman > /dev/null || [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the image test needs podman (scripts/setup.sh installs it) and root"
  exit 77
fi
[ -x "$CLIENT" ] || fail "no client at $CLIENT (build first)"

start=$(seconds)
bash "$SRC/scripts/debian_base.sh" "$BASE"
echo "base image ready in $(( $(seconds) - start )) s"

# --isolation=chroot: build steps need no OCI runtime (see above). The build's compiler cache and
# the apt archive are mounted into the build stage; the unit tests are skipped there (CI runs
# them in this tree).
start=$(seconds)
ccache_dir=$(ccache -k cache_dir 2>/dev/null || echo "$HOME/.cache/ccache")
mkdir -p "$ccache_dir"
podman build --isolation=chroot --target cpu \
  --build-arg BASE_IMAGE="$BASE" --build-arg RUNTIME_IMAGE="$BASE" --build-arg MSWA_IMAGE_TESTS=0 \
  -v "$ccache_dir:/root/.cache/ccache" -v /var/cache/apt/archives:/var/cache/apt/archives \
  -t "$IMAGE" "$SRC" > "$BUILD/image_build.log" 2>&1 ||
  { tail -n 60 "$BUILD/image_build.log"; fail "podman build failed (log: $BUILD/image_build.log)"; }
echo "image built in $(( $(seconds) - start )) s"

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE")
echo "image $IMAGE: $(( size / 1000000 )) MB (the Debian base $(( base_size / 1000000 )) MB)"

ctr=$(podman create "$IMAGE")
root=$(podman mount "$ctr")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2> /dev/null || true; fi
  podman umount "$ctr" > /dev/null 2>&1 || true
  podman rm -f "$ctr" > /dev/null 2>&1 || true
  podman rm -f mswa-image-test > /dev/null 2>&1 || true
  if [ "${MSWA_IMAGE_KEEP:-0}" != 1 ]; then
    # The image and the build stage's layers (~2.5 GB); the Debian base stays for the next run.
    podman rmi -f "$IMAGE" > /dev/null 2>&1 || true
    podman image prune -f > /dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# What the image is made of.
du_mb() { du -sm "$root/$1" 2>/dev/null | cut -f1; }
echo "  bundled libraries /usr/local/lib/mswa-deps: $(du_mb usr/local/lib/mswa-deps) MB ($(ls "$root/usr/local/lib/mswa-deps" | wc -l) files)"
echo "  binaries /usr/local/bin: $(du_mb usr/local/bin) MB; models /usr/local/share/mswa: $(du_mb usr/local/share/mswa) MB"
# awk, not head: head exits after five lines, and under pipefail the SIGPIPE that then stops a
# longer ls would fail the test.
largest=$(cd "$root/usr/local/lib/mswa-deps" && ls -S | awk 'NR <= 5' | tr '\n' ' ')
echo "  largest libraries: $largest"
[ -x "$root/usr/local/bin/mswa-server" ] || fail "no /usr/local/bin/mswa-server in the image"
! readelf -S "$root/usr/local/bin/mswa-server" | grep '\.symtab' >/dev/null || fail "mswa-server is not stripped"

# Free ports on the host's loopback for gRPC, HTTP and metrics.
GRPC=$(free_port) HTTP=$(free_port) METRICS=$(free_port)
# The image's entry point and flags, with the ports moved and bound to loopback.
entry=$(podman image inspect --format '{{join .Config.Entrypoint " "}}' "$IMAGE")
flags="--listen=127.0.0.1:$GRPC --http_listen=127.0.0.1:$HTTP --metrics_listen=127.0.0.1:$METRICS"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', not 10001:10001"

log=$BUILD/image_server.log
mode=""
# On machines like CI's (a VM whose root lacks CAP_SYS_RESOURCE, cgroups v1 and v2 mixed),
# podman's defaults fail: crun refuses the hybrid cgroups, and either runtime fails to set
# resource limits above the caller's own. runc with limits at or below the caller's works.
run_args=(--network host --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
if command -v runc > /dev/null; then run_args=(--runtime runc "${run_args[@]}"); fi
# shellcheck disable=SC2086  # the flags are words
if podman run -d --name mswa-image-test "${run_args[@]}" "$IMAGE" $flags > /dev/null 2> "$BUILD/image_run.err"; then
  sleep 1
  if [ "$(podman inspect --format '{{.State.Running}}' mswa-image-test 2>/dev/null)" = true ]; then
    mode="podman run"
  fi
fi
if [ -z "$mode" ]; then
  echo "  podman run is not possible here ($(tail -n 1 "$BUILD/image_run.err" 2>/dev/null; podman logs mswa-image-test 2>&1 | tail -n 1)); running the image's root filesystem under unshare + chroot"
  podman rm -f mswa-image-test > /dev/null 2>&1 || true
  mode="chroot"
  # A mount and PID namespace of its own: /dev and /proc inside the root, unmounted with it.
  # shellcheck disable=SC2086
  unshare --mount --fork --pid --kill-child bash -c '
    set -e
    mount --rbind /dev "$1/dev"
    mount -t proc proc "$1/proc"
    root=$1; shift
    exec chroot --userspec=10001:10001 "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp "$@"
  ' _ "$root" $entry $flags > "$log" 2>&1 &
  pid=$!
fi
echo "  running with $mode"

deadline=$(( $(seconds) + 120 ))
until "$CLIENT" --target "127.0.0.1:$GRPC" --deadline 2 health > /dev/null 2>&1; do
  if [ "$(seconds)" -gt "$deadline" ]; then
    [ "$mode" = chroot ] && tail -n 20 "$log"
    [ "$mode" = "podman run" ] && podman logs mswa-image-test 2>&1 | tail -n 20
    fail "the server in the image did not become SERVING"
  fi
  sleep 1
done
echo "  health: SERVING"

out=$("$CLIENT" --target "127.0.0.1:$GRPC" --quiet generate "The image " --max_tokens 8 --temperature 0) ||
  fail "generate failed"
[ -n "$out" ] || fail "generate returned nothing"
echo "  generate: $(printf '%q' "$out")"

printf 'A short text to score through the image.\n' > "$BUILD/image_score.txt"
score=$("$CLIENT" --target "127.0.0.1:$GRPC" --json --quiet score "$BUILD/image_score.txt") || fail "score failed"
grep -q '"bits_per_byte"' <<< "$score" || fail "score printed no bits_per_byte: $score"
echo "  score: $(tr -d '\n' <<< "$score" | cut -c1-160)"

curl -sf "http://127.0.0.1:$HTTP/health" > /dev/null || fail "HTTP /health did not answer"
echo "  HTTP /health: ok"
metrics=$(curl -sf "http://127.0.0.1:$METRICS/metrics") || fail "/metrics did not answer"
n=$(grep -c '^mswa_' <<< "$metrics" || true)
[ "$n" -gt 20 ] || fail "/metrics has only $n mswa_ lines"
echo "  /metrics: $n mswa_ lines"

# SIGTERM: drain, then exit 0.
if [ "$mode" = "podman run" ]; then
  podman stop -t 30 mswa-image-test > /dev/null
  status=$(podman inspect --format '{{.State.ExitCode}}' mswa-image-test)
  logs=$(podman logs mswa-image-test 2>&1)
else
  server=$(pgrep -u 10001 -f "mswa-server.*--listen=127.0.0.1:$GRPC" | awk 'NR == 1')
  [ -n "$server" ] || fail "cannot find the server process"
  kill -TERM "$server"
  status=0
  wait "$pid" || status=$?
  pid=""
  logs=$(cat "$log")
fi
[ "$status" = 0 ] || { tail -n 20 <<< "$logs"; fail "the server exited with status $status on SIGTERM"; }
grep -q "stopped" <<< "$logs" || fail "the server's log does not say it stopped"
echo "  SIGTERM: exit status 0"
echo "image: ok"
