"""A scenario's two tables beside its matrix, declared and checked where the scenario is read:
[checks], the pass/fail rules CI judges a run by (bench/judge/checks.py applies them), and
[capacity], the capacity search's settings (bench/judge/capacity.py searches with them).

    [checks]
    max_failure_ratio = 0.01      # failed requests / requests
    min_rps = 10
    max_p99_ms = 250
    fail_on_saturation = true     # a saturated load generator makes rps a floor, not a figure
    [checks.sleep]                # per-workload table: overrides the globals for that workload
    max_p99_ms = 500              # (a team's app: per endpoint, [checks.<endpoint name>])

    [capacity]
    slo_p99_ms = 250              # the objective; --slo-p99 overrides it
    start_rps = 50                # and max_failure_ratio, max_rps, step_s, step_warmup_s, max_search_s
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from bench.errors import BadInput
from bench.scenario.keys import KEYS

WORKLOADS: tuple[str, ...] = KEYS["workload"].choices  # one list: the scenario's key table
# key -> kind: "ratio" in [0, 1], "number" >= 0, "bool"
KNOWN_KEYS: dict[str, str] = {
    "max_failure_ratio": "ratio",
    "min_rps": "number",
    "max_p99_ms": "number",
    "fail_on_saturation": "bool",
}


def _check_value(where: str, kind: str, value: Any) -> None:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return
    # bool is an int in Python; `min_rps = true` is a typo, not 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (kind == "ratio" and value > 1):
        allowed = "between 0 and 1" if kind == "ratio" else ">= 0"
        raise ValueError(f"{where}: must be {allowed}, got {value!r}")


def validate(checks: dict[str, Any], endpoints: tuple[str, ...] = ()) -> None:
    """Raise ValueError("checks.<key>: ...") for unknown keys, unknown workloads (or, for a team's
    app, endpoint names) and bad values."""
    tables = endpoints or WORKLOADS
    if not isinstance(checks, dict):
        raise ValueError(f"checks: expected a table, got {checks!r}")
    for key, value in checks.items():
        if key in KNOWN_KEYS:
            _check_value(f"checks.{key}", KNOWN_KEYS[key], value)
        elif key in tables:
            what = "endpoint" if endpoints else "workload"
            if not isinstance(value, dict):
                raise ValueError(f"checks.{key}: expected a table of checks for the {key} {what}")
            for sub, subvalue in value.items():
                if sub not in KNOWN_KEYS:
                    raise ValueError(f"checks.{key}.{sub}: unknown check (known: {', '.join(KNOWN_KEYS)})")
                _check_value(f"checks.{key}.{sub}", KNOWN_KEYS[sub], subvalue)
        else:
            what = "endpoint" if endpoints else "workload"
            raise ValueError(f"checks.{key}: unknown check or {what} (known checks: "
                             f"{', '.join(KNOWN_KEYS)}; {what} tables: {', '.join(tables)})")



FACTOR = 2.0  # the ramp's step
TOLERANCE = 0.05  # the bisection ends when (fail - pass) / pass is at most this
ACHIEVED_SHARE = 0.99
STEP_OVERHEAD_S = 3.0  # Locust's start and stop, the drain: what a step costs beyond warmup + window


@dataclass(frozen=True)
class SearchSettings:
    """The [capacity] table of a scenario (and bench capacity's options)."""

    slo_p99_ms: float
    max_failure_ratio: float = 0.01
    start_rps: float = 50.0
    max_rps: float = 20_000.0
    step_s: float = 5.0  # each step's measured window
    step_warmup_s: float = 2.0
    max_search_s: float = 900.0  # per searched cell

    def worst_steps(self) -> int:
        """Steps a search can take at most: the whole ramp, then the bisection (or a ramp down
        from start_rps to 1 request/s, then the bisection, when the first step fails)."""
        up = math.ceil(math.log(self.max_rps / self.start_rps, FACTOR)) + 1
        down = math.ceil(math.log(max(self.start_rps, 1.0), FACTOR)) + 1
        return max(up, down) + math.ceil(math.log(1 / TOLERANCE, 2))

    def step_cost_s(self) -> float:
        return self.step_warmup_s + self.step_s + STEP_OVERHEAD_S

    def worst_s(self) -> float:
        """One cell's search, at most: its steps, cut by the time bound."""
        return min(self.worst_steps() * self.step_cost_s(), self.max_search_s + self.step_cost_s())


_LIMITS: dict[str, tuple[float, float]] = {
    "slo_p99_ms": (0.001, 3_600_000), "max_failure_ratio": (0.0, 1.0), "start_rps": (0.001, 10_000_000),
    "max_rps": (0.001, 10_000_000), "step_s": (1.0, 3_600), "step_warmup_s": (0.0, 600),
    "max_search_s": (1.0, 86_400),
}


def settings_from(table: dict[str, Any], slo_p99_ms: float | None = None) -> SearchSettings:
    """Settings from a [capacity] table and the command line's --slo-p99; BadInput naming the key."""
    values = dict(table)
    if slo_p99_ms is not None:
        values["slo_p99_ms"] = slo_p99_ms
    known = {f.name for f in fields(SearchSettings)}
    for key, value in values.items():
        if key not in known:
            raise BadInput(f"[capacity]: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise BadInput(f"[capacity] {key}: {value!r} is not a finite number")
        lo, hi = _LIMITS[key]
        if not lo <= value <= hi:
            what = "an objective > 0" if key == "slo_p99_ms" else f"between {lo:g} and {hi:g}"
            raise BadInput(f"[capacity] {key}: {value:g} is out of range: expected {what}")
    if "slo_p99_ms" not in values:
        raise BadInput("capacity: no objective: give --slo-p99 MS or slo_p99_ms in [capacity]")
    settings = SearchSettings(**{k: float(v) for k, v in values.items()})
    if settings.start_rps > settings.max_rps:
        raise BadInput(f"[capacity] start_rps {settings.start_rps:g} is above max_rps {settings.max_rps:g}")
    return settings
