"""Launcher: `python -m benchagent.serve` builds the server command from the environment and execs it,
so the pid is the server's own master and signals reach it directly.

Every setting is BENCH_<KEY> for a key of the runner's table (bench/scenario/keys.py, target="env"),
which holds each one's default and range and checks them before anything starts: the runner passes
every one, and so does .env.example (made from that table) for a start by hand. Here each is only
required and typed, so a start without one fails in one line instead of running a default of its
own: BENCH_SERVER uvicorn|gunicorn|granian|hypercorn, BENCH_WORKERS, BENCH_PORT, BENCH_BIND (an
IP address literal, without brackets), BENCH_LOOP auto|asyncio|uvloop (auto: uvloop when it is
installed, for every server), BENCH_HTTP auto|h11|httptools (Uvicorn's parsers), the Granian knobs
(granian only), BENCH_WORKER_PINNING set|core (benchagent/pinning.py), BENCH_THREADPOOL_TOKENS and the
pool sizes (read by the app). BENCH_STATS_DIR passes through to the app. Each start gets a fresh
BENCH_PIN_DIR (inside BENCH_STATS_DIR when given) where the workers claim their slots.

The command line is the server's whole configuration: the variables through which a server would
take settings of its own (GRANIAN_*, UVICORN_*, GUNICORN_CMD_ARGS) are dropped before it starts.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from benchagent.pinning import MODES as PINNINGS  # stdlib only, like this module

SERVERS = ("uvicorn", "gunicorn", "granian", "hypercorn")
LOOPS = ("auto", "asyncio", "uvloop")
HTTPS = ("auto", "h11", "httptools")
AGENT = "benchagent.asgi:app"  # every server runs the agent, which imports BENCH_APP (benchagent/asgi.py)
GRACEFUL_S = "3"  # stopping a target between cells should take seconds, not the default 30
# the listen queue, the same for all four: Uvicorn's and Gunicorn's default (Granian's is 1024 and
# Hypercorn's 100, which refuses connections when a few hundred Locust users connect at once)
BACKLOG = "2048"
FOREIGN_ENV = ("GRANIAN_", "UVICORN_", "GUNICORN_CMD_ARGS")
# the app's own whole-number settings (app/main.py, app/db.py, app/upstream.py)
APP_INTS = ("BENCH_THREADPOOL_TOKENS", "BENCH_DB_POOL_SIZE", "BENCH_HTTP_POOL_SIZE")

# The servers with an HTTP implementation of their own -> (its name, as /info reports it; why `http`
# does not apply): `http` picks one of Uvicorn's parsers, so it applies to uvicorn and gunicorn alone.
OWN_HTTP = {
    "granian": ("hyper", "Granian parses HTTP itself (in Rust, with hyper)"),
    "hypercorn": ("h11", "Hypercorn parses HTTP/1.1 with h11 and HTTP/2 with h2, always"),
}
BLOCKING_WHY = ("Granian refuses more than one blocking thread for an ASGI app (only its WSGI "
                "interface uses them); a def endpoint runs in anyio's threadpool: set threadpool_tokens")


class BadSetting(ValueError):
    pass


def unsupported(server: str, http: str, blocking_threads: int) -> str | None:
    """Why `server` cannot run these settings, or None. bench/scenario/matrix.py asks the same before
    anything starts, so the runner and the launcher never disagree."""
    if server in OWN_HTTP and http != "auto":
        return (f"http = {http!r} is one of Uvicorn's parsers (server uvicorn or gunicorn); "
                f"{OWN_HTTP[server][1]}: leave http = auto")
    if server == "granian" and blocking_threads != 1:
        return f"granian_blocking_threads = {blocking_threads}: {BLOCKING_WHY}"
    return None


@dataclass(frozen=True)
class Settings:
    server: str
    workers: int
    port: int
    bind: str
    loop: str  # asyncio | uvloop for granian and hypercorn ("auto" resolved); as given for the others
    http: str
    runtime_threads: int  # granian only (0 for the others)
    blocking_threads: int


def _need(env: Mapping[str, str], key: str) -> str:
    if key not in env:
        raise BadSetting(f"{key} is not set (the runner sets every BENCH_ setting; by hand, start from "
                         ".env.example)")
    return env[key]


def _choice(env: Mapping[str, str], key: str, allowed: tuple[str, ...]) -> str:
    value = _need(env, key)
    if value not in allowed:
        raise BadSetting(f"{key}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _int(env: Mapping[str, str], key: str) -> int:
    text = _need(env, key)
    if not text.isdigit():  # its range is the runner's (keys.py), checked there before the start
        raise BadSetting(f"{key}={text!r}: expected a whole number")
    return int(text)


def _address(env: Mapping[str, str], key: str) -> str:
    # an IP literal only: a hostname would resolve differently in the servers (gunicorn binds
    # every address it resolves to, uvicorn the first) and in the runner that connects to it.
    # The text passes on as given (the servers take any form ip_address() takes, bar a scope).
    text = _need(env, key)
    try:
        if "%" in text:  # ip_address() takes an IPv6 scope ("fe80::1%eth0"); the servers do not
            raise ValueError(text)
        ipaddress.ip_address(text)
    except ValueError:
        raise BadSetting(f"{key}={text!r}: expected an IP address such as 127.0.0.1, 0.0.0.0, ::1 or :: "
                         "(not a hostname; IPv6 without brackets or a %scope)") from None
    return text


def auto_loop() -> str:
    # Uvicorn's own rule for "auto" (uvloop when it imports), applied to every server: Granian's
    # "auto" would take rloop first and Hypercorn's default is asyncio, so "auto" means one thing
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def settings(env: Mapping[str, str]) -> Settings:
    """The settings in `env`, each checked; BadSetting names the first one wrong."""
    server = _choice(env, "BENCH_SERVER", SERVERS)
    loop = _choice(env, "BENCH_LOOP", LOOPS)
    http = _choice(env, "BENCH_HTTP", HTTPS)
    granian = server == "granian"  # the others never read the Granian knobs (the runner sends 0)
    runtime = _int(env, "BENCH_GRANIAN_RUNTIME_THREADS") if granian else 0
    blocking = _int(env, "BENCH_GRANIAN_BLOCKING_THREADS") if granian else 0
    why = unsupported(server, http, blocking)
    if why:
        raise BadSetting(why)
    # read by the app; checked here so a missing one or a typo fails before the start
    _choice(env, "BENCH_WORKER_PINNING", PINNINGS)
    for key in APP_INTS:
        _int(env, key)
    _need(env, "BENCH_DB_POOL_TIMEOUT_S")
    return Settings(server, _int(env, "BENCH_WORKERS"), _int(env, "BENCH_PORT"), _address(env, "BENCH_BIND"),
                    auto_loop() if loop == "auto" and server in ("granian", "hypercorn") else loop, http,
                    runtime, blocking)


def _uvicorn(s: Settings) -> list[str]:
    return ["uvicorn", AGENT, "--host", s.bind, "--port", str(s.port), "--workers", str(s.workers),
            "--loop", s.loop, "--http", s.http, "--no-access-log", "--log-level", "warning",
            "--backlog", BACKLOG, "--timeout-graceful-shutdown", GRACEFUL_S]


def _gunicorn(s: Settings) -> list[str]:
    # benchagent/gunicorn_worker.py runs BENCH_LOOP/BENCH_HTTP as uvicorn would (from the environment).
    # No access log: gunicorn has none unless --access-logfile is given, and UvicornWorker copies
    # gunicorn's (empty) access handlers to uvicorn.access, which then skips formatting entirely.
    # --keep-alive 5: uvicorn's own default (gunicorn's is 2 s, which would close idle Locust
    # connections between slow requests on one server and not the other).
    # --timeout 120: the arbiter kills a worker whose loop is blocked longer than this, and
    # /async/blocking_sleep may block it for up to 60 s by design.
    # --no-control-socket: gunicorn 27's control socket (under $HOME) is unused here, and it would
    # be one more thing to write on the container's read-only root.
    return ["gunicorn", AGENT, "-k", "benchagent.gunicorn_worker.Worker", "-w", str(s.workers),
            "-b", _host_port(s.bind, s.port), "--log-level", "warning", "--backlog", BACKLOG,
            "--graceful-timeout", GRACEFUL_S, "--timeout", "120", "--keep-alive", "5", "--no-control-socket"]


def _granian(s: Settings) -> list[str]:
    # --interface asgi: FastAPI's; Granian's default is its own RSGI. The HTTP version, runtime mode
    # (multi-threaded for ASGI), backpressure (backlog / workers) and the rest are Granian's own.
    # --workers-kill-timeout: a worker that does not stop within seconds is killed, as elsewhere.
    return ["granian", "--interface", "asgi", "--host", s.bind, "--port", str(s.port),
            "--workers", str(s.workers), "--loop", s.loop, "--runtime-threads", str(s.runtime_threads),
            "--blocking-threads", str(s.blocking_threads), "--backlog", BACKLOG, "--no-access-log",
            "--log-level", "warning", "--workers-kill-timeout", GRACEFUL_S, AGENT]


def _hypercorn(s: Settings) -> list[str]:
    # -k picks the loop (Hypercorn's "workers" are asyncio or uvloop); no access log unless
    # --access-logfile is given; --keep-alive 5 as everywhere (Hypercorn's default too)
    return ["hypercorn", AGENT, "-b", _host_port(s.bind, s.port), "-w", str(s.workers),
            "-k", s.loop, "--backlog", BACKLOG, "--keep-alive", "5", "--log-level", "warning",
            "--graceful-timeout", GRACEFUL_S]


# the one table of server command lines: server -> its argv after `python -m`
COMMANDS: dict[str, Callable[[Settings], list[str]]] = {
    "uvicorn": _uvicorn, "gunicorn": _gunicorn, "granian": _granian, "hypercorn": _hypercorn}


def command(env: Mapping[str, str]) -> list[str]:
    """The server command line for these settings (pure, so tests can read it); BadSetting if invalid."""
    s = settings(env)
    return [sys.executable, "-m", *COMMANDS[s.server](s)]


def _host_port(address: str, port: int) -> str:
    # gunicorn's and hypercorn's -b split HOST:PORT at the last colon: an IPv6 address goes in brackets
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def main() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    try:
        argv = command(env)
    except BadSetting as exc:
        print(f"benchagent.serve: {exc}", file=sys.stderr)
        sys.exit(2)
    # fresh per start: a slot or affinity file of an earlier server must not count for this one
    stats_dir = env.get("BENCH_STATS_DIR")
    if stats_dir:
        os.makedirs(stats_dir, exist_ok=True)
    env["BENCH_PIN_DIR"] = tempfile.mkdtemp(prefix="pin-", dir=stats_dir or None)
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
