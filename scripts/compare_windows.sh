#!/usr/bin/env bash
# The paper's comparison at small scale: window presets trained with the same size, data, steps,
# seed and total attention budget (sum of windows over heads and layers), each scored on the
# validation files. Prints one table row per preset; logs and models go to OUT_DIR/<preset>.
# Rerunning resumes unfinished runs from their checkpoints.
#
#   scripts/compare_windows.sh OUT_DIR [STEPS] [PRESET ...]     (default: 120 steps, swa mswa)
#
# Budgets for the default shape (6 layers x 8 heads): mswa at w = 128 sums to 5280 (mean 110);
# swa at 110 is exactly that; mswa-h at 117 (ladder mean 0.9375 w) and mswa-l at 120 (6 layers:
# 0.5 x 3, 1 x 2, 2 x 1) fall within 1%.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: compare_windows.sh OUT_DIR [STEPS] [PRESET ...]}
STEPS=${2:-120}
shift $(( $# >= 2 ? 2 : 1 ))
PRESETS=("$@")
[ ${#PRESETS[@]} -gt 0 ] || PRESETS=(swa mswa)
CORPUS=${CORPUS:-$(cd .. && pwd)/shared/corpus}
TRAIN=$(ls "$CORPUS"/books/train-*.txt | paste -sd,)
VALID="$CORPUS/books/valid.txt,$CORPUS/wikitext-2/wiki.valid.raw"
declare -A WINDOW=([swa]=110 [mswa]=128 [mswa-h]=117 [mswa-l]=120)
mkdir -p "$OUT"

for preset in "${PRESETS[@]}"; do
  [ -n "${WINDOW[$preset]:-}" ] || { echo "unknown preset $preset" >&2; exit 2; }
  if ! grep -q "^wrote " "$OUT/$preset.log" 2>/dev/null; then
    build/model/mswa-train --out "$OUT/$preset" --train "$TRAIN" --valid "$VALID" \
      --preset "$preset" --window "${WINDOW[$preset]}" --hidden 256 --layers 6 --heads 8 \
      --batch 16 --seq_len 1024 --steps "$STEPS" --warmup 20 --lr 2e-3 --eval_every 0 \
      --eval_bytes 262144 --checkpoint_every 20 --seed 1 >> "$OUT/$preset.log"
  fi
done

printf "| preset | window sum | books valid bpb | wiki valid bpb | train tokens/s | KV bytes per sequence |\n"
printf "|---|---|---|---|---|---|\n"
for preset in "${PRESETS[@]}"; do
  sum=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(sum(map(sum, c['attention_windows'])))" \
        "$OUT/$preset/config.json")
  books=$(grep "eval step $STEPS: .*books/valid.txt" "$OUT/$preset.log" | tail -1 | awk '{print $(NF-3)}')
  wiki=$(grep "eval step $STEPS: .*wiki.valid.raw" "$OUT/$preset.log" | tail -1 | awk '{print $(NF-3)}')
  # tokens/s of the last progress line of the last (possibly resumed) session
  tps=$(grep "^step .* tokens/s" "$OUT/$preset.log" | tail -1 | sed -E 's/.* ([0-9]+) tokens\/s.*/\1/')
  kv=$(build/model/mswa-model info "$OUT/$preset" | sed -n 's/.*needs more than //p')
  printf "| %s | %s | %s | %s | %s | %s |\n" "$preset" "$sum" "$books" "$wiki" "$tps" "$kv"
done
