#!/usr/bin/env bash
# The README's mswa-model commands work as shown, and bad input gives clear errors and exit codes.
# With PYTHON, also info and set-windows on tiny Hugging Face directories
# (tests/python/hf_reference.py make): Gemma 3 text and multimodal.
# Usage: mswa_model_cli_test.sh MSWA_MODEL WORKDIR [PYTHON]
set -euo pipefail
MSWA_MODEL=$1 WORK=$2 PYTHON=${3:-}
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
"$MSWA_MODEL" info "$WORK/full" | grep "unbounded: some heads attend to the whole sequence" >/dev/null \
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

# set-windows usage errors (exit 2) need no model.
expect_exit 2 "exactly one of --preset, --windows, --reset" "$MSWA_MODEL" set-windows "$WORK/m"
expect_exit 2 "exactly one of --preset, --windows, --reset" \
  "$MSWA_MODEL" set-windows "$WORK/m" --reset --preset swa
expect_exit 2 "--window goes with --preset" "$MSWA_MODEL" set-windows "$WORK/m" --reset --window 8
# An mswa config's windows are its own: --reset would leave it without any.
expect_exit 1 "config.json left unchanged" "$MSWA_MODEL" set-windows "$WORK/m" --reset
"$MSWA_MODEL" set-windows "$WORK/m" --preset swa --window 32 | grep "window 32 on all 4 layers" >/dev/null \
  || fail "set-windows on an mswa model"
"$MSWA_MODEL" info "$WORK/m" | grep -Eq "^  windows: explicit attention_windows \(window 32 on all 4 layers\)$" \
  || fail "info after set-windows on an mswa model"

if [ -n "$PYTHON" ]; then
  REF="$(cd "$(dirname "$0")/.." && pwd)/python/hf_reference.py"
  # Gemma 3 text, legacy config: 6 layers, 4 heads on 2 KV heads, window 4 on layers whose
  # (index + 1) is not a multiple of 3.
  G=$WORK/gemma3
  "$PYTHON" "$REF" make gemma3_text_legacy "$G"
  cp "$G/config.json" "$WORK/gemma3_config.json"
  "$MSWA_MODEL" info "$G" > "$WORK/g.txt"
  cat "$WORK/g.txt"
  for re in '^  family gemma3_text, vocab 320, hidden 72, layers 6, heads 4 \(kv 2, head_dim 32\)' \
      '^  arch: \(1\+w\) norms, sandwich norms, q/k norm, embeddings x8\.5, GELU-tanh, attn scale 1/sqrt\(24\), RoPE per layer type: local theta 10000 / global theta 1e6 linear x8$' \
      '^  tokenizer none ' '^  bos 2, eos 1,106$' \
      "^  windows: the model's own \(window 4 on 4 layers, unbounded on 2\)$" \
      '^ +1 \| +4$' '^ +2 \| +0$' \
      '^  window +4: +8 KV heads in 4 layers' '^  window unbounded: +4 KV heads in 2 layers'; do
    grep -Eq -- "$re" "$WORK/g.txt" || fail "gemma3 info: no line matches '$re'"
  done
  # Query heads 0-1 share KV head 0 and 2-3 KV head 1.
  "$MSWA_MODEL" set-windows "$G" --windows "2,2,8,8;2,2,8,8;4;4;8,8,16,16;8,8,16,16" >/dev/null
  "$MSWA_MODEL" info "$G" > "$WORK/g2.txt"
  for re in "^  windows: an MSWA schedule replaces the model's own \(trained with: window 4 on 4 layers, unbounded on 2\)$" \
      '^  layer \| +h0 +h1 +h2 +h3 \| native$' '^ +0 \| +2 +2 +8 +8 \| +4$' \
      '^ +2 \| +4 +4 +4 +4 \| +0$' '^ +5 \| +8 +8 +16 +16 \| +0$' \
      '^  bounded: no sequence of any length needs more than'; do
    grep -Eq -- "$re" "$WORK/g2.txt" || { cat "$WORK/g2.txt"; fail "gemma3 set-windows: no line matches '$re'"; }
  done
  cp "$G/config.json" "$WORK/g2_config.json"
  expect_exit 1 "query heads 0 and 1 share KV head 0 but have different windows" \
    "$MSWA_MODEL" set-windows "$G" --windows "2,4,8,8;2,2,8,8;4;4;8;8"
  cmp -s "$G/config.json" "$WORK/g2_config.json" || fail "a refused set-windows changed config.json"
  expect_exit 1 "lists 2 layers; the model has 6" "$MSWA_MODEL" set-windows "$G" --windows "4;4"
  "$MSWA_MODEL" set-windows "$G" --reset >/dev/null
  cmp -s "$G/config.json" "$WORK/gemma3_config.json" || fail "--reset did not restore config.json"
  # A tokenizer.json beside the config is what the server would load (info does not parse it).
  echo '{}' > "$G/tokenizer.json"
  "$MSWA_MODEL" info "$G" | grep -Eq '^  tokenizer tokenizer\.json$' || fail "tokenizer.json not reported"

  # Gemma 3 multimodal: the decoder under model.language_model., a vision tower it ignores;
  # the override sits at the top level of the multimodal config.
  MM=$WORK/gemma3_mm
  "$PYTHON" "$REF" make gemma3_multimodal "$MM"
  "$MSWA_MODEL" info "$MM" > "$WORK/mm.txt"
  grep -Eq '^  also [0-9]+ parameters in tensors the decoder does not read' "$WORK/mm.txt" \
    || { cat "$WORK/mm.txt"; fail "multimodal: ignored tensors not reported"; }
  "$MSWA_MODEL" set-windows "$MM" --preset mswa-l --window 4 --layer-scales 1,2 >/dev/null
  "$MSWA_MODEL" info "$MM" | grep -Eq '^ +5 \| +8 \| +0$' || fail "multimodal set-windows"
fi
echo "mswa-model CLI: ok"
