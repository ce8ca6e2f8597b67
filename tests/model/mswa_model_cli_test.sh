#!/usr/bin/env bash
# The README's mswa-model commands work as shown, and bad input gives clear errors and exit codes.
# Usage: mswa_model_cli_test.sh MSWA_MODEL WORKDIR
set -euo pipefail
MSWA_MODEL=$1 WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }

"$MSWA_MODEL" init "$WORK/m" --preset mswa --window 64 --hidden 128 --layers 4 --heads 8 --kv-heads 4 \
  > "$WORK/init.txt"
grep -q "wrote $WORK/m (mswa," "$WORK/init.txt" || fail "init output: $(cat "$WORK/init.txt")"
"$MSWA_MODEL" info "$WORK/m" > "$WORK/info.txt"
cat "$WORK/info.txt"
# windows: layers 0-1 at 1/2, layer 2 at 1, layer 3 at 2 (4 layer groups); head ladder 1/4..2.
grep -Eq '^ +0 \| +8 +8 +16 +16 +32 +32 +64 +64$' "$WORK/info.txt" || fail "layer 0 windows"
grep -Eq '^ +3 \| +32 +32 +64 +64 +128 +128 +256 +256$' "$WORK/info.txt" || fail "layer 3 windows"
grep -q "bounded: no sequence of any length needs more than" "$WORK/info.txt" || fail "bound line"
grep -Eq '^ +131072 ' "$WORK/info.txt" || fail "128k row"

# Same seed, same bytes.
"$MSWA_MODEL" init "$WORK/m2" --preset mswa --window 64 --hidden 128 --layers 4 --heads 8 --kv-heads 4 >/dev/null
cmp -s "$WORK/m/model.safetensors" "$WORK/m2/model.safetensors" || fail "init is not deterministic"

# Full attention is reported as unbounded.
"$MSWA_MODEL" init "$WORK/full" --preset full --hidden 64 --layers 2 --heads 4 >/dev/null
"$MSWA_MODEL" info "$WORK/full" | grep -q "unbounded: some heads attend to the whole sequence" \
  || fail "full model not reported unbounded"

expect_exit() {  # code, pattern, command...
  local code=$1 pattern=$2; shift 2
  set +e; "$@" > "$WORK/out.txt" 2>&1; local got=$?; set -e
  [ "$got" = "$code" ] || fail "exit $got (want $code) from: $* :: $(cat "$WORK/out.txt")"
  grep -q -- "$pattern" "$WORK/out.txt" || fail "no '$pattern' in: $(cat "$WORK/out.txt")"
}
expect_exit 2 "unknown option --windw" "$MSWA_MODEL" init "$WORK/x" --windw 3
expect_exit 2 "unknown command" "$MSWA_MODEL" frobnicate
expect_exit 1 "unknown window preset" "$MSWA_MODEL" init "$WORK/x" --preset sliding
expect_exit 1 "must be an integer" "$MSWA_MODEL" init "$WORK/x" --layers many
expect_exit 1 "cannot open" "$MSWA_MODEL" info "$WORK/does-not-exist"
echo '{"model_type": "mswa"}' > "$WORK/bad.json"; mkdir -p "$WORK/bad"; mv "$WORK/bad.json" "$WORK/bad/config.json"
expect_exit 1 '"vocab_size" is missing' "$MSWA_MODEL" info "$WORK/bad"
echo "mswa-model CLI: ok"
