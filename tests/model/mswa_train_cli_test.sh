#!/usr/bin/env bash
# mswa-train as the README shows it: byte-level and SentencePiece runs write model directories
# mswa-model loads, rerunning the command resumes, and bad input gives clear errors.
# Usage: mswa_train_cli_test.sh MSWA_TRAIN MSWA_MODEL WORKDIR
set -euo pipefail
MSWA_TRAIN=$1 MSWA_MODEL=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }

for i in $(seq 400); do echo "the window slides over line $((i % 13)) of the book."; done > "$WORK/train.txt"
head -c 2000 "$WORK/train.txt" > "$WORK/valid.txt"
SMALL=(--preset mswa --window 8 --hidden 32 --layers 4 --heads 4 --batch 2 --seq_len 64
       --warmup 2 --lr 1e-2 --eval_every 0 --checkpoint_every 2 --threads 1)

# Bytes: 4 steps, then the same command with --steps 6 resumes at step 4.
"$MSWA_TRAIN" --out "$WORK/bytes" --train "$WORK/train.txt" --valid "$WORK/valid.txt" "${SMALL[@]}" \
  --steps 4 > "$WORK/bytes1.txt"
grep -q "starting from step 0 of 4" "$WORK/bytes1.txt" || fail "start: $(cat "$WORK/bytes1.txt")"
grep -Eq "eval step 4: .*valid.txt [0-9.]+ bits/byte" "$WORK/bytes1.txt" || fail "no evaluation"
"$MSWA_TRAIN" --out "$WORK/bytes" --train "$WORK/train.txt" --valid "$WORK/valid.txt" "${SMALL[@]}" \
  --steps 6 > "$WORK/bytes2.txt"
grep -q "resuming from step 4 of 6" "$WORK/bytes2.txt" || fail "resume: $(cat "$WORK/bytes2.txt")"
"$MSWA_MODEL" info "$WORK/bytes" | grep "bytes" >/dev/null || fail "byte model does not load"

# SentencePiece: the tokenizer is copied into the model directory and used by mswa-model.
spm_train --input="$WORK/train.txt" --model_prefix="$WORK/spm" --vocab_size=300 --model_type=bpe \
  --byte_fallback=true --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --minloglevel=2 > "$WORK/spm_train.log" 2>&1 || fail "spm_train: $(cat "$WORK/spm_train.log")"
"$MSWA_TRAIN" --out "$WORK/spm-model" --tokenizer "$WORK/spm.model" --train "$WORK/train.txt" \
  --valid "$WORK/valid.txt" "${SMALL[@]}" --steps 2 > "$WORK/spm1.txt" 2> "$WORK/spm1.err"
cmp -s "$WORK/spm.model" "$WORK/spm-model/tokenizer.model" || fail "tokenizer not copied"
grep -q '"sentencepiece"' "$WORK/spm-model/config.json" || fail "config: $(cat "$WORK/spm-model/config.json")"
grep -q '"vocab_size": 300' "$WORK/spm-model/config.json" || fail "vocab: $(cat "$WORK/spm-model/config.json")"
"$MSWA_MODEL" logits "$WORK/spm-model" --text "the window" --bos --out "$WORK/spm-logits.safetensors" > /dev/null || fail "mswa-model cannot run the SentencePiece model"

expect_exit() {  # code, pattern, command...
  local code=$1 pattern=$2; shift 2
  set +e; "$@" > "$WORK/out.txt" 2>&1; local got=$?; set -e
  [ "$got" = "$code" ] || fail "exit $got (want $code) from: $* :: $(cat "$WORK/out.txt")"
  grep -q -- "$pattern" "$WORK/out.txt" || fail "no '$pattern' in: $(cat "$WORK/out.txt")"
}
expect_exit 2 "--train is required" "$MSWA_TRAIN" --out "$WORK/x"
expect_exit 2 "does not exist" "$MSWA_TRAIN" --out "$WORK/x" --train "$WORK/train.txt" --tokenizer "$WORK/none.model"
expect_exit 1 "cannot read training file" "$MSWA_TRAIN" --out "$WORK/x" --train "$WORK/none.txt" "${SMALL[@]}"
expect_exit 2 "unknown window preset" "$MSWA_TRAIN" --out "$WORK/x" --train "$WORK/train.txt" --preset sliding
expect_exit 1 "is for a different model" "$MSWA_TRAIN" --out "$WORK/bytes" --train "$WORK/train.txt" \
  "${SMALL[@]}" --window 16 --steps 8
cp "$WORK/train.txt" "$WORK/other.txt"; echo "zebra quagga" >> "$WORK/other.txt"
spm_train --input="$WORK/other.txt" --model_prefix="$WORK/other" --vocab_size=290 --model_type=bpe \
  --byte_fallback=true --minloglevel=2 > /dev/null 2>&1
expect_exit 2 "holds another tokenizer" "$MSWA_TRAIN" --out "$WORK/spm-model" --tokenizer "$WORK/other.model" \
  --train "$WORK/train.txt" "${SMALL[@]}" --steps 4
# SentencePiece's default normalization drops newlines: bits per byte would not be comparable.
expect_exit 0 "does not reproduce" "$MSWA_TRAIN" --out "$WORK/lossy" --tokenizer "$WORK/other.model" \
  --train "$WORK/train.txt" --valid "$WORK/valid.txt" "${SMALL[@]}" --steps 1
echo "mswa-train CLI: all checks passed"
