"""One immutable spec per cell, the server config it needs, and the load it sends.

The whole matrix is expanded before anything runs, so `bench plan` and
`bench run` share one expansion (pyperf's immutable Run, not TechEmpower's
attribute copying).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

MASTER_PORT_OFFSET = 557  # master's port = target port + offset, away from Locust's 5557 default


@dataclass(frozen=True)
class ServerConfig:
    """Everything that needs a target restart when it changes."""

    server: str  # uvicorn | gunicorn | granian | hypercorn (app/serve.py)
    workers: int
    threadpool_tokens: int
    target_cpuset: str
    worker_pinning: str  # set | core (app/pinning.py)
    port: int
    bind: str
    loop: str  # auto | asyncio | uvloop
    http: str  # auto | h11 | httptools
    granian_runtime_threads: int = 0  # granian only (0 for the other servers)
    granian_blocking_threads: int = 0
    db_pool_size: int = 0  # per pool per worker; 0: no database pools (app/db.py)
    db_pool_timeout_s: float = 0.0  # a request's wait for a pooled connection before it fails
    http_pool_size: int = 0  # per client per worker; 0: no upstream clients (app/upstream.py)

    def env(self) -> dict[str, str]:
        """The launcher's settings (app/serve.py, app/db.py, app/upstream.py) for this config, as
        both backends give them: the local one as they are, Compose without the BENCH_ prefix
        (compose.yaml maps each back)."""
        return {"BENCH_SERVER": self.server, "BENCH_WORKERS": str(self.workers),
                "THREADPOOL_TOKENS": str(self.threadpool_tokens), "BENCH_WORKER_PINNING": self.worker_pinning,
                "BENCH_PORT": str(self.port), "BENCH_BIND": self.bind, "BENCH_LOOP": self.loop,
                "BENCH_HTTP": self.http, "BENCH_GRANIAN_RUNTIME_THREADS": str(self.granian_runtime_threads),
                "BENCH_GRANIAN_BLOCKING_THREADS": str(self.granian_blocking_threads),
                "BENCH_DB_POOL_SIZE": str(self.db_pool_size),
                "BENCH_DB_POOL_TIMEOUT_S": f"{self.db_pool_timeout_s:g}",
                "BENCH_HTTP_POOL_SIZE": str(self.http_pool_size)}


# the workloads that need PostgreSQL and those that need the upstream stub (bench/run/services.py)
DB_WORKLOADS = ("db", "db_blocking")
UPSTREAM_WORKLOADS = ("http",)


@dataclass(frozen=True)
class Cell:
    # Field order is summary.csv's column order for a cell's parameters (PARAM_COLUMNS below):
    # a key added here becomes a column of summary.csv and summary_stats.csv and a plot label.
    server: str
    workers: int
    style: str
    workload: str
    users: int  # closed: concurrent users; open: Locust users, one per process, each sending its share
    load_model: str  # closed | open
    rate: float  # open: requests/s offered in all (0 for closed)
    arrivals: str  # open: constant | poisson ("" for closed)
    max_inflight: int  # most requests outstanding at once (closed: users)
    spawn_rate: float
    duration: float
    warmup: float
    sleep_ms: int
    cpu_iterations: int
    # the I/O workloads' knobs (neutral, "" or 0, for a workload that does not read them)
    db_query: str  # pk | sleep
    db_sleep_ms: int
    db_pool_size: int
    db_pool_timeout_s: float
    db_dependency: bool
    upstream_delay_ms: int
    http_pool_size: int
    threadpool_tokens: int
    target_cpuset: str
    worker_pinning: str
    loadgen_cpuset: str
    db_cpuset: str  # PostgreSQL's and the upstream's CPUs (one per run); "" without I/O
    loadgen_processes: int
    loadgen_workers: int
    port: int
    bind: str
    loop: str
    http: str
    granian_runtime_threads: int  # granian only (0 for the other servers)
    granian_blocking_threads: int
    repeats: int
    # matrix axes this cell was expanded along, in scenario order: they name it
    axes: tuple[str, ...] = ()

    @property
    def server_config(self) -> ServerConfig:
        return ServerConfig(
            self.server, self.workers, self.threadpool_tokens, self.target_cpuset, self.worker_pinning,
            self.port, self.bind, self.loop, self.http, self.granian_runtime_threads,
            self.granian_blocking_threads, self.db_pool_size, self.db_pool_timeout_s, self.http_pool_size,
        )

    @property
    def needs_db(self) -> bool:
        return self.workload in DB_WORKLOADS

    @property
    def needs_upstream(self) -> bool:
        return self.workload in UPSTREAM_WORKLOADS

    @property
    def is_open(self) -> bool:
        return self.load_model == "open"

    @property
    def cell_id(self) -> str:
        return self.named(f"r{self.rate:g}" if self.is_open else f"u{self.users}")

    def named(self, load: str) -> str:
        """The cell's id with `load` where the users or the rate go (bench capacity's searches
        are named "cap", the rate being what they search)."""
        workload = "db_dep" if self.db_dependency else self.workload  # the route it loads
        parts = [self.style, workload, load, self.server, f"w{self.workers}", f"tp{self.threadpool_tokens}"]
        named = {"style", "workload", "users", "rate", "load_model", "server", "workers", "threadpool_tokens",
                 "db_dependency"}
        for key in self.axes:
            if key not in named:
                parts.append(f"{key}{getattr(self, key)}")
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(parts))

    @property
    def path(self) -> str:
        """The one endpoint this cell loads, with its query."""
        query, route = "", self.workload
        if self.workload == "cpu":
            query = f"?iterations={self.cpu_iterations}"
        elif self.workload in ("sleep", "blocking_sleep"):
            query = f"?ms={self.sleep_ms}"
        elif self.needs_db:
            route = "db_dep" if self.db_dependency else self.workload
            query = f"?query={self.db_query}"
            if self.db_query == "sleep":
                query += f"&ms={self.db_sleep_ms}"
        elif self.needs_upstream:
            query = f"?ms={self.upstream_delay_ms}"
        return f"/{self.style}/{route}{query}"

    @property
    def wait_s(self) -> float:
        """The longest one request may rightly take: its sleep, its query (after waiting for a
        connection as long as the pool lets it) or its upstream's delay."""
        if self.needs_db:
            return self.db_sleep_ms / 1000 + self.db_pool_timeout_s
        if self.needs_upstream:
            return self.upstream_delay_ms / 1000
        return self.sleep_ms / 1000 if self.workload in ("sleep", "blocking_sleep") else 0.0

    @property
    def ramp_s(self) -> float:
        return math.ceil(self.users / self.spawn_rate)

    def estimated_s(self) -> float:
        """Wall time of one repeat: one Locust run (its warmup covers the ramp) plus start-up."""
        start = 2.0 + (2.0 if self.loadgen_workers else 0.0)
        return start + max(self.ramp_s, self.warmup) + self.duration

    def params(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("axes")
        return out

    def columns(self) -> dict[str, Any]:
        """The cell's parameters under their summary.csv names, in PARAM_COLUMNS order."""
        return {column: getattr(self, name) for name, column in _PARAM_FIELDS}


# Cell field -> summary column: a unit in the name where the bare word would be ambiguous.
_RENAMED = {"duration": "duration_s", "warmup": "warmup_s"}
# Not a parameter of one measurement: how many there are, and how the cell was named.
_NOT_COLUMNS = ("repeats", "axes")
_PARAM_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (f.name, _RENAMED.get(f.name, f.name)) for f in fields(Cell) if f.name not in _NOT_COLUMNS
)
# The one list of a cell's parameter columns: summary.csv, summary_stats.csv and plot labels use it.
PARAM_COLUMNS: tuple[str, ...] = tuple(column for _, column in _PARAM_FIELDS)


def expand(defaults: dict[str, Any], matrix: dict[str, list[Any]],
           resolve: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> list[Cell]:
    """The product of the matrix axes over the defaults, in scenario order (last axis fastest),
    each combination's words ("cores", "auto") made numbers by `resolve`.

    Identical cells collapse into one: `workers = [1, "cores"]` on a one-CPU target is one cell.
    """
    axes = tuple(matrix)
    cells: dict[Cell, None] = {}
    for combo in itertools.product(*(matrix[a] for a in axes)):
        values = resolve({**defaults, **dict(zip(axes, combo, strict=True))})
        cells.setdefault(Cell(**values, axes=axes))
    return list(cells)


def work_order(cells: list[Cell]) -> list[tuple[Cell, int]]:
    """Repeats interleaved (all cells once, then again) so slow drift favours no cell; within a
    pass, cells sharing a server config run together so the target restarts only when needed."""
    configs: dict[ServerConfig, int] = {}
    for cell in cells:
        configs.setdefault(cell.server_config, len(configs))
    ordered = sorted(cells, key=lambda c: configs[c.server_config])
    passes = max((c.repeats for c in cells), default=0)
    return [(c, r) for r in range(1, passes + 1) for c in ordered if r <= c.repeats]
