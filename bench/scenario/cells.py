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
from dataclasses import asdict, field, make_dataclass
from typing import Any

from bench.scenario.appspec import Endpoint
from bench.scenario.keys import (
    DB_WORKLOADS,
    KEYS,
    NEUTRAL,
    SCOPED,
    SERVER_KEYS,
    TARGET_ENV,
    UPSTREAM_WORKLOADS,
    env_name,
    env_text,
)

MASTER_PORT_OFFSET = 557  # master's port = target port + offset, away from Locust's 5557 default
_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


class _ServerConfig:
    """Everything that needs a target restart when it changes: the keys with a `target` (keys.py)."""

    def env(self) -> dict[str, str]:
        """The target's settings (benchagent/serve.py, app/db.py, app/upstream.py), BENCH_<KEY> each, as
        both backends give them (Docker through the target's env file); BENCH_ON_LOOP for the agent
        (benchagent/onloop.py) only where it is asked, so a start by hand needs no such line."""
        env = {env_name(key): env_text(getattr(self, key)) for key in TARGET_ENV}
        return {**env, "BENCH_ON_LOOP": "true"} if self.on_loop else env


# Fields in KEYS order, each with a default, so a config made by hand (a test, a by-hand start)
# names only what it sets: the knobs only some cells read are neutral, the others at their default.
ServerConfig = make_dataclass(
    "ServerConfig",
    [(key, _TYPE_NAMES[KEYS[key].kind],
      field(default=NEUTRAL[KEYS[key].kind] if key in SCOPED else KEYS[key].default)) for key in SERVER_KEYS]
    # style = "on_loop" changes the app the target imports (benchagent/onloop.py): a restart
    + [("on_loop", "bool", field(default=False))],
    bases=(_ServerConfig,), frozen=True, kw_only=True)
ServerConfig.__module__ = __name__


class _Cell:
    """One cell: every key of the table as a field (in KEYS order, summary.csv's column order for
    a cell's parameters), and the matrix axes it was expanded along, which name it."""

    @property
    def server_config(self) -> Any:
        values = {key: getattr(self, key) for key in SERVER_KEYS}
        return ServerConfig(**values, on_loop=self.style == "on_loop")

    @property
    def needs_db(self) -> bool:
        return self.workload in DB_WORKLOADS or "postgres" in self.services

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
        what = [self.endpoint, self.style] if self.endpoint else [self.style, workload]
        parts = [*what, load, self.server, f"w{self.workers}", f"tp{self.threadpool_tokens}"]
        named = {"style", "workload", "endpoint", "users", "rate", "load_model", "server", "workers",
                 "threadpool_tokens", "db_dependency"}
        for key in self.axes:
            if key not in named:
                parts.append(f"{key}{getattr(self, key)}")
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(parts))

    @property
    def path(self) -> str:
        """The one endpoint this cell loads, with its query."""
        if self.request is not None:
            return str(self.request.path)
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
    def sends(self) -> Endpoint:
        """The request of every user of this cell: its endpoint's, or the built-in app's GET."""
        if self.request is not None:
            return self.request  # type: ignore[no-any-return]
        return Endpoint(f"{self.style}_{self.workload}", self.path)

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
        out = asdict(self)  # type: ignore[call-overload]  (a dataclass: Cell below)
        for name in ("axes", "request", "services", "db_sql"):
            out.pop(name)
        return out

    def columns(self) -> dict[str, Any]:
        """The cell's parameters under their summary.csv names, in PARAM_COLUMNS order."""
        return {column: getattr(self, name) for name, column in _PARAM_FIELDS}


Cell = make_dataclass(
    "Cell", [*((key, _TYPE_NAMES[k.kind]) for key, k in KEYS.items()),
             ("axes", "tuple[str, ...]", field(default=())),
             # the request an `endpoint` cell sends (bench/scenario/appspec.py Endpoint); None: the
             # built-in app's GET of `path`
             ("request", "Any", field(default=None, compare=False)),
             # a team's app: the services it asked for and the SQL its database starts with
             # (bench/scenario/appspec.py AppSpec), the same for every cell of a run
             ("services", "tuple[str, ...]", field(default=(), compare=False)),
             ("db_sql", "tuple[str, ...]", field(default=(), compare=False))],
    bases=(_Cell,), frozen=True)
Cell.__module__ = __name__

# Cell field -> summary column, for the keys that are one (keys.py: `column`)
_PARAM_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (key, key if k.column is None else k.column) for key, k in KEYS.items() if k.column != "")
# The one list of a cell's parameter columns: summary.csv, summary_stats.csv and plot labels use it.
PARAM_COLUMNS: tuple[str, ...] = tuple(column for _, column in _PARAM_FIELDS)
# each column's type, as summary.csv's reader parses it
PARAM_TYPES: dict[str, str] = {column: _TYPE_NAMES[KEYS[key].kind] for key, column in _PARAM_FIELDS}


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
