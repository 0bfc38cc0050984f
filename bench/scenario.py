"""Scenario files (TOML) and --set overrides -> a validated, resolved Scenario.

Every key is declared once in KEYS with its type, default and check, so the
validator can name the key and the allowed values, and the README's table of
knobs has one source.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpuset
from bench.cells import DB_WORKLOADS, UPSTREAM_WORKLOADS, Cell, expand
from bench.errors import BadInput

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"


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
    "server": Key(str, "uvicorn", "ASGI server", choices=("uvicorn", "gunicorn")),
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
    "loop": Key(str, "auto", "uvicorn event loop", choices=("auto", "asyncio", "uvloop")),
    "http": Key(str, "auto", "uvicorn HTTP implementation", choices=("auto", "h11", "httptools")),
}
TOP_LEVEL = ("name", "description", "defaults", "matrix", "checks", "capacity")
OPEN_ONLY = ("rate", "arrivals", "max_inflight")  # keys of the open load model alone
CLOSED_ONLY = ("users",)
# keys that only the I/O workloads read -> the workloads that read them (app/db.py, app/upstream.py)
IO_KEYS: dict[str, tuple[str, ...]] = {
    "db_query": DB_WORKLOADS, "db_sleep_ms": DB_WORKLOADS, "db_pool_size": DB_WORKLOADS,
    "db_pool_timeout_s": DB_WORKLOADS, "db_dependency": ("db",),
    "upstream_delay_ms": UPSTREAM_WORKLOADS, "http_pool_size": UPSTREAM_WORKLOADS,
    "db_cpuset": DB_WORKLOADS + UPSTREAM_WORKLOADS,
}
NEUTRAL = {str: "", int: 0, float: 0.0, bool: False}  # an I/O knob its cell's workload does not read
INFLIGHT_PER_PROCESS = 1000  # max_inflight = "auto"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    defaults: dict[str, Any]
    matrix: list[dict[str, list[Any]]]  # one product per block; the cells are their union
    checks: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the TOML text as read, kept beside the results
    capacity: dict[str, Any] = field(default_factory=dict)  # [capacity]: bench capacity's search

    def cells(self) -> list[Cell]:
        unique: dict[tuple[Any, ...], Cell] = {}
        for block in self.matrix:
            for cell in expand(self.defaults, block, resolve_cell):
                unique.setdefault(tuple(cell.params().values()), cell)  # a cell two blocks share runs once
        cells = list(unique.values())
        sets = sorted({c.db_cpuset for c in cells if c.db_cpuset})
        if len(sets) > 1:
            raise BadInput(f"db_cpuset is {' and '.join(sets)} for different cells (one set per run: "
                           "PostgreSQL and the upstream start once); give one db_cpuset for the whole run")
        return cells

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "description": self.description, "defaults": self.defaults,
               "matrix": self.matrix[0] if len(self.matrix) == 1 else self.matrix, "checks": self.checks}
        return {**out, "capacity": self.capacity} if self.capacity else out


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


def parse_set(items: list[str]) -> dict[str, Any]:
    """--set key=value (scalar) or key=a,b,c (a matrix axis)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--set {item!r}: expected key=value")
        # cpusets have commas of their own: "0,2" is one set unless written "0;2"? keep it simple:
        # for cpuset keys the separator between axis values is ";".
        sep_char = ";" if key.endswith("cpuset") else ","
        values = [coerce(key, v.strip()) for v in text.split(sep_char)]
        out[key] = values if len(values) > 1 else values[0]
    return out


def load(ref: str, overrides: list[str] | None = None) -> Scenario:
    data, text, path = read(ref)
    return from_dict(data, parse_set(overrides or []), source=text, origin=str(path))


def read(ref: str) -> tuple[dict[str, Any], str, Path]:
    """A scenario file's tables, its text and where it was found (before validation)."""
    path = resolve_path(ref)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte {exc.start}): a scenario is a TOML file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: malformed TOML: {exc}") from None
    return data, text, path


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a NUL byte or an over-long name: no such file either
        return False


def resolve_path(ref: str) -> Path:
    for path in (Path(ref), SCENARIO_DIR / f"{ref}.toml"):
        if _is_file(path):
            return path
    known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
    raise BadInput(f"scenario {ref!r}: no such file, nor a name in scenarios/ (known: {known})")


