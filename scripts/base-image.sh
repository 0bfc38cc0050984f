#!/usr/bin/env bash
# A local base image for hosts that cannot pull python:3.12-slim: Debian bookworm's python3 from
# Debian's package registry, via debootstrap, imported into Docker (about 75 s). Usage:
#   scripts/base-image.sh [NAME]   (default fastapi-bench-base:bookworm; skipped if it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="${1:-fastapi-bench-base:bookworm}"
if docker image inspect "$NAME" >/dev/null 2>&1; then
  echo "base-image: $NAME exists"
  exit 0
fi
ROOTFS="build/rootfs"
mkdir -p build  # a fresh clone has none (an engine that already runs made no build/dockerd)
rm -rf "$ROOTFS"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" >build/debootstrap.log
tar -C "$ROOTFS" -c . | docker import - "$NAME" >/dev/null
rm -rf "$ROOTFS"
echo "base-image: $NAME ($(docker run --rm "$NAME" python3 --version))"
