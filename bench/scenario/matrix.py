"""Scenario files (TOML) and --set overrides -> a validated, resolved Scenario.

The keys themselves are declared in bench/scenario/keys.py; here are the file, the matrix, what no single
key can check, and each cell's words ("cores", "auto") made concrete.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.errors import BadInput
from bench.scenario import cpuset, sections
from bench.scenario.appspec import APP_KEYS, AppSpec, Endpoint, parse_app, parse_endpoints
from bench.scenario.cells import DB_WORKLOADS, MASTER_PORT_OFFSET, Cell, expand
from bench.scenario.keys import (
    APP_STYLES,
    BUILTIN_ONLY,
    CLOSED_ONLY,
    KEYS,
    NEUTRAL,
    OPEN_ONLY,
    SCOPED,
    coerce,
    is_loopback,
)
from benchagent import serve

__all__ = ["KEYS", "Scenario", "coerce", "from_dict", "is_loopback", "load", "parse_set"]

SCENARIO_DIR = ROOT / "scenarios"


TOP_LEVEL = ("name", "description", "defaults", "matrix", "checks", "capacity", *APP_KEYS)
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
    app: AppSpec = field(default_factory=AppSpec)  # what the target imports, from where, on what
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # [[endpoints]]: each an `endpoint`

    def cells(self) -> list[Cell]:
        """The cells, expanded and checked once per scenario (the plan, the run, the services and
        the report all ask)."""
        return list(self._cells)

    @cached_property
    def _cells(self) -> tuple[Cell, ...]:
        unique: dict[tuple[Any, ...], Cell] = {}
        resolve = resolve_cell if not self.app.services else resolve_with_services
        for block in self.matrix:
            for cell in expand(self.defaults, block, resolve):
                if cell.endpoint:
                    cell = replace(cell, request=self.endpoints[cell.endpoint], services=self.app.services,
                                   db_sql=self.app.db_files())
                unique.setdefault(tuple(cell.params().values()), cell)  # a cell two blocks share runs once
        cells = list(unique.values())
        sets = sorted({c.db_cpuset for c in cells if c.db_cpuset})
        if len(sets) > 1:
            raise BadInput(f"db_cpuset is {' and '.join(sets)} for different cells (one set per run: "
                           "PostgreSQL and the upstream start once); give one db_cpuset for the whole run")
        return tuple(cells)

    def as_dict(self) -> dict[str, Any]:
        defaults = self.defaults
        if self.endpoints:  # not the built-in app's: its workload is none of the choices
            defaults = {k: v for k, v in defaults.items() if k not in BUILTIN_ONLY}
        out = {"name": self.name, "description": self.description, "defaults": defaults,
               "matrix": self.matrix[0] if len(self.matrix) == 1 else self.matrix, "checks": self.checks,
               **self.app.as_dict()}
        if self.endpoints:
            out["endpoints"] = [e.as_dict() for e in self.endpoints.values()]
        return {**out, "capacity": self.capacity} if self.capacity else out



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
        app = parse_app(data, Path(origin).parent if origin else Path.cwd())
        endpoints = parse_endpoints(data.get("endpoints"))
        _check_app(app, endpoints, defaults, blocks, sets)
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
    if endpoints:  # the app's own requests: none of the built-in app's knobs applies
        resolved.update({k: NEUTRAL[KEYS[k].kind] for k in BUILTIN_ONLY})
        if "style" not in defaults and not any("style" in b for b in blocks):
            resolved["style"] = "as_written"
        if "endpoint" not in defaults and not any("endpoint" in b for b in blocks):
            blocks = [{"endpoint": list(endpoints), **b} for b in blocks]  # every one, each a cell
    checks = data.get("checks", {})
    _validate_checks(checks, where, tuple(endpoints))
    # a team's app with services places them with db_cpuset, whatever its cells' (neutral) workload
    read_anyway = {"db_cpuset"} if app.services else set()
    deciding = sorted({on for on, _ in SCOPED.values()})
    runs = [{on: block.get(on, [resolved[on]]) for on in deciding} for block in blocks]
    # a scoped knob in [defaults] or --set must be read by some block; one in a block, by that block
    _check_scoped({on: sorted({v for run in runs for v in run[on]}) for on in deciding},
                  {k for k in given if _differs(k, given[k])} - read_anyway, where)
    for block, keys, run in zip(blocks, explicit, runs, strict=True):
        _check_model_keys(block.get("load_model", [resolved["load_model"]]), keys, where)
        _check_scoped(run, {k for k in block if _differs(k, block[k])} - read_anyway, where)
        if len(block.get("db_cpuset", [])) > 1:
            raise BadInput(f"{where}db_cpuset is one set per run (PostgreSQL and the upstream start once): "
                           "give one value, not an axis")
    capacity = data.get("capacity", {})
    if not isinstance(capacity, dict):
        raise BadInput(f"{where}[capacity] must be a table")
    if capacity:
        try:  # checked now, for `bench run` too; the objective may still come from --slo-p99
            sections.settings_from(capacity, None if "slo_p99_ms" in capacity else 1.0)
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
        app=app,
        endpoints=endpoints,
    )
    for cell in scen.cells():
        _check_cell(cell, where)
    return scen


def _check_app(app: AppSpec, endpoints: dict[str, Endpoint], defaults: dict[str, Any],
               blocks: list[dict[str, list[Any]]], sets: dict[str, Any]) -> None:
    """The built-in app's knobs and the app's own requests do not mix: one or the other."""
    given: dict[str, set[Any]] = {}
    for table in (defaults, sets, *blocks):
        for key, value in table.items():
            given.setdefault(key, set()).update(value if isinstance(value, list) else [value])
    if not endpoints:  # a stored scenario lists every key: only a value besides its default counts
        given = {k: {v for v in values if v != KEYS[k].default} for k, values in given.items()}
        given = {k: values for k, values in given.items() if values}
        if not app.builtin:
            raise BadInput(f"app = {app.app!r} needs [[endpoints]]: the requests to send (a name and a path "
                           "each)")
        if "endpoint" in given:
            raise BadInput("endpoint names one of [[endpoints]], and this scenario has none")
        if given.get("style", set()) & set(APP_STYLES):
            raise BadInput(f"style {'/'.join(APP_STYLES)} is for [[endpoints]]; the built-in app's styles "
                           "are def and async")
        return
    for key in BUILTIN_ONLY:
        if key in given:
            raise BadInput(f"{key} is the built-in app's; with [[endpoints]] each cell sends one of them "
                           "(name it with endpoint)")
    wrong = sorted(given.get("style", set()) - set(APP_STYLES))
    if wrong:
        raise BadInput(f"style {wrong[0]!r} picks a built-in endpoint; with [[endpoints]], style is "
                       f"{' or '.join(APP_STYLES)}")
    unknown = sorted(given.get("endpoint", set()) - set(endpoints))
    if unknown:
        raise BadInput(f"endpoint {unknown[0]!r} is not in [[endpoints]] (defined: {', '.join(endpoints)})")


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


def _check_scoped(run: dict[str, list[str]], explicit: set[str], where: str) -> None:
    """A knob given for a block none of whose workloads (or servers) reads it: a mistake, not a no-op."""
    for key, (on, readers) in SCOPED.items():
        if key in explicit and not set(run[on]) & set(readers):
            raise BadInput(f"{where}{key} is for {on} {' or '.join(readers)}, and only "
                           f"{', '.join(run[on])} run where it is set")


def _check_cell(cell: Cell, where: str) -> None:
    """What no single key can check: limits that depend on two keys of the same cell."""
    why = serve.unsupported(cell.server, cell.http, cell.granian_blocking_threads)
    if why:
        raise BadInput(f"{where}server = {cell.server}: {why}")
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


def resolve_with_services(values: dict[str, Any]) -> dict[str, Any]:
    """resolve_cell for a team's app that asked for services: its cells place them (db_cpuset),
    as the built-in db workloads do."""
    return resolve_cell(values, services=True)


def resolve_cell(values: dict[str, Any], services: bool = False) -> dict[str, Any]:
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
    out.update(_scoped_values(out, services))
    if closed:  # exactly its users outstanding at most; rate and arrivals do not apply
        out.update(max_inflight=out["users"], rate=0.0, arrivals="")
        return out
    out["users"] = out["loadgen_workers"] or out["loadgen_processes"]  # one scheduling user per process
    if inflight == "auto":
        out["max_inflight"] = INFLIGHT_PER_PROCESS * out["users"]
    return out


def _scoped_values(values: dict[str, Any], services: bool = False) -> dict[str, Any]:
    """The knobs a cell's workload or server does not read, neutral (so they name no difference
    between cells), and its db_cpuset concrete: CPUs neither the target nor Locust has, else the
    target's. A team's app with `services` reads db_cpuset whatever its (neutral) workload."""
    workload = values["workload"]
    out: dict[str, Any] = {key: NEUTRAL[KEYS[key].kind] for key, (on, readers) in SCOPED.items()
                           if values[on] not in readers and not (services and key == "db_cpuset")}
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


def _validate_checks(checks: Any, where: str, endpoints: tuple[str, ...] = ()) -> None:
    if not isinstance(checks, dict):
        raise BadInput(f"{where}[checks] must be a table")
    try:
        sections.validate(checks, endpoints)
    except ValueError as exc:
        raise BadInput(f"{where}{exc}") from None
