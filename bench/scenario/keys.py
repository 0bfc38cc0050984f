"""Every key a scenario may set, declared once: its type, default, range or choices and check, which
cells read it, whether the target reads it, its summary column and its help. The validator names
the key and the allowed values from it; Cell, ServerConfig and its environment, SummaryRow's and
CellStats' parameter fields, docs/knobs.md's table of knobs and .env.example come from it.

Also here: coerce(), which types and checks one value.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.errors import BadInput
from bench.scenario import cpuset
from benchagent import serve  # stdlib only: the launcher's own names for servers, loops and parsers


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
    # (the key that decides, the values of it that read this one): only those cells read it
    scope: tuple[str, tuple[str, ...]] | None = None
    # "env": the target reads it (BENCH_<KEY>); "cpus": its backend pins the target with it; either
    # way a change restarts the target (it is part of the cell's ServerConfig); "": Locust's side
    target: str = ""
    column: str | None = None  # its summary.csv column (None: its name; "": not a column)
    allowed: str = ""  # docs/knobs.md's "allowed", where choices, lo, hi and words do not say it
    shown: str = ""  # docs/knobs.md's "default", where the default is no setting (rate: none)


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
# style with [[endpoints]]: the app's own path operations as written, or its sync ones on the loop
APP_STYLES = ("as_written", "on_loop")
# the built-in app's own knobs: refused next to [[endpoints]], whose requests are the app's
BUILTIN_ONLY = ("workload", "sleep_ms", "cpu_iterations")
# the workloads that need PostgreSQL and those that need the upstream stub (bench/run/services.py)
DB_WORKLOADS = ("db", "db_blocking")
UPSTREAM_WORKLOADS = ("http",)
_DB = ("workload", DB_WORKLOADS)
_GRANIAN = ("server", ("granian",))
_CPUS = "CPUs of this host, `auto` or `all`"

# The one declaration of every knob. Its order is the order of Cell's fields and of the parameter
# columns of summary.csv and summary_stats.csv (bench/scenario/cells.py, bench/results/): a key
# added here is a scenario key, a column, a target setting (target="env": BENCH_<KEY>) and a row
# of docs/knobs.md's table and .env.example (`make knobs`), with nothing else to copy.
KEYS: dict[str, Key] = {
    "server": Key(str, "uvicorn", "ASGI server: Uvicorn; Gunicorn with uvicorn-worker's `UvicornWorker`; Granian "
                  "(`--interface asgi`, Rust); Hypercorn ([Servers](servers.md))", choices=serve.SERVERS, target="env"),
    "workers": Key(int, 1, "server worker processes (`cores` = CPUs in `target_cpuset`)", lo=1, hi=1024,
                   words=("cores",), target="env"),
    "style": Key(str, "async", "the built-in app: its `def` or its `async def` endpoint; your own app ([Your own "
                 "app](own-app.md)): `as_written` (its default), or `on_loop`, its sync path operations run on "
                 "the event loop as if declared `async def`", choices=("def", "async", *APP_STYLES)),
    "workload": Key(str, "noop", "what the endpoint does (`blocking_sleep` is `time.sleep` in both styles: in "
                    "async it blocks the event loop; `db`, `db_blocking` and `http` talk to a real PostgreSQL and "
                    "an upstream service: [Real I/O](real-io.md))",
                    choices=("noop", "cpu", "sleep", "blocking_sleep", *DB_WORKLOADS, *UPSTREAM_WORKLOADS)),
    "endpoint": Key(str, "", "your own app: one of its `[[endpoints]]` by name (default: every one, each a cell)",
                    allowed="a name in `[[endpoints]]`", shown="every one"),
    "users": Key(int, 10, "concurrent Locust users (closed loop, like `ab -c`)", lo=1, hi=100_000),
    "load_model": Key(str, "closed", "`open`: requests leave at `rate` whatever the target does, latency counted "
                      "from each due time ([Closed vs open loop](load-models.md))", choices=("closed", "open")),
    "rate": Key(float, 0.0, "open loop only: requests/s offered, split evenly over the Locust processes", lo=0,
                hi=10_000_000, allowed="> 0", shown="—"),
    "arrivals": Key(str, "constant", "open loop only: even spacing, or the exponential gaps of many independent "
                    "clients", choices=("constant", "poisson")),
    "max_inflight": Key(int, "auto", "open loop only: most requests outstanding at once (connections), split over "
                        "the processes; one due beyond it is dropped and counted; `auto` = 1000 per process",
                        lo=1, hi=1_000_000, words=("auto",)),
    "spawn_rate": Key(float, 100.0, "users started per second (the ramp is not measured)", lo=0.1),
    "duration": Key(float, 10.0, "measured seconds per cell (or Locust's format: `\"90s\"`, `\"1m30s\"`, `\"1h\"`)",
                    lo=1, hi=86_400, column="duration_s"),
    "warmup": Key(float, 3.0, "seconds from Locust's start (its ramp included) before the measured window opens "
                  "(discarded; `\"5s\"` too)", lo=0, hi=3_600, column="warmup_s"),
    "sleep_ms": Key(int, 100, "sleep of `sleep` / `blocking_sleep`", lo=0, hi=60_000),
    "cpu_iterations": Key(int, 1_000_000, "loop steps of the `cpu` workload", lo=0, hi=50_000_000),
    "db_query": Key(str, "sleep", "`db`, `db_blocking`: `pk` reads one row by primary key from a 1,000-row table; "
                    "`sleep` runs `SELECT pg_sleep(db_sleep_ms / 1000.0)`, so the database's time is known",
                    choices=("pk", "sleep"), scope=_DB),
    "db_sleep_ms": Key(int, 20, "`db_query = \"sleep\"`: the database's time per query", lo=0, hi=60_000, scope=_DB),
    "db_pool_size": Key(int, 10, "`db`, `db_blocking`: connections per pool per worker (psycopg_pool, fixed size; "
                        "each worker has a sync and an async pool)", lo=1, hi=10_000, scope=_DB, target="env"),
    "db_pool_timeout_s": Key(float, 30.0, "`db`, `db_blocking`: how long a request waits for a pooled connection "
                             "before it fails with a 500 (psycopg_pool's `PoolTimeout`; its default is 30 s)",
                             lo=0.1, hi=600, scope=_DB, target="env"),
    "db_dependency": Key(bool, False, "`db`: the connection comes from a `def` dependency (`Depends`) that holds it "
                         "for the request, not from the endpoint itself", scope=("workload", ("db",))),
    "upstream_delay_ms": Key(int, 50, "`http`: the upstream stub's delay per request", lo=0, hi=60_000,
                             scope=("workload", UPSTREAM_WORKLOADS)),
    "http_pool_size": Key(int, 100, "`http`: httpx connections per client per worker, all kept alive", lo=1,
                          hi=10_000, scope=("workload", UPSTREAM_WORKLOADS), target="env"),
    "threadpool_tokens": Key(int, 40, "anyio's thread limiter per worker process, where `def` endpoints run "
                             "(anyio's default: 40)", lo=1, hi=100_000, target="env"),
    "target_cpuset": Key(str, "auto", "CPUs the target is pinned to (`auto`: a third of the host, at least one, or "
                         "what `loadgen_cpuset` leaves; `all`: every CPU; see [On a cloud VM](cloud-vm.md))",
                         check=_check_cpuset, allowed=_CPUS, target="cpus"),
    "worker_pinning": Key(str, "set", "`set`: every worker floats over `target_cpuset`; `core`: worker *i* is pinned "
                          "to the *i*-th CPU of it (from inside the worker, under every server)",
                          choices=("set", "core"), target="env"),
    "loadgen_cpuset": Key(str, "auto", "CPUs Locust is pinned to (`auto`: what the target's set leaves; `all`: every "
                          "CPU, e.g. on a load VM of its own)", check=_check_cpuset, allowed=_CPUS),
    "db_cpuset": Key(str, "auto", "CPUs of PostgreSQL and the upstream stub, one set per run (`auto`: CPUs neither "
                     "the target nor Locust has, else the target's: the database then competes with the target, "
                     "as on a one-VM deployment)", check=_check_cpuset, allowed=_CPUS,
                     scope=("workload", DB_WORKLOADS + UPSTREAM_WORKLOADS)),
    "loadgen_processes": Key(int, "auto", "Locust processes on one host (`--processes`); `auto`: one per CPU of "
                             "`loadgen_cpuset`, at most one per user", lo=1, hi=256, words=("auto",)),
    "loadgen_workers": Key(int, 0, "distributed Locust: one master plus N workers (`auto`: one per CPU of "
                           "`loadgen_cpuset`, at most one per user)", lo=0, hi=256, words=("auto",)),
    "port": Key(int, 8000, "target port (the containers run unprivileged: 1024 and up there; with "
                "`loadgen_workers`, Locust's master takes port + 557, so at most 64978)", lo=1, hi=65_535,
                target="env"),
    "bind": Key(str, "127.0.0.1", "where the target listens (`::1` for IPv6); anything but loopback is an explicit "
                "choice, and `bench` prints a warning line for it", check=_check_bind, allowed="an IP address",
                target="env"),
    "loop": Key(str, "auto", "the event loop, for all four servers (`auto`: uvloop when it is installed, else "
                "asyncio: Uvicorn's own rule, which Granian and Hypercorn are given too)", choices=serve.LOOPS,
                target="env"),
    "http": Key(str, "auto", "Uvicorn's HTTP parser, for `uvicorn` and `gunicorn` (`auto`: httptools when "
                "installed); Granian and Hypercorn parse HTTP themselves, so only `auto` is allowed with them",
                choices=serve.HTTPS, target="env"),
    "granian_runtime_threads": Key(int, 1, "`granian` only: Rust (Tokio) runtime threads per worker, which do the "
                                   "sockets and HTTP, never Python code (Granian's default)", lo=1, hi=1024,
                                   scope=_GRANIAN, target="env"),
    "granian_blocking_threads": Key(int, 1, "`granian` only: the threads per worker that run Python; Granian allows "
                                    "only 1 for an ASGI app (a `def` endpoint runs in anyio's threadpool: "
                                    "`threadpool_tokens`)", lo=1, hi=1024, allowed="1", scope=_GRANIAN, target="env"),
    "profile": Key(str, "off", "`cpu`: py-spy samples every worker of the target during the measured window; "
                   "`profile.folded`, `profile.svg` and the CPU shares per part (hop, loop, server, framework, app) "
                   "in `summary.csv` ([Why](profiling.md))", choices=("off", "cpu")),
    "profile_rate": Key(int, 20, "`profile = \"cpu\"`: samples per second per worker (at 20, requests of a "
                        "millisecond or more cost no measurable more; a `def` no-op under 100 users lost 14 % of "
                        "its requests/s: docs/profiling.md)", lo=1, hi=1000, scope=("profile", ("cpu",))),
    "repeats": Key(int, 1, "runs of each cell, interleaved; `summary_stats.csv` gives mean, sd and 95 % CI", lo=1,
                   hi=1_000, column=""),
}
OPEN_ONLY = ("rate", "arrivals", "max_inflight")  # keys of the open load model alone
CLOSED_ONLY = ("users",)
# Keys that only some cells read -> (the key that decides, the values of it that read them): the I/O
# workloads' knobs (app/db.py, app/upstream.py) and Granian's. One given where nothing reads it is
# refused; in a cell that does not read it, it is NEUTRAL, so it names no difference between cells.
SCOPED: dict[str, tuple[str, tuple[str, ...]]] = {name: k.scope for name, k in KEYS.items() if k.scope}
NEUTRAL = {str: "", int: 0, float: 0.0, bool: False}
# The knobs the target reads (BENCH_<KEY>) and the one its backend pins it with: a change restarts it.
TARGET_ENV: tuple[str, ...] = tuple(name for name, k in KEYS.items() if k.target == "env")
SERVER_KEYS: tuple[str, ...] = tuple(name for name, k in KEYS.items() if k.target)


def env_name(key: str) -> str:
    """The target's environment variable for a knob: BENCH_ and its name in capitals."""
    return f"BENCH_{key.upper()}"


