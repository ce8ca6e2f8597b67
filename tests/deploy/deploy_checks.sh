#!/usr/bin/env bash
# Static checks of everything under deploy/ and the Dockerfile:
#   YAML parses and is tidy (yamllint); every kustomize overlay renders offline and every object
#   validates against the Kubernetes OpenAPI schemas (kubernetes-models); Prometheus config and
#   alert rules pass promtool; the Grafana dashboard is valid JSON; the Dockerfile refers only to
#   files that exist and installs exactly the packages the binaries link.
# Usage: deploy_checks.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1 BUILD=$2
cd "$SRC"
fail() { echo "FAIL: $*"; exit 1; }

yamllint -s deploy/ .yamllint || fail "yamllint"

for overlay in deploy/k8s/overlays/*/; do
  kubectl kustomize "$overlay" > "$BUILD/rendered.yaml" 2> "$BUILD/kustomize.err" \
    || fail "kubectl kustomize $overlay: $(cat "$BUILD/kustomize.err")"
  node tests/deploy/validate_manifests.js < "$BUILD/rendered.yaml" > "$BUILD/validate.out" 2>&1 \
    || fail "schema validation of $overlay: $(cat "$BUILD/validate.out")"
  grep -q "ok apps/v1 Deployment/mswa-serve" "$BUILD/validate.out" || fail "$overlay renders no Deployment"
done
# The GPU overlay asks for a GPU; the base does not.
kubectl kustomize deploy/k8s/overlays/gpu 2>/dev/null | grep "nvidia.com/gpu: \"1\"" >/dev/null || fail "gpu overlay has no GPU limit"
! kubectl kustomize deploy/k8s/overlays/cpu 2>/dev/null | grep "nvidia.com/gpu:" >/dev/null || fail "cpu overlay asks for a GPU"
# ... and runs the engine there; its flags are the base's otherwise (bar the KV cache size).
grep -qx -- "--device=cuda" deploy/k8s/overlays/gpu/flags || fail "gpu overlay flags lack --device=cuda"
diff <(grep -v -e '^--kv_cache_bytes=' deploy/k8s/base/flags) \
     <(grep -v -e '^--kv_cache_bytes=' -e '^--device=' deploy/k8s/overlays/gpu/flags) > /dev/null \
  || fail "gpu overlay flags drifted from deploy/k8s/base/flags"

promtool check config deploy/observability/prometheus.yml > "$BUILD/promtool.out" 2>&1 \
  || fail "promtool check config: $(cat "$BUILD/promtool.out")"
promtool check rules deploy/observability/alert-rules.yaml > "$BUILD/promtool.out" 2>&1 \
  || fail "promtool check rules: $(cat "$BUILD/promtool.out")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"], "no panels"' \
  deploy/observability/grafana/mswa-serve-dashboard.json || fail "dashboard JSON"

bash tests/deploy/check_dockerfile.sh "$SRC" "$BUILD"
echo "deploy checks: ok"
