"""Every key a scenario may set, declared once: its type, default, range or choices and check, so
the validator names the key and the allowed values, and the README's table of knobs has one source.

Also here: which keys only some cells read (SCOPED), and coerce(), which types and checks one value.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import serve  # stdlib only: the launcher's own names for servers, loops and parsers
from bench.errors import BadInput
from bench.scenario import cpuset
from bench.scenario.cells import DB_WORKLOADS, UPSTREAM_WORKLOADS


@dataclass(frozen=True)
class Key:
    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    check: Callable[[Any], None] | None = None
    words: tuple[str, ...] = ()  # besides a value of `kind`: resolved per cell ("cores", "auto")


def _check_cpuset(value: str) -> None:
    if value in ("auto", "all"):
        return
    missing = cpuset.parse(value) - cpuset.host_cpus()
    if missing:
        raise BadInput(
            f"cpuset {value!r} names CPU {cpuset.format(missing)} which this host lacks "
            f"(available: {cpuset.format(cpuset.host_cpus())})"
        )


def _check_bind(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise BadInput(f"{value!r} is not an IP address (e.g. 127.0.0.1, ::1, or 0.0.0.0 for every "
                       "interface)") from None


def is_loopback(bind: str) -> bool:
    return ipaddress.ip_address(bind).is_loopback


# Locust's --run-time format ("1h30m", "90s", "5m") besides plain seconds: users come from `locust -t`
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def parse_duration(text: str) -> float:
    """Seconds from "90", "1.5", "90s", "1m30s" or "1h"; ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(text)
    h, m, sec = match.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(sec or 0)


DURATION_KEYS = ("duration", "warmup")

KEYS: dict[str, Key] = {
    "style": Key(str, "async", "endpoint style", choices=("def", "async")),
    "workload": Key(str, "noop", "what the endpoint does (db, db_blocking, http: README, Real I/O)",
                    choices=("noop", "cpu", "sleep", "blocking_sleep", "db", "db_blocking", "http")),
    "users": Key(int, 10, "concurrent Locust users (closed loop, like ab -c)", lo=1, hi=100_000),
    "load_model": Key(str, "closed", "'closed': users each wait for their answer; 'open': requests leave "
                      "at `rate` whatever the target does, latency from their due time (README, Closed vs "
                      "open loop)",
                      choices=("closed", "open")),
    "rate": Key(float, 0.0, "open loop: requests/s offered, split over the Locust processes", lo=0,
                hi=10_000_000),
    "arrivals": Key(str, "constant", "open loop: 'constant' spacing or 'poisson' arrivals",
                    choices=("constant", "poisson")),
    "max_inflight": Key(int, "auto", "open loop: most requests outstanding at once, i.e. connections, split "
                        "over the Locust processes ('auto' = 1000 per process); one due beyond it is dropped "
                        "and counted", lo=1, hi=1_000_000, words=("auto",)),
    "spawn_rate": Key(float, 100.0, "users started per second (the ramp is not measured)", lo=0.1),
    "duration": Key(float, 10.0, "measured seconds per cell", lo=1, hi=86_400),
    "warmup": Key(float, 3.0, "warm-up seconds before each measurement (discarded)", lo=0, hi=3_600),
    "server": Key(str, "uvicorn", "ASGI server: uvicorn, gunicorn (uvicorn-worker), granian or hypercorn "
                  "(README, Servers)", choices=serve.SERVERS),
    "workers": Key(int, 1, "server worker processes ('cores' = CPUs in target_cpuset)", lo=1, hi=1024,
                   words=("cores",)),
    "worker_pinning": Key(str, "set", "'set': each worker floats over target_cpuset; 'core': worker i "
                          "pinned to its i-th CPU", choices=("set", "core")),
    "threadpool_tokens": Key(int, 40, "anyio thread limiter size per worker (anyio's default: 40)",
                             lo=1, hi=100_000),
    "target_cpuset": Key(str, "auto", "CPUs the target is pinned to ('auto' = a third of the host, "
                         "at least one: see README, On a cloud VM; 'all' = every CPU)", check=_check_cpuset),
    "loadgen_cpuset": Key(str, "auto", "CPUs Locust is pinned to ('auto' = the rest; 'all' = every CPU)",
                          check=_check_cpuset),
    "cpu_iterations": Key(int, 1_000_000, "loop steps of the cpu workload", lo=0, hi=50_000_000),
    "sleep_ms": Key(int, 100, "sleep of the sleep/blocking_sleep workloads", lo=0, hi=60_000),
    "db_query": Key(str, "sleep", "db workloads: 'pk' reads one row by primary key, 'sleep' runs "
                    "pg_sleep(db_sleep_ms)", choices=("pk", "sleep")),
    "db_sleep_ms": Key(int, 20, "db workloads, db_query = sleep: the database's time per query", lo=0,
                       hi=60_000),
    "db_pool_size": Key(int, 10, "db workloads: connections per pool per worker (psycopg_pool, fixed size)",
                        lo=1, hi=10_000),
    "db_pool_timeout_s": Key(float, 30.0, "db workloads: how long a request waits for a pooled connection "
                             "before it fails (psycopg_pool's default: 30 s)", lo=0.1, hi=600),
    "db_dependency": Key(bool, False, "db workload: the connection comes from a `def` dependency "
                         "(Depends), not from the endpoint itself"),
    "upstream_delay_ms": Key(int, 50, "http workload: the upstream stub's delay per request", lo=0,
                             hi=60_000),
    "http_pool_size": Key(int, 100, "http workload: httpx connections per client per worker (all kept "
                          "alive)", lo=1, hi=10_000),
    "db_cpuset": Key(str, "auto", "CPUs of PostgreSQL and the upstream stub, one set per run ('auto' = "
                     "CPUs neither the target nor Locust has, else the target's)", check=_check_cpuset),
    "repeats": Key(int, 1, "times each cell runs (interleaved)", lo=1, hi=1_000),
    "loadgen_processes": Key(int, "auto", "Locust processes on one host ('auto' = one per CPU of "
                             "loadgen_cpuset, at most one per user)", lo=1, hi=256, words=("auto",)),
    "loadgen_workers": Key(int, 0, "distributed Locust workers (0 = no master/worker split; 'auto' = one "
                           "per CPU of loadgen_cpuset, at most one per user)", lo=0, hi=256, words=("auto",)),
    "port": Key(int, 8000, "target port on 127.0.0.1", lo=1, hi=65_535),
    "bind": Key(str, "127.0.0.1", "address the target binds (another one is an explicit choice)",
                check=_check_bind),
    "loop": Key(str, "auto", "event loop of every server ('auto' = uvloop when installed, else asyncio)",
                choices=serve.LOOPS),
    "http": Key(str, "auto", "Uvicorn's HTTP parser, for uvicorn and gunicorn ('auto' = httptools when "
                "installed); granian and hypercorn parse HTTP themselves", choices=serve.HTTPS),
    "granian_runtime_threads": Key(int, 1, "granian: Rust runtime threads per worker, which do the network "
                                   "I/O, never Python code (Granian's default: 1)", lo=1, hi=1024),
    "granian_blocking_threads": Key(int, 1, "granian: threads per worker that run Python; 1 for ASGI, the "
                                    "only value Granian allows there (def endpoints use threadpool_tokens)",
                                    lo=1, hi=1024),
}
OPEN_ONLY = ("rate", "arrivals", "max_inflight")  # keys of the open load model alone
CLOSED_ONLY = ("users",)
# Keys that only some cells read -> (the key that decides, the values of it that read them): the I/O
# workloads' knobs (app/db.py, app/upstream.py) and Granian's. One given where nothing reads it is
# refused; in a cell that does not read it, it is NEUTRAL, so it names no difference between cells.
SCOPED: dict[str, tuple[str, tuple[str, ...]]] = {
    "db_query": ("workload", DB_WORKLOADS), "db_sleep_ms": ("workload", DB_WORKLOADS),
    "db_pool_size": ("workload", DB_WORKLOADS), "db_pool_timeout_s": ("workload", DB_WORKLOADS),
    "db_dependency": ("workload", ("db",)),
    "upstream_delay_ms": ("workload", UPSTREAM_WORKLOADS), "http_pool_size": ("workload", UPSTREAM_WORKLOADS),
    "db_cpuset": ("workload", DB_WORKLOADS + UPSTREAM_WORKLOADS),
    "granian_runtime_threads": ("server", ("granian",)), "granian_blocking_threads": ("server", ("granian",)),
}
NEUTRAL = {str: "", int: 0, float: 0.0, bool: False}


