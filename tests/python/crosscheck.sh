#!/usr/bin/env bash
# C++ reference forward vs the independent Python one, on models that exercise GQA, tied and
# untied heads, unbounded / window-1 / mixed windows, f16 and bf16 storage, and a large start
# position.  Usage: crosscheck.sh MSWA_MODEL PYTHON WORKDIR
set -euo pipefail
MSWA_MODEL=$1 PYTHON=$2 WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"

check() {  # name, init options..., then -- logits options
  local name=$1; shift
  local init=() logits=()
  while [ "$1" != "--" ]; do init+=("$1"); shift; done; shift
  logits=("$@")
  "$MSWA_MODEL" init "$WORK/$name" "${init[@]}" >/dev/null
  "$MSWA_MODEL" logits "$WORK/$name" "${logits[@]}" --out "$WORK/$name.logits.safetensors"
  "$PYTHON" "$HERE/reference_forward.py" "$WORK/$name" "$WORK/$name.logits.safetensors"
}

check mswa_gqa --preset mswa --window 8 --hidden 64 --layers 4 --heads 8 --kv-heads 4 --seed 1 \
  -- --text "The quick brown fox jumps over the lazy dog; naïve café." --bos
check mha_untied --preset mswa-h --window 4 --hidden 48 --layers 2 --heads 4 --head-dim 16 \
  --untied --seed 2 -- --tokens 3,1,4,1,5,9,2,6,5,3,5,8,9,7,9,3,2,3,8,4
check full_f16 --preset full --hidden 32 --layers 2 --heads 2 --kv-heads 1 --dtype f16 --seed 3 \
  --head-scales 1 -- --text "full attention, stored as float16"
check swa_bf16_far --preset swa --window 3 --hidden 32 --layers 3 --heads 4 --kv-heads 2 \
  --dtype bf16 --seed 4 -- --text "positions far from zero" --start-pos 10000000
check window_one --preset swa --window 1 --hidden 32 --layers 2 --heads 4 --seed 5 \
  -- --text "each token alone"
echo "crosscheck: all models agree"
