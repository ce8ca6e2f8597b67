#!/usr/bin/env bash
# The engine against the independent float64 Hugging Face reference, one tiny random-weight model
# per HF family variant (tests/python/hf_reference.py list): Llama (llama3 and linear RoPE, biases,
# sharded bf16), Mistral, Gemma 2, Gemma 3 (legacy and new config forms, multimodal layout), Phi-3,
# Qwen2, Qwen3.
#
# Each model runs twice: in 7-token steps (every product through the decode-sized kernels) and in
# 100-token steps over 150 tokens (prefill products through BLAS), with float32 activations,
# within 1e-4 of the reference. A bfloat16 model runs a third time with its activations rounded
# to bfloat16 (--activation_dtype bfloat16), within BF16_ACTIVATIONS_TOLERANCE: rounding each
# product's input to 8 significant bits moves these tiny random models' log-probabilities by up
# to 0.043 (Qwen3; Llama 0.010), where a wrong product moves them by whole units. A reference
# that rounds the same inputs only halves that (0.023): wherever its float64 value and the
# engine's fp32 one round to different bfloat16 neighbours, the difference carries into later
# layers, whose roundings then differ more often.
#
# Usage: hf_crosscheck.sh ENGINE_ORACLE PYTHON WORKDIR
#   ENGINE_ORACLE MODEL_DIR OUT_JSON  must write {"score": {...}, "generate": {...}} as described in
#   hf_reference.py. Stops at the first variant that fails; prints one line per variant.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 ENGINE_ORACLE PYTHON WORKDIR" >&2
  exit 2
fi
ORACLE=$1 PYTHON=$2 WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
REF="$HERE/hf_reference.py"
rm -rf "$WORK" && mkdir -p "$WORK"

BF16_ACTIVATIONS_TOLERANCE=0.1
variants=$("$PYTHON" "$REF" list)
n=0
for v in $variants; do
  dir="$WORK/$v" json="$WORK/$v.json" log="$WORK/$v.log"
  "$PYTHON" "$REF" make "$v" "$dir"
  runs=("--chunk 7 --tokens 64" "--chunk 100 --tokens 150")
  if grep -q '"torch_dtype": *"bfloat16"' "$dir/config.json"; then
    runs+=("--chunk 100 --tokens 150 --activation_dtype bfloat16")
  fi
  for steps in "${runs[@]}"; do
    tolerance=1e-4
    case $steps in *bfloat16*) tolerance=$BF16_ACTIVATIONS_TOLERANCE ;; esac
    # shellcheck disable=SC2086
    if ! "$ORACLE" "$dir" "$json" $steps >"$WORK/$v.oracle.log" 2>&1; then
      echo "FAIL $v ($steps): the engine oracle failed on $dir:" >&2
      tail -n 20 "$WORK/$v.oracle.log" >&2
      exit 1
    fi
    if ! "$PYTHON" "$REF" check "$dir" "$json" --tolerance "$tolerance" >"$log" 2>&1; then
      echo "FAIL $v ($steps):" >&2
      cat "$log" >&2
      exit 1
    fi
    echo "ok   $v ($steps): $(head -n 1 "$log" | sed 's/^[^:]*: //')"
  done
  n=$((n + 1))
done
echo "hf_crosscheck: all $n variants agree with the float64 Hugging Face reference"
