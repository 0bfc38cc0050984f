"""Launcher: `python -m app.serve` builds the server command from the environment and execs it,
so the pid is the server's own master and signals reach it directly.

BENCH_SERVER uvicorn|gunicorn (uvicorn), BENCH_WORKERS (1), BENCH_PORT (8000), BENCH_BIND (an IPv4
or IPv6 address literal such as 0.0.0.0 or ::1, without brackets; 127.0.0.1: any other address must
be asked for), BENCH_LOOP auto|asyncio|uvloop and BENCH_HTTP auto|h11|httptools (uvicorn only);
BENCH_WORKER_PINNING set|core (set: see app/pinning.py); THREADPOOL_TOKENS and BENCH_STATS_DIR pass
through to the app. Each start gets a fresh BENCH_PIN_DIR (inside BENCH_STATS_DIR when given) where
the workers claim their slots.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tempfile
from collections.abc import Mapping

from app.pinning import MODES as PINNINGS  # stdlib only, like this module

SERVERS = ("uvicorn", "gunicorn")
LOOPS = ("auto", "asyncio", "uvloop")
HTTPS = ("auto", "h11", "httptools")
GRACEFUL_S = "3"  # stopping a target between cells should take seconds, not the default 30


class BadSetting(ValueError):
    pass


def _choice(env: Mapping[str, str], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(key, default)
    if value not in allowed:
        raise BadSetting(f"{key}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _int(env: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    text = env.get(key, str(default))
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise BadSetting(f"{key}={text!r}: expected a whole number from {lo} to {hi}")
    return int(text)


def _address(env: Mapping[str, str], key: str, default: str) -> str:
    # an IP literal only: a hostname would resolve differently in the two servers (gunicorn binds
    # every address it resolves to, uvicorn the first) and in the runner that connects to it.
    # The text passes on as given (both servers take any form ip_address() takes, bar a scope).
    text = env.get(key, default)
    try:
        if "%" in text:  # ip_address() takes an IPv6 scope ("fe80::1%eth0"); the servers do not
            raise ValueError(text)
        ipaddress.ip_address(text)
    except ValueError:
        raise BadSetting(f"{key}={text!r}: expected an IP address such as 127.0.0.1, 0.0.0.0, ::1 or :: "
                         "(not a hostname; IPv6 without brackets or a %scope)") from None
    return text


def command(env: Mapping[str, str]) -> list[str]:
    """The server command line for these settings (pure, so tests can read it); BadSetting if invalid."""
    server = _choice(env, "BENCH_SERVER", "uvicorn", SERVERS)
    workers = _int(env, "BENCH_WORKERS", 1, 1, 1024)
    port = _int(env, "BENCH_PORT", 8000, 1, 65535)
    bind = _address(env, "BENCH_BIND", "127.0.0.1")
    loop = _choice(env, "BENCH_LOOP", "auto", LOOPS)
    http = _choice(env, "BENCH_HTTP", "auto", HTTPS)
    _choice(env, "BENCH_WORKER_PINNING", "set", PINNINGS)  # read by the app; checked before start
    if "THREADPOOL_TOKENS" in env:  # read by the app; checked here so a typo fails before start
        _int(env, "THREADPOOL_TOKENS", 40, 1, 100_000)
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "app.main:app", "--host", bind, "--port", str(port),
                "--workers", str(workers), "--loop", loop, "--http", http, "--no-access-log",
                "--log-level", "warning", "--timeout-graceful-shutdown", GRACEFUL_S]
    # UvicornWorker takes uvloop and httptools when installed, as uvicorn's "auto" does, so both
    # servers run the same loop and parser; BENCH_LOOP/BENCH_HTTP apply to uvicorn only.
    # No access log: gunicorn has none unless --access-logfile is given, and UvicornWorker copies
    # gunicorn's (empty) access handlers to uvicorn.access, which then skips formatting entirely.
    # --keep-alive 5: uvicorn's own default (gunicorn's is 2 s, which would close idle Locust
    # connections between slow requests on one server and not the other).
    # --timeout 120: the arbiter kills a worker whose loop is blocked longer than this, and
    # /async/blocking_sleep may block it for up to 60 s by design.
    # --no-control-socket: gunicorn 27's control socket (under $HOME) is unused here, and it would
    # be one more thing to write on the container's read-only root.
    return [sys.executable, "-m", "gunicorn", "app.main:app", "-k", "uvicorn_worker.UvicornWorker",
            "-w", str(workers), "-b", _host_port(bind, port), "--log-level", "warning",
            "--graceful-timeout", GRACEFUL_S, "--timeout", "120", "--keep-alive", "5", "--no-control-socket"]


def _host_port(address: str, port: int) -> str:
    # gunicorn's -b splits HOST:PORT at the last colon, so an IPv6 address goes in brackets
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def main() -> None:
    env = dict(os.environ)
    try:
        argv = command(env)
    except BadSetting as exc:
        print(f"app.serve: {exc}", file=sys.stderr)
        sys.exit(2)
    # /info reports these; command() has checked them, so the defaults are what runs
    env.setdefault("BENCH_SERVER", "uvicorn")
    env.setdefault("BENCH_WORKERS", "1")
    env.setdefault("BENCH_WORKER_PINNING", "set")
    # fresh per start: a slot or affinity file of an earlier server must not count for this one
    stats_dir = env.get("BENCH_STATS_DIR")
    if stats_dir:
        os.makedirs(stats_dir, exist_ok=True)
    env["BENCH_PIN_DIR"] = tempfile.mkdtemp(prefix="pin-", dir=stats_dir or None)
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
