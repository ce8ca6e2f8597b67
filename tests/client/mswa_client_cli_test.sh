#!/usr/bin/env bash
# mswa-client against a real mswa-server: every command, its output and exit codes.
# Usage: mswa_client_cli_test.sh MSWA_SERVER MSWA_CLIENT MSWA_MODEL WORKDIR
set -euo pipefail
SERVER=$1 CLIENT=$2 MODEL_TOOL=$3 WORK=$4
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }

"$MODEL_TOOL" init "$WORK/model" --preset mswa --window 16 --hidden 32 --layers 4 --heads 4 >/dev/null
"$SERVER" --model_dir "$WORK/model" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --http_listen "" \
  > "$WORK/server.out" 2> "$WORK/server.err" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q "listening on" "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
TARGET=$(sed -n 's/.*listening on //p' "$WORK/server.out")
C=("$CLIENT" --target "$TARGET")
for _ in $(seq 600); do "${C[@]}" health >/dev/null 2>&1 && break; sleep 0.1; done

grep -q SERVING <<< "$("${C[@]}" health)" || fail "health"
out=$("${C[@]}" generate "Once upon a time" --max_tokens 12 --seed 3 --temperature 0.8 2> "$WORK/gen.err")
[ -n "$out" ] || fail "generate printed nothing"
grep -q "length" "$WORK/gen.err" || fail "generate summary: $(cat "$WORK/gen.err")"
again=$("${C[@]}" generate "Once upon a time" --max_tokens 12 --seed 3 --temperature 0.8 2>/dev/null)
[ "$out" = "$again" ] || fail "same seed gave different text"
grep -q '"finished": *true' <<< "$("${C[@]}" --json generate "abc" --max_tokens 3 --seed 1 --logprobs 2>/dev/null)" \
  || fail "generate --json"

head -c 200000 /dev/urandom | base64 > "$WORK/a.txt"
printf 'The quick brown fox jumps over the lazy dog.\n' > "$WORK/b.txt"
"${C[@]}" score "$WORK/a.txt" "$WORK/b.txt" > "$WORK/score.txt" 2>/dev/null
grep -q "a.txt: .* tokens, .* bytes, perplexity .*, bits/byte" "$WORK/score.txt" || fail "score: $(cat "$WORK/score.txt")"
grep -qi "total" "$WORK/score.txt" || fail "score total line"
"${C[@]}" score - < "$WORK/b.txt" > "$WORK/stdin.txt" 2>/dev/null || fail "score from stdin"
grep -q "45 tokens" "$WORK/stdin.txt" || fail "score from stdin: $(cat "$WORK/stdin.txt")"
grep -q '"bits_per_byte"' <<< "$("${C[@]}" --json score "$WORK/b.txt" 2>/dev/null)" || fail "score --json"

"${C[@]}" info > "$WORK/info.txt" || fail "info"
grep -qi "window" "$WORK/info.txt" || fail "info windows: $(cat "$WORK/info.txt")"
grep -q "^products: .* kernel" "$WORK/info.txt" || fail "info products: $(cat "$WORK/info.txt")"
grep -q "256" <<< "$("${C[@]}" tokenize "hi" --bos)" || fail "tokenize"
"${C[@]}" bench --concurrency 2 --num_requests 6 --prompt_len 16 --output_len 8 > "$WORK/bench.txt" 2>&1 \
  || fail "bench: $(cat "$WORK/bench.txt")"
grep -qi "ttft" "$WORK/bench.txt" || fail "bench report: $(cat "$WORK/bench.txt")"

# Exit codes: 2 usage, 1 RPC error.
set +e
"${C[@]}" frobnicate > /dev/null 2>&1; [ $? = 2 ] || fail "unknown command should exit 2"
"${C[@]}" generate "x" --max_tokens 0 > /dev/null 2> "$WORK/bad.err"; code=$?
set -e
[ $code = 1 ] || [ $code = 2 ] || fail "max_tokens 0 exit $code"
set +e
"$CLIENT" --target 127.0.0.1:1 --deadline 2 health > /dev/null 2>&1; [ $? = 1 ] || fail "unreachable server should exit 1"
set -e
kill -TERM $PID
wait $PID || fail "server exit status $? after SIGTERM"
trap - EXIT

# TLS: a self-signed certificate for localhost; the client trusts it explicitly.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
"$SERVER" --model_dir "$WORK/model" --listen 127.0.0.1:0 --metrics_listen "" --http_listen "" \
  --tls_cert "$WORK/cert.pem" --tls_key "$WORK/key.pem" > "$WORK/tls.out" 2> "$WORK/tls.err" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q "listening on" "$WORK/tls.out" 2>/dev/null && break; sleep 0.1; done
TLS_TARGET=$(sed -n 's/.*listening on //p' "$WORK/tls.out")
T=("$CLIENT" --target "$TLS_TARGET" --tls --tls_ca "$WORK/cert.pem" --tls_server_name localhost)
for _ in $(seq 600); do "${T[@]}" health >/dev/null 2>&1 && break; sleep 0.1; done
grep -q SERVING <<< "$("${T[@]}" health)" || fail "health over TLS"
[ -n "$("${T[@]}" generate "tls" --max_tokens 4 --seed 1 2>/dev/null)" ] || fail "generate over TLS"
set +e
"$CLIENT" --target "$TLS_TARGET" --deadline 2 health > /dev/null 2>&1; [ $? = 1 ] || fail "plaintext client to a TLS server should fail"
set -e
kill -TERM $PID
wait $PID || fail "TLS server exit status $?"
trap - EXIT
echo "mswa-client CLI: ok"