def env_text(value: Any) -> str:
    """A knob's value as the target reads it from its environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


# by hand, no pools and no clients (0): the endpoints that need none start without a database or an
# upstream to connect to; a db or http cell gets its size from the runner
OFF_BY_HAND = ("db_pool_size", "http_pool_size")


def by_hand(key: str) -> object:
    """A knob's value for a target started by hand (.env.example, tests/servers.py): its default."""
    k = KEYS[key]
    return NEUTRAL[k.kind] if key in OFF_BY_HAND else k.default


def by_hand_env() -> dict[str, str]:
    """The target's whole environment for a start by hand, as .env.example holds it."""
    return {env_name(key): env_text(by_hand(key)) for key in TARGET_ENV}


def allowed_text(key: str) -> str:
    """docs/knobs.md's "allowed" column, from the key's choices, range and words."""
    k = KEYS[key]
    if k.allowed:
        return k.allowed
    if k.kind is bool:
        return "true \\| false"
    if k.choices:
        return " \\| ".join(map(str, k.choices))
    text = f"≥ {_num(k.lo)}" if k.hi is None else f"{_num(k.lo)} … {_num(k.hi)}"
    return text + "".join(f", or `{w}`" for w in k.words)


def _num(value: float | None) -> str:
    return f"{value:g}" if value is None or not float(value).is_integer() else str(int(value))


def default_text(key: str) -> str:
    """docs/knobs.md's "default" column."""
    k = KEYS[key]
    if k.shown:
        return k.shown
    value = k.default
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"`{value}`"


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


def did_you_mean(word: str, known: Any) -> str:
    """The closest known name as ": did you mean 'users'?" (a typo, a missing s), else nothing."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f": did you mean {close[0]!r}?" if close else ""


def coerce(key: str, value: Any) -> Any:
    """One value of one key, typed and checked; TOML values and --set strings alike."""
    spec = KEYS.get(key)
    if spec is None:
        raise BadInput(f"unknown key {key!r}{did_you_mean(key, KEYS)} (known: {', '.join(KEYS)})")
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

