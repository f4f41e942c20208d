#!/usr/bin/env bash
# Installs the offline vLLM bundle built by vllm_bundle.py, on the GPU machine (no network).
#
#   bash scripts/device/vllm/install.sh PIECES_DIR TARGET_DIR
#
# PIECES_DIR holds part1.tar.xz .. partN.tar.xz (byte pieces of one tar.xz stream, joined in
# numeric order) and SHA256SUMS. Every wheel is installed with ONE `pip install --target` (a second
# --upgrade call would replace TARGET/bin). Then: export PYTHONPATH=TARGET PATH=TARGET/bin:$PATH.
# Idempotent: a TARGET that already imports vllm is left as it is.
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,9p "$0"; exit 2; }
pieces=$1 target=$2
py=${PYTHON:-python3}

if PYTHONPATH=$target "$py" -c "import vllm, sys; sys.exit(vllm.__version__ != '0.24.0')" 2>/dev/null; then
  echo "install: vllm 0.24.0 already in $target"; exit 0
fi
cd "$pieces"
[ -f SHA256SUMS ] || { echo "install: no SHA256SUMS in $pieces" >&2; exit 3; }
while read -r sum name; do
  [ -f "$name" ] || { echo "install: $pieces/$name is missing (carry every piece first)" >&2; exit 3; }
  echo "$sum  $name" | sha256sum -c --quiet - || { echo "install: $name is corrupt: carry it again" >&2; exit 3; }
done < SHA256SUMS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2046 # piece names are partN.tar.xz
cat $(awk '{print $2}' SHA256SUMS | sort -V) | "$py" -c "
import lzma, sys, tarfile
with tarfile.open(fileobj=lzma.LZMAFile(sys.stdin.buffer), mode='r|') as t:
    t.extractall(sys.argv[1], filter='data')
" "$work"
mkdir -p "$target"
"$py" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --upgrade \
  --target "$target" "$work"/wheels/*.whl
echo "install: $(ls "$work"/wheels | wc -l) wheels into $target; kernels:"
ls "$target"/vllm/*.so "$target"/vllm/vllm_flash_attn/*.so 2>/dev/null | sed 's/^/  /'
