#!/bin/sh
# A throw-away PostgreSQL cluster per container start (the data lives in a tmpfs): trust on
# loopback only, TCP only, no fsync (the workloads only read). DB_PORT and DB_MAX_CONNECTIONS come
# from compose.yaml. The flags are bench/run/postgres.py's server_argv (tests/unit/test_services.py compares).
set -eu
DATA=/var/lib/bench-pg/data
/opt/pgbin/initdb -D "$DATA" -U bench --auth=trust --encoding=UTF8 --no-sync --no-instructions >/dev/null
exec /opt/pgbin/postgres -D "$DATA" -p "${DB_PORT:-5432}" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories= -c "max_connections=${DB_MAX_CONNECTIONS:-100}" \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off
