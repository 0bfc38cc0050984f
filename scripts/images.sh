#!/usr/bin/env bash
# Build the target, loadgen, db and upstream images (BASE_IMAGE=... as for `docker compose build`) and fail when
# the build does: Compose 2.40 exits 0 when BuildKit fails to solve (a base image it cannot
# pull, say), so its output is read too. Usage: scripts/images.sh [SERVICE...]
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
docker compose --profile io build "$@" 2>&1 | tee "$log"
if grep -q '^failed to solve' "$log"; then
  echo "images: the build failed: $(grep '^failed to solve' "$log" | tail -1 | cut -c1-300)" >&2
  exit 1
fi
