"""A scenario's [checks]: pass/fail rules on the results, for CI (the table's keys and their
checks: bench/scenario/sections.py).

Thresholds are judged per cell on the figures the report shows - the mean over the cell's ok
repeats, failures over requests summed over them - so one noisy repeat does not fail CI on its own.
A repeat with status "failed" fails a check by itself: a cell that crashed has no figure to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.results.row import SummaryRow
from bench.results.stats import CellStats, summarize
from bench.scenario.sections import KNOWN_KEYS, validate


def effective(checks: dict[str, Any], workload: str) -> dict[str, Any]:
    """The checks that apply to one workload (or a team's endpoint, by name): globals, overridden
    by its table."""
    base = {k: v for k, v in checks.items() if k in KNOWN_KEYS}
    return {**base, **checks.get(workload, {})}


@dataclass(frozen=True)
class Verdict:
    """One rule of [checks] on one cell: the figure it judged, the limit, and the message a
    failure prints (what JUnit and checks.json carry)."""

    cell_id: str
    check: str  # a KNOWN_KEYS name, or "ran" (every repeat of the cell ended ok)
    passed: bool
    value: float
    limit: float
    message: str  # the failure's text; "" for a pass


def _cell_verdicts(s: CellStats, rules: dict[str, Any]) -> list[Verdict]:
    out: list[Verdict] = []

    def add(check: str, value: float, failed: bool, message: str) -> None:
        limit = float(rules[check])
        out.append(Verdict(s.cell_id, check, not failed, value, limit, message if failed else ""))

    if "max_failure_ratio" in rules and s.requests:
        ratio = s.failures / s.requests
        add("max_failure_ratio", ratio, ratio > rules["max_failure_ratio"],
            f"{s.cell_id}: failure ratio {ratio:.4f} ({s.failures}/{s.requests} requests) "
            f"> max_failure_ratio {rules['max_failure_ratio']}")
    if "min_rps" in rules:
        add("min_rps", s.rps_mean, s.rps_mean < rules["min_rps"],
            f"{s.cell_id}: {s.rps_mean:.1f} requests/s (mean of {s.n}) < min_rps {rules['min_rps']}")
    if "max_p99_ms" in rules:
        add("max_p99_ms", s.p99_ms_mean, s.p99_ms_mean > rules["max_p99_ms"],
            f"{s.cell_id}: p99 {s.p99_ms_mean:.3f} ms (mean of {s.n}) > max_p99_ms {rules['max_p99_ms']}")
    if rules.get("fail_on_saturation"):
        add("fail_on_saturation", float(s.any_saturated), s.any_saturated,
            f"{s.cell_id}: load generator saturated (fail_on_saturation), "
            f"so {s.rps_mean:.1f} requests/s is a floor, not a measurement")
    return out


def _cell_failures(s: CellStats, rules: dict[str, Any]) -> list[str]:
    return [v.message for v in _cell_verdicts(s, rules) if not v.passed]


def verdicts(rows: list[SummaryRow], checks: dict[str, Any]) -> list[Verdict]:
    """Per cell, "ran" (every repeat ok, else the first failure's reason), then each rule of
    `checks` that applies to it, passed or not; a cell with no ok repeat has no figure to judge."""
    validate(checks, _endpoints(rows))
    out: list[Verdict] = []
    for s in summarize(rows):
        failed = [r for r in rows if r.cell_id == s.cell_id and r.status != "ok"]
        out.append(Verdict(s.cell_id, "ran", not failed, float(s.n), float(s.n + len(failed)),
                           "; ".join(f"repeat {r.repeat}: {r.error or 'no error recorded'}" for r in failed)))
        if s.n:
            out.extend(_cell_verdicts(s, effective(checks, s.subject)))
    return out


def evaluate(rows: list[SummaryRow], checks: dict[str, Any]) -> list[str]:
    """One message per failed check, naming the cell and the values; an empty list is a pass."""
    validate(checks, _endpoints(rows))
    messages = [f"{r.cell_id} repeat {r.repeat}: failed: {r.error or 'no error recorded'}"
                for r in rows if r.status != "ok"]
    for s in summarize(rows):
        if s.n:  # a cell with no ok repeat is already reported by its failed rows
            messages.extend(_cell_failures(s, effective(checks, s.subject)))
    return messages


def _endpoints(rows: list[SummaryRow]) -> tuple[str, ...]:
    """A team's app's endpoint names (its [checks] tables), or () for the built-in app."""
    return tuple(dict.fromkeys(r.endpoint for r in rows if r.endpoint))
