#!/usr/bin/env bash
# Runs the README's HTTP examples (the ```bash blocks between <!-- http-examples:begin --> and
# <!-- http-examples:end -->) against a real mswa-server on the default model, with
# localhost:8000 pointed at the test's port. Each block must exit 0 and print JSON or SSE; a
# block whose comment says "error" must print an OpenAI error object, every other none.
#   readme_examples_test.sh SOURCE_DIR MSWA_SERVER WORK_DIR
set -euo pipefail
SRC=$1 SERVER=$2 WORK=$3
source "$(cd "$(dirname "$0")" && pwd)/start_server.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }

start_http_server "$SERVER" "$WORK" --model_dir "$SRC/models/mswa-books-small"
[ -n "$PORT" ] || fail "no HTTP port in $(cat "$WORK/server.out")"

# Blocks to files, one per block.
python3 - "$SRC/README.md" "$WORK" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = text.split("<!-- http-examples:begin -->")[1].split("<!-- http-examples:end -->")[0]
blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
assert len(blocks) >= 3, f"only {len(blocks)} example blocks"
for i, b in enumerate(blocks):
    open(f"{sys.argv[2]}/block{i}.sh", "w").write(b)
PY

n=0
for block in "$WORK"/block*.sh; do
  sed -i "s|localhost:8000|127.0.0.1:$PORT|g" "$block"
  out=$(bash -euo pipefail "$block") || fail "$(basename "$block") exited non-zero: $(cat "$block")"
  [ -n "$out" ] || fail "$(basename "$block") printed nothing"
  # Every line is JSON, an SSE data line, or empty.
  python3 - "$block" "$out" <<'PY' || fail "$(basename "$block"): $out"
import json, sys
block, out = open(sys.argv[1]).read(), sys.argv[2]
wants_error = "error" in block.splitlines()[0].lower()
objects = []
for line in out.splitlines():
    if not line.strip():
        continue
    if line.startswith("data: "):
        payload = line[len("data: "):]
        if payload != "[DONE]":
            objects.append(json.loads(payload))
    else:
        # several JSON objects may follow one another on one line (one per curl)
        dec, i = json.JSONDecoder(), 0
        while i < len(line):
            obj, i = dec.raw_decode(line, i)
            objects.append(obj)
            while i < len(line) and line[i].isspace():
                i += 1
if "data: " in out:
    assert out.rstrip().endswith("data: [DONE]"), "a stream ends with [DONE]"
errors = [o for o in objects if "error" in o]
if wants_error:
    assert errors and errors[0]["error"]["param"], "an error naming its field"
else:
    assert not errors, errors
    assert objects, "no JSON"
PY
  n=$((n + 1))
done
echo "README HTTP examples: $n blocks OK"
