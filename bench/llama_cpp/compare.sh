#!/usr/bin/env bash
# mswa-serve's engine_bench and llama.cpp's llama-bench / llama-batched-bench on the same shape,
# run alternately (these machines drift by 1.5x within minutes, so only pairs run back to back
# compare). The GGUF has random weights at MODEL_DIR's shape (gguf_shape.py), each of our
# --dtype values beside the llama.cpp type of the same bytes per weight.
#   bench/llama_cpp/compare.sh LLAMA_BIN_DIR MODEL_DIR [TYPES=f32,bf16,int8] [ROUNDS=3] [BATCHES=8,32]
# TYPES: f32, bf16, bf16x (bf16 weights, float32 activations), int8 (beside q8_0) and q4 (beside
# q4_0 with a q8_0 output matrix, as ours keeps the LM head int8).
# LLAMA_BIN_DIR: what bench/llama_cpp/build.sh built (build/llama.cpp/build/bin).
# Prints one line per run: engine, type, test, tokens/s. Batched rows: llama.cpp's S_TG (decode
# tokens/s of N sequences after a 128-token prompt each) beside engine_bench's "tg128 bN".
# DEPTH=N: batch-1 decode after N tokens of context instead (llama-bench -d, engine_bench
# --depth: "tg128 @ dN"), nothing else. KV=float16|bfloat16|float32: our KV cache type
# (engine_bench --kv_cache_dtype; llama.cpp's default is f16, ours float32).
set -euo pipefail
bin=$1 model=$2 types=${3:-f32,bf16,int8} rounds=${4:-3} batches=${5:-8,32}
depth=${DEPTH:-0} kv=${KV:-auto}
if ((depth > 0)); then
  llama_tests=(-p 0 -n 128 -d "$depth") our_tests=(--tests tg128 --depth "$depth")
else
  llama_tests=(-p 512 -n 128) our_tests=(--tests pp512,tg128)
fi
here=$(cd "$(dirname "$0")" && pwd)
engine_bench=${ENGINE_BENCH:-$here/../../build/bench/engine_bench}
threads=${THREADS:-2}
python=${PYTHON:-/usr/bin/python3}  # Debian's, with numpy (setup.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# bf16 runs the server's default activations (bfloat16 where the CPU has AVX-512 BF16, as
# llama.cpp computes); bf16x keeps them float32 (exact), against the same GGUF.
for t in ${types//,/ }; do
  case $t in
    f32) gguf=f32 dtype=float32 act=auto ;;
    bf16) gguf=bf16 dtype=bfloat16 act=auto ;;
    bf16x) gguf=bf16 dtype=bfloat16 act=float32 ;;
    int8) gguf=q8_0 dtype=int8 act=auto ;;
    q4) gguf=q4_0 dtype=q4 act=auto ;;
    *) echo "unknown type $t (f32, bf16, bf16x, int8, q4)" >&2; exit 2 ;;
  esac
  "$python" "$here/gguf_shape.py" "$model/config.json" "$tmp/m.gguf" --type "$gguf"
  for ((r = 1; r <= rounds; ++r)); do
    "$bin/llama-bench" -m "$tmp/m.gguf" -t "$threads" "${llama_tests[@]}" -r 3 2>/dev/null |
      awk -F'|' -v t="$gguf" '$7 ~ /pp512|tg128/ {gsub(/ /, "", $7); split($8, v, "±"); printf "llama.cpp  %-6s %-10s %10.1f\n", t, $7, v[1]}'
    "$engine_bench" --model_dir "$model" --dtype "$dtype" --activation_dtype "$act" --threads "$threads" \
        --kv_cache_dtype "$kv" "${our_tests[@]}" 2>/dev/null |
      awk -F'|' -v t="$t" '$5 ~ /pp512|tg128/ {gsub(/ /, "", $5); printf "mswa       %-6s %-10s %10.1f\n", t, $5, $6}'
  done
  ((depth == 0)) || continue
  "$bin/llama-batched-bench" -m "$tmp/m.gguf" -t "$threads" -c $((160 * ${batches##*,})) -b 2048 -ub 512 \
      -npp 128 -ntg 128 -npl "$batches" 2>/dev/null |
    awk -F'|' -v t="$gguf" '$2 ~ /^ *128 *$/ {gsub(/ /, "", $4); printf "llama.cpp  %-6s tg128b%-4s %10.1f\n", t, $4, $9}'
  "$engine_bench" --model_dir "$model" --dtype "$dtype" --activation_dtype "$act" --threads "$threads" \
      --kv_cache_dtype "$kv" --tests batches --batches "$batches" 2>/dev/null |
    awk -F'|' -v t="$t" '$5 ~ /tg128 b/ {gsub(/ /, "", $5); printf "mswa       %-6s %-10s %10.1f\n", t, $5, $6}'
done
