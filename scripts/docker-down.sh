#!/usr/bin/env bash
# Stop the dockerd that scripts/docker-up.sh started (by its pid file); leaves any other alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PIDFILE="build/dockerd/dockerd.pid"
[ -f "$PIDFILE" ] || { echo "docker-down: no dockerd of ours"; exit 0; }
pid=$(cat "$PIDFILE")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
fi
rm -f "$PIDFILE"
echo "docker-down: dockerd $pid stopped"
