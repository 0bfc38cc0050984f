"""A scenario's [checks]: pass/fail rules on the results, for CI.

    [checks]
    max_failure_ratio = 0.01      # failed requests / requests
    min_rps = 10
    max_p99_ms = 250
    fail_on_saturation = true     # a saturated load generator makes rps a floor, not a figure
    [checks.sleep]                # per-workload table: overrides the globals for that workload
    max_p99_ms = 500

Thresholds are judged per cell on the figures the report shows - the mean over the cell's ok
repeats, failures over requests summed over them - so one noisy repeat does not fail CI on its own.
A repeat with status "failed" fails a check by itself: a cell that crashed has no figure to judge.
"""

from __future__ import annotations

import math
from typing import Any

from bench.keys import KEYS
from bench.results import SummaryRow
from bench.stats import CellStats, summarize

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


def validate(checks: dict[str, Any]) -> None:
    """Raise ValueError("checks.<key>: ...") for unknown keys, unknown workloads and bad values."""
    if not isinstance(checks, dict):
        raise ValueError(f"checks: expected a table, got {checks!r}")
    for key, value in checks.items():
        if key in KNOWN_KEYS:
            _check_value(f"checks.{key}", KNOWN_KEYS[key], value)
        elif key in WORKLOADS:
            if not isinstance(value, dict):
                raise ValueError(f"checks.{key}: expected a table of checks for the {key} workload")
            for sub, subvalue in value.items():
                if sub not in KNOWN_KEYS:
                    raise ValueError(f"checks.{key}.{sub}: unknown check (known: {', '.join(KNOWN_KEYS)})")
                _check_value(f"checks.{key}.{sub}", KNOWN_KEYS[sub], subvalue)
        else:
            raise ValueError(f"checks.{key}: unknown check or workload (known checks: "
                             f"{', '.join(KNOWN_KEYS)}; workload tables: {', '.join(WORKLOADS)})")


def effective(checks: dict[str, Any], workload: str) -> dict[str, Any]:
    """The checks that apply to one workload: globals, overridden by its table."""
    base = {k: v for k, v in checks.items() if k in KNOWN_KEYS}
    return {**base, **checks.get(workload, {})}


def _cell_failures(s: CellStats, rules: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "max_failure_ratio" in rules and s.requests:
        ratio = s.failures / s.requests
        if ratio > rules["max_failure_ratio"]:
            out.append(f"{s.cell_id}: failure ratio {ratio:.4f} ({s.failures}/{s.requests} requests) "
                       f"> max_failure_ratio {rules['max_failure_ratio']}")
    if "min_rps" in rules and s.rps_mean < rules["min_rps"]:
        out.append(f"{s.cell_id}: {s.rps_mean:.1f} requests/s (mean of {s.n}) < min_rps {rules['min_rps']}")
    if "max_p99_ms" in rules and s.p99_ms_mean > rules["max_p99_ms"]:
        out.append(f"{s.cell_id}: p99 {s.p99_ms_mean:.3f} ms (mean of {s.n}) "
                   f"> max_p99_ms {rules['max_p99_ms']}")
    if rules.get("fail_on_saturation") and s.any_saturated:
        out.append(f"{s.cell_id}: load generator saturated (fail_on_saturation), "
                   f"so {s.rps_mean:.1f} requests/s is a floor, not a measurement")
    return out


def evaluate(rows: list[SummaryRow], checks: dict[str, Any]) -> list[str]:
    """One message per failed check, naming the cell and the values; an empty list is a pass."""
    validate(checks)
    messages = [f"{r.cell_id} repeat {r.repeat}: failed: {r.error or 'no error recorded'}"
                for r in rows if r.status != "ok"]
    for s in summarize(rows):
        if s.n:  # a cell with no ok repeat is already reported by its failed rows
            messages.extend(_cell_failures(s, effective(checks, s.workload)))
    return messages