def from_dict(data: dict[str, Any], sets: dict[str, Any], source: str = "", origin: str = "") -> Scenario:
    where = f"{origin}: " if origin else ""
    for key in data:
        if key not in TOP_LEVEL:
            raise BadInput(f"{where}unknown top-level key {key!r} (allowed: {', '.join(TOP_LEVEL)})")
    defaults_in = data.get("defaults", {})
    if not isinstance(defaults_in, dict):
        raise BadInput(f"{where}[defaults] must be a table")
    # [matrix] is one product; [[matrix]] is several, run one after the other (their union)
    blocks_in = data.get("matrix", {})
    blocks_in = blocks_in if isinstance(blocks_in, list) else [blocks_in]
    if not all(isinstance(b, dict) for b in blocks_in):
        raise BadInput(f"{where}[matrix] must be a table or [[matrix]] an array of tables")
    if not blocks_in:
        raise BadInput(f"{where}matrix = [] gives no cell to run: leave it out (one cell from "
                       "[defaults]) or give [[matrix]] tables")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise BadInput(f"{where}{key}: expected a string, got {data[key]!r}")
    try:
        defaults = {k: coerce(k, v) for k, v in defaults_in.items()}
        blocks = [_axes(block) for block in blocks_in]
    except BadInput as exc:
        raise BadInput(f"{where}{exc}") from None
    # keys set to something else than their default, per block: a stored scenario (resume) lists
    # every key, and a key at its default changes nothing
    given = {**defaults, **sets}
    explicit = [{k for k, v in {**given, **block}.items() if _differs(k, v)} for block in blocks]
    for key, value in sets.items():
        defaults.pop(key, None)
        for block in blocks:
            block.pop(key, None)
            if isinstance(value, list):
                block[key] = value
        if not isinstance(value, list):
            defaults[key] = value
    resolved = {k: spec.default for k, spec in KEYS.items()}
    resolved.update(defaults)
    checks = data.get("checks", {})
    _validate_checks(checks, where)
    workloads = [block.get("workload", [resolved["workload"]]) for block in blocks]
    # an I/O knob in [defaults] or --set must be read by some block; one in a block, by that block
    _check_io_keys(sorted({w for ws in workloads for w in ws}), {k for k in given if _differs(k, given[k])},
                   where)
    for block, keys, block_workloads in zip(blocks, explicit, workloads, strict=True):
        _check_model_keys(block.get("load_model", [resolved["load_model"]]), keys, where)
        _check_io_keys(block_workloads, {k for k in block if _differs(k, block[k])}, where)
        if len(block.get("db_cpuset", [])) > 1:
            raise BadInput(f"{where}db_cpuset is one set per run (PostgreSQL and the upstream start once): "
                           "give one value, not an axis")
    capacity = data.get("capacity", {})
    if not isinstance(capacity, dict):
        raise BadInput(f"{where}[capacity] must be a table")
    if capacity:
        from bench.capacity import settings_from

        try:  # checked now, for `bench run` too; the objective may still come from --slo-p99
            settings_from(capacity, None if "slo_p99_ms" in capacity else 1.0)
        except BadInput as exc:
            raise BadInput(f"{where}{exc}") from None
    scen = Scenario(
        name=str(data.get("name") or Path(origin).stem or "scenario"),
        description=str(data.get("description", "")),
        defaults=resolved,
        matrix=blocks,
        checks=checks,
        source=source,
        capacity=capacity,
    )
    for cell in scen.cells():
        _check_cell(cell, where)
    return scen


