"""Scenario files (TOML) and --set overrides -> a validated, resolved Scenario.

Every key is declared once in KEYS with its type, default and check, so the
validator can name the key and the allowed values, and the README's table of
knobs has one source.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpuset
from bench.cells import Cell, expand
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


def _check_cpuset(value: str) -> None:
    if value == "auto":
        return
    missing = cpuset.parse(value) - cpuset.host_cpus()
    if missing:
        raise BadInput(
            f"cpuset {value!r} names CPU {cpuset.format(missing)} which this host lacks "
            f"(available: {cpuset.format(cpuset.host_cpus())})"
        )


KEYS: dict[str, Key] = {
    "style": Key(str, "async", "endpoint style", choices=("def", "async")),
    "workload": Key(str, "noop", "what the endpoint does",
                    choices=("noop", "cpu", "sleep", "blocking_sleep")),
    "users": Key(int, 10, "concurrent Locust users (closed loop, like ab -c)", lo=1, hi=100_000),
    "spawn_rate": Key(float, 100.0, "users started per second (the ramp is not measured)", lo=0.1),
    "duration": Key(float, 10.0, "measured seconds per cell", lo=1, hi=86_400),
    "warmup": Key(float, 3.0, "warm-up seconds before each measurement (discarded)", lo=0, hi=3_600),
    "server": Key(str, "uvicorn", "ASGI server", choices=("uvicorn", "gunicorn")),
    "workers": Key(int, 1, "server worker processes ('cores' = CPUs in target_cpuset)", lo=1, hi=1024),
    "threadpool_tokens": Key(int, 40, "anyio thread limiter size per worker (anyio's default: 40)",
                             lo=1, hi=100_000),
    "target_cpuset": Key(str, "auto", "CPUs the target is pinned to ('auto' = first half)",
                         check=_check_cpuset),
    "loadgen_cpuset": Key(str, "auto", "CPUs Locust is pinned to ('auto' = second half)",
                          check=_check_cpuset),
    "cpu_iterations": Key(int, 1_000_000, "loop steps of the cpu workload", lo=0, hi=50_000_000),
    "sleep_ms": Key(int, 100, "sleep of the sleep/blocking_sleep workloads", lo=0, hi=60_000),
    "repeats": Key(int, 1, "times each cell runs (interleaved)", lo=1, hi=1_000),
    "loadgen_processes": Key(int, 1, "Locust --processes on one host", lo=1, hi=256),
    "loadgen_workers": Key(int, 0, "distributed Locust workers (0 = no master/worker split)", lo=0, hi=256),
    "port": Key(int, 8000, "target port on 127.0.0.1", lo=1, hi=65_535),
    "bind": Key(str, "127.0.0.1", "address the target binds (another one is an explicit choice)"),
    "loop": Key(str, "auto", "uvicorn event loop", choices=("auto", "asyncio", "uvloop")),
    "http": Key(str, "auto", "uvicorn HTTP implementation", choices=("auto", "h11", "httptools")),
}
TOP_LEVEL = ("name", "description", "defaults", "matrix", "checks")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    defaults: dict[str, Any]
    matrix: list[dict[str, list[Any]]]  # one product per block; the cells are their union
    checks: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the TOML text as read, kept beside the results

    def cells(self) -> list[Cell]:
        unique: dict[tuple[Any, ...], Cell] = {}
        for block in self.matrix:
            for cell in expand(self.defaults, block):
                unique.setdefault(tuple(cell.params().values()), cell)  # a cell two blocks share runs once
        return list(unique.values())

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "defaults": self.defaults,
                "matrix": self.matrix[0] if len(self.matrix) == 1 else self.matrix, "checks": self.checks}


def coerce(key: str, value: Any) -> Any:
    """One value of one key, typed and checked; TOML values and --set strings alike."""
    spec = KEYS.get(key)
    if spec is None:
        raise BadInput(f"unknown key {key!r} (known: {', '.join(KEYS)})")
    if key == "workers" and value == "cores":
        return value  # resolved against target_cpuset once that is known
    try:
        if spec.kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            elif not isinstance(value, bool):
                raise ValueError
        elif spec.kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif spec.kind is float:
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        else:
            value = str(value)
    except ValueError:
        raise BadInput(f"{key}: {value!r} is not a {spec.kind.__name__}") from None
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
    path = resolve_path(ref)
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: malformed TOML: {exc}") from None
    return from_dict(data, parse_set(overrides or []), source=text, origin=str(path))


def resolve_path(ref: str) -> Path:
    path = Path(ref)
    if path.is_file():
        return path
    named = SCENARIO_DIR / f"{ref}.toml"
    if named.is_file():
        return named
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
    try:
        defaults = {k: coerce(k, v) for k, v in defaults_in.items()}
        blocks = [_axes(block) for block in blocks_in]
    except BadInput as exc:
        raise BadInput(f"{where}{exc}") from None
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
    _resolve_auto(resolved)
    for block in blocks:
        _resolve_axes(block, resolved)
    checks = data.get("checks", {})
    _validate_checks(checks, where)
    return Scenario(
        name=str(data.get("name") or Path(origin).stem or "scenario"),
        description=str(data.get("description", "")),
        defaults=resolved,
        matrix=blocks,
        checks=checks,
        source=source,
    )


def _axes(block: dict[str, Any]) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for k, values in block.items():
        if not isinstance(values, list) or not values:
            raise BadInput(f"matrix.{k}: expected a non-empty list of values")
        axes[k] = [coerce(k, v) for v in values]
    return axes


def _resolve_axes(block: dict[str, list[Any]], resolved: dict[str, Any]) -> None:
    for k in ("target_cpuset", "loadgen_cpuset"):
        if k in block:
            auto = cpuset.split_host()[0 if k == "target_cpuset" else 1]
            block[k] = [auto if v == "auto" else cpuset.format(cpuset.parse(v)) for v in block[k]]
    if "workers" in block:
        block["workers"] = [_workers(v, resolved["target_cpuset"]) for v in block["workers"]]


def _workers(value: Any, target_set: str) -> int:
    return len(cpuset.parse(target_set)) if value == "cores" else int(value)


def _resolve_auto(values: dict[str, Any]) -> None:
    target, loadgen = cpuset.split_host()
    for key, auto in (("target_cpuset", target), ("loadgen_cpuset", loadgen)):
        values[key] = auto if values[key] == "auto" else cpuset.format(cpuset.parse(values[key]))
    values["workers"] = _workers(values["workers"], values["target_cpuset"])


def _validate_checks(checks: Any, where: str) -> None:
    if not isinstance(checks, dict):
        raise BadInput(f"{where}[checks] must be a table")
    from bench import checks as checks_mod

    try:
        checks_mod.validate(checks)
    except ValueError as exc:
        raise BadInput(f"{where}{exc}") from None
