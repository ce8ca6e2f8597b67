#!/usr/bin/env bash
# A real Prometheus (Debian's) scrapes a real mswa-server started with the Deployment's flags:
# the target is up, PromQL returns the request counter after some requests, and every metric the
# Grafana dashboard and the alert rules use is one the server exports.
# Usage: prometheus_e2e.sh SOURCE_DIR MSWA_SERVER MSWA_CLIENT MSWA_MODEL WORKDIR
set -euo pipefail
SRC=$1 SERVER=$2 CLIENT=$3 MODEL_TOOL=$4 WORK=$5
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; [ -f "$WORK/prometheus.log" ] && tail -20 "$WORK/prometheus.log"; exit 1; }
source "$(dirname "$0")/free_port.sh"
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null || true' EXIT

"$MODEL_TOOL" init "$WORK/model" --preset mswa --window 16 --hidden 32 --layers 4 --heads 4 >/dev/null
GRPC=$(free_port) METRICS=$(free_port) PROM=$(free_port)
# The Deployment's container args, with local ports and the test model.
"$SERVER" --listen=127.0.0.1:$GRPC --metrics_listen=127.0.0.1:$METRICS --http_listen=127.0.0.1:0 \
  --flagfile="$SRC/deploy/k8s/base/flags" --model_dir="$WORK/model" > "$WORK/server.out" 2> "$WORK/server.err" &
PIDS+=($!)
C=("$CLIENT" --target 127.0.0.1:$GRPC)
for _ in $(seq 200); do "${C[@]}" health >/dev/null 2>&1 && break; sleep 0.1; done
grep -q SERVING <<< "$("${C[@]}" health)" || fail "server not serving: $(cat "$WORK/server.err")"

# The shipped scrape config, pointed at this server and scraping every second.
sed -e "s/mswa-serve:9090/127.0.0.1:$METRICS/" -e 's/scrape_interval: 15s/scrape_interval: 1s/' \
  "$SRC/deploy/observability/prometheus.yml" > "$WORK/prometheus.yml"
cp "$SRC/deploy/observability/alert-rules.yaml" "$WORK/"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address=127.0.0.1:$PROM > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

for i in 1 2 3; do "${C[@]}" generate "request $i" --max_tokens 4 --seed $i > /dev/null 2>&1 || fail "generate"; done

api() { curl -s --max-time 5 "http://127.0.0.1:$PROM/api/v1/$1"; }
up=""
for _ in $(seq 120); do
  up=$(api targets | python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"]; print(t[0]["health"] if t else "")' 2>/dev/null || true)
  [ "$up" = "up" ] && break
  sleep 0.5
done
[ "$up" = "up" ] || fail "Prometheus target is not up ($up)"
value=""
for _ in $(seq 60); do
  value=$(api 'query?query=sum(mswa_requests_total%7Brpc%3D%22Generate%22%7D)' | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true)
  [ -n "$value" ] && python3 -c "import sys; sys.exit(0 if float('$value') >= 3 else 1)" && break
  sleep 0.5
done
python3 -c "import sys; sys.exit(0 if '$value' and float('$value') >= 3 else 1)" \
  || fail "PromQL sum(mswa_requests_total{rpc=\"Generate\"}) = '$value', want >= 3"
# Alert rules loaded.
api rules | grep MswaKvPoolNearlyFull >/dev/null || fail "alert rules not loaded"

# Every mswa_ metric the dashboard and the rules use is exported (histogram suffixes aside).
curl -s "http://127.0.0.1:$METRICS/metrics" > "$WORK/scrape.txt"
promtool check metrics < "$WORK/scrape.txt" || fail "promtool check metrics"
python3 - "$WORK/scrape.txt" "$SRC/deploy/observability/grafana/mswa-serve-dashboard.json" \
  "$SRC/deploy/observability/alert-rules.yaml" "$SRC/deploy/k8s/base/hpa.yaml" <<'PY' || fail "unknown metric names"
import re, sys
exported = set(re.findall(r"^# TYPE (mswa_\w+)", open(sys.argv[1]).read(), re.M))
missing = []
for path in sys.argv[2:]:
    for name in set(re.findall(r"mswa_[a-z_]+", open(path).read())):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base not in exported and name not in ("mswa_serve",):
            missing.append(f"{path}: {name}")
if missing:
    print("\n".join(missing)); sys.exit(1)
PY
echo "Prometheus end to end: ok"
