#!/usr/bin/env bash
# Download every pinned wheel for the image's Python version and platform into build/wheelhouse,
# so image builds install with --no-index (no network inside a build). The Python version is read
# from BASE_IMAGE when an engine answers, else from PYTHON_VERSION (default: the host's).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE="${BASE_IMAGE:-python:3.12-slim}"
if [ -z "${PYTHON_VERSION:-}" ]; then
  PYTHON_VERSION=$(docker run --rm "$BASE_IMAGE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null \
    || python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
fi
case "$(uname -m)" in
  x86_64) PLATFORM=manylinux2014_x86_64 ;;
  aarch64) PLATFORM=manylinux2014_aarch64 ;;
  *) echo "wheelhouse: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
OUT=build/wheelhouse
mkdir -p "$OUT"
# pip and setuptools too: the image's venv may carry an older pip than the wheels need
python3 -m pip download --quiet --disable-pip-version-check --dest "$OUT" --only-binary=:all: \
  --python-version "$PYTHON_VERSION" --platform "$PLATFORM" --platform linux_x86_64 \
  --platform "manylinux_2_17_$(uname -m)" --platform "manylinux_2_28_$(uname -m)" \
  -r app/requirements.txt -r loadgen/requirements.txt
echo "wheelhouse: $(ls "$OUT" | wc -l) wheels for Python $PYTHON_VERSION ($PLATFORM) in $OUT"