def reads(values: Any, key: str) -> bool:
    """Whether a cell (or anything with the cell's attributes) reads this key."""
    if key not in SCOPED:
        return True
    on, readers = SCOPED[key]
    return getattr(values, on) in readers


def differs(cells: list[Any], key: str) -> bool:
    """Whether the cells differ in this key, among those that read it: Granian's knobs at their
    defaults differ from the other servers' neutral 0 and name no difference a label should show."""
    return len({getattr(c, key) for c in cells if reads(c, key)}) > 1


def coerce(key: str, value: Any) -> Any:
    """One value of one key, typed and checked; TOML values and --set strings alike."""
    spec = KEYS.get(key)
    if spec is None:
        raise BadInput(f"unknown key {key!r} (known: {', '.join(KEYS)})")
    if value in spec.words:
        return value  # resolved per cell, against that cell's CPU sets and users (resolve_cell)
    try:
        if spec.kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            elif not isinstance(value, bool):
                raise ValueError
        elif spec.kind is int:
            if isinstance(value, bool) or not isinstance(value, int | float | str) or (
                    isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif spec.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            value = parse_duration(value) if key in DURATION_KEYS and isinstance(value, str) else float(value)
            if not math.isfinite(value):  # nan passes every `<` and `>`; inf is no setting either
                raise BadInput(f"{key}: {value!r} is not a finite number")
        else:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError
            value = str(value)
    except (ValueError, OverflowError):
        kind = "a number of seconds (or 1m30s)" if key in DURATION_KEYS else KIND_NAMES[spec.kind]
        raise BadInput(f"{key}: {value!r} is not {kind}") from None
    if spec.choices and value not in spec.choices:
        raise BadInput(f"{key}: {value!r} is not one of {', '.join(map(str, spec.choices))}")
    if spec.lo is not None and value < spec.lo:
        raise BadInput(f"{key}: {value} is below the minimum {spec.lo:g}")
    if spec.hi is not None and value > spec.hi:
        raise BadInput(f"{key}: {value} is above the maximum {spec.hi:g}")
    if spec.check:
        try:
            spec.check(value)
        except BadInput as exc:
            raise BadInput(f"{key}: {exc}") from None
    return value