def _differs(key: str, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(v != KEYS[key].default for v in values)


def _check_model_keys(models: list[str], explicit: set[str], where: str) -> None:
    """Keys of one load model given for a block that runs the other: a mistake, not a no-op."""
    if "open" in models:
        for key in CLOSED_ONLY:
            if key in explicit:
                raise BadInput(f"{where}{key} is for load_model = closed; the open model sends at `rate` "
                               "(drop users, or put closed and open cells in separate [[matrix]] blocks)")
    if "closed" in models:
        for key in OPEN_ONLY:
            if key in explicit:
                raise BadInput(f"{where}{key} is for load_model = open; the closed model has `users` "
                               "(set load_model = \"open\", or put closed and open cells in separate "
                               "[[matrix]] blocks)")


def _check_io_keys(workloads: list[str], explicit: set[str], where: str) -> None:
    """An I/O knob given for a block none of whose workloads reads it: a mistake, not a no-op."""
    for key, readers in IO_KEYS.items():
        if key in explicit and not set(workloads) & set(readers):
            raise BadInput(f"{where}{key} is for workload {' or '.join(readers)}, and only "
                           f"{', '.join(workloads)} run where it is set")


def _check_cell(cell: Cell, where: str) -> None:
    """What no single key can check: limits that depend on two keys of the same cell."""
    from bench.loadspec import MASTER_PORT_OFFSET

    if cell.is_open and cell.rate <= 0:
        raise BadInput(f"{where}rate: {cell.rate:g}: the open load model needs a rate > 0 (requests/s)")
    if cell.is_open and cell.max_inflight < cell.users:
        raise BadInput(f"{where}max_inflight {cell.max_inflight} is below the {cell.users} Locust processes "
                       "that share it (each needs at least one): raise it or set loadgen_processes")

    if cell.loadgen_workers and cell.port + MASTER_PORT_OFFSET > 65_535:
        raise BadInput(f"{where}port {cell.port} with loadgen_workers: Locust's master would listen on "
                       f"port {cell.port + MASTER_PORT_OFFSET} (port + {MASTER_PORT_OFFSET}), beyond 65535; "
                       f"use a port up to {65_535 - MASTER_PORT_OFFSET}")


def _axes(block: dict[str, Any]) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for k, values in block.items():
        if not isinstance(values, list) or not values:
            raise BadInput(f"matrix.{k}: expected a non-empty list of values")
        axes[k] = [coerce(k, v) for v in values]
    return axes


def resolve_cell(values: dict[str, Any]) -> dict[str, Any]:
    """One cell's words made concrete, from this host and that cell's own CPU sets and users: its
    CPU sets as canonical text, "cores" and "auto" counts as numbers (an axis of target_cpuset
    gives each of its cells its own "cores", and its own automatic Locust set)."""
    out = dict(values)
    out["target_cpuset"], out["loadgen_cpuset"] = cpuset.resolve_pair(
        out["target_cpuset"], out["loadgen_cpuset"], cpuset.host_cpus())
    if out["workers"] == "cores":
        out["workers"] = len(cpuset.parse(out["target_cpuset"]))
    loadgen_cpus = len(cpuset.parse(out["loadgen_cpuset"]))
    closed = out["load_model"] == "closed"
    inflight = out["max_inflight"]
    # no more Locust processes than users (closed) or than requests may be outstanding (open)
    cap = out["users"] if closed else loadgen_cpus if inflight == "auto" else min(loadgen_cpus, int(inflight))
    out["loadgen_workers"], out["loadgen_processes"] = loadgen_counts(
        out["loadgen_workers"], out["loadgen_processes"], loadgen_cpus, cap)
    out.update(_io_values(out))
    if closed:  # exactly its users outstanding at most; rate and arrivals do not apply
        out.update(max_inflight=out["users"], rate=0.0, arrivals="")
        return out
    out["users"] = out["loadgen_workers"] or out["loadgen_processes"]  # one scheduling user per process
    if inflight == "auto":
        out["max_inflight"] = INFLIGHT_PER_PROCESS * out["users"]
    return out


def _io_values(values: dict[str, Any]) -> dict[str, Any]:
    """The I/O knobs a cell's workload does not read, neutral (so they name no difference between
    cells), and its db_cpuset concrete: CPUs neither the target nor Locust has, else the target's."""
    workload = values["workload"]
    out: dict[str, Any] = {key: NEUTRAL[KEYS[key].kind] for key, readers in IO_KEYS.items()
                           if workload not in readers}
    if workload in DB_WORKLOADS and values["db_query"] != "sleep":
        out.update(db_sleep_ms=0)  # pk: no time asked of the database
    if "db_cpuset" in out:  # no service to place
        return out
    if values["db_cpuset"] == "auto":
        target, loadgen = cpuset.parse(values["target_cpuset"]), cpuset.parse(values["loadgen_cpuset"])
        spare = cpuset.host_cpus() - target - loadgen
        out.update(db_cpuset=cpuset.format(spare or target))
    else:
        given = values["db_cpuset"]
        out.update(db_cpuset=cpuset.format(cpuset.host_cpus() if given == "all" else cpuset.parse(given)))
    return out


def loadgen_counts(workers: int | str, processes: int | str, cpus: int, users: int) -> tuple[int, int]:
    """(loadgen_workers, loadgen_processes) with "auto" resolved: one Locust process per CPU it may
    use (a FastHttpUser process is one gevent loop: it never uses more than one core), but no more
    processes than users (a process without a user only costs its start-up). Distributed workers
    take the place of --processes, which then stays 1."""
    per_cpu = max(1, min(cpus, users))
    n_workers = per_cpu if workers == "auto" else int(workers)
    if processes == "auto":
        return n_workers, 1 if n_workers else per_cpu
    return n_workers, int(processes)


def _validate_checks(checks: Any, where: str) -> None:
    if not isinstance(checks, dict):
        raise BadInput(f"{where}[checks] must be a table")
    from bench import checks as checks_mod

    try:
        checks_mod.validate(checks)
    except ValueError as exc:
        raise BadInput(f"{where}{exc}") from None
