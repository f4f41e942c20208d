#!/usr/bin/env bash
# Download, on a machine with network, the Python wheels that `transformers serve` needs on the
# GPU machine and that its image lacks (the image has Python 3.12, torch 2.11, transformers 5.17,
# tokenizers; not fastapi, uvicorn, pydantic, openai & co). Run from the repository root; the
# folder is git-ignored through .git/info/exclude and travels with the device call (carry .whl).
#
#   bash scripts/device/prepare_wheels.sh                      # -> .whl/, for CPython 3.12
#   bash scripts/device/prepare_wheels.sh --dest /tmp/w --python-version 3.11
#
# run_goldens.sh installs them with pip --no-index --no-deps --target /tmp/site.
set -euo pipefail

dest=.whl
pyver=3.12
while [ $# -gt 0 ]; do
  case $1 in
    --dest) dest=$2; shift 2 ;;
    --python-version) pyver=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "prepare_wheels: unknown argument $1" >&2; exit 2 ;;
  esac
done

# The versions that ran on the GPU machine (../shared/device/README.md). One version of each:
# two versions of one package stop the whole install there.
PINS=(
  fastapi==0.121.0
  starlette==0.49.3
  uvicorn==0.38.0
  pydantic==2.12.4
  pydantic-core==2.41.5
  annotated-types==0.7.0
  typing-inspection==0.4.2
  openai==2.8.0
  distro==1.9.0
  jiter==0.12.0
  sniffio==1.3.1
)

# Installed only where the image cannot import them (the serve CLI imports requests; the image
# is expected to have it, as other packages there need it): a safety net, not an upgrade.
FALLBACK=(
  requests==2.32.5
  urllib3==2.5.0
  idna==3.10
  certifi==2025.10.5
  charset-normalizer==3.4.4
)

if [ "$dest" = .whl ] && git rev-parse --git-dir >/dev/null 2>&1; then
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
fi
mkdir -p "$dest"
for p in "${PINS[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" "$p"
done
mkdir -p "$dest/fallback"
for p in "${FALLBACK[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest/fallback" "$p"
done
ls -l "$dest" "$dest/fallback"
du -sh "$dest"
