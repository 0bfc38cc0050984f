"""What a run decided, in one value: each cell's [checks] verdicts and its judgement against a
baseline. checks.json, ci-summary.md (and $GITHUB_STEP_SUMMARY), the JUnit file, the terminal
lines and the exit code all come from it, so they cannot disagree (one result type, one exporter
per format: bench/report/ci_summary.py, bench/report/junit.py, written by bench/report/publish.py).

checks.json, format version 1:
    {"format_version": 1, "run_id", "scenario", "passed",
     "checks": [{"cell_id", "check", "passed", "value", "limit", "message"}, ...],
     "baseline": null | {"path", "threshold_pct", "rule", "note"},
     "cells": [{"cell_id", "baseline_id", "verdict", "reason", "note", "n_baseline", "n_current",
                "figures": {"rps" | "p50_ms" | "p99_ms": {"baseline", "current", "change_pct", "p",
                                                          "gated", "regressed"}}}, ...]}
A number that is undefined (a change from 0, Welch's p with n < 2) is null.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from bench.judge import gate
from bench.judge.checks import Verdict
from bench.judge.gate import Judgement

FORMAT_VERSION = 1
CHECKS_JSON, CI_SUMMARY = "checks.json", "ci-summary.md"


@dataclass(frozen=True)
class Outcome:
    run_id: str
    scenario: str
    verdicts: tuple[Verdict, ...]
    judgements: tuple[Judgement, ...] = ()
    baseline: str = ""  # the file the baseline's figures came from; "" when there was none
    threshold_pct: float = gate.DEFAULT_THRESHOLD_PCT
    note: str = ""  # about the baseline as a whole: another machine, unchecked
    answer: tuple[str, ...] = ()  # the answer table and its sentences, as Markdown (bench/judge/answer.py)
    floors: tuple[str, ...] = ()  # cells where Locust was the limit: their figures judge nothing

    @property
    def not_judged(self) -> list[str]:
        """What a "passed" does not cover: said beside it, so that it never reads as all clear."""
        out = []
        if self.floors:
            out.append(f"{len(self.floors)} cell(s) where Locust was the limit (their req/s are floors)")
        if not self.baseline:
            out.append("no baseline: regressions not looked for")
        # a floor the gate left unjudged is said once, as a floor
        unjudged = [j for j in self.judgements
                    if j.verdict not in (gate.PASS, gate.REGRESSION) and j.cell_id not in self.floors]
        if unjudged:
            out.append(f"{len(unjudged)} cell(s) the baseline could not judge")
        return out

    @property
    def failed_checks(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    @property
    def regressions(self) -> list[Judgement]:
        return [j for j in self.judgements if j.verdict == gate.REGRESSION]

    @property
    def judged(self) -> int:
        """Cells the baseline could judge (passed or regressed)."""
        return sum(j.verdict in (gate.PASS, gate.REGRESSION) for j in self.judgements)

    @property
    def unjudged_warning(self) -> str:
        """A baseline was given, yet no cell could be judged: the gate rests on the checks alone."""
        if not self.baseline or self.judged:
            return ""
        return "no cell could be judged against the baseline: this run rests on its checks alone"

    @property
    def passed(self) -> bool:
        return not self.failed_checks and not self.regressions

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def lines(self) -> list[str]:
        """The comparison for the terminal: the rule, then one line per cell."""
        if not self.baseline:
            return []
        out = [f"vs baseline {self.baseline}", f"  {gate.rule(self.threshold_pct)}"]
        if self.note:
            out.append(f"  note: {self.note}")
        if self.unjudged_warning:
            out.append(f"  warning: {self.unjudged_warning}")
        for j in self.judgements:
            figs = "  ".join(f"{f.name} {_pct(f.change_pct)}"
                             + (f" p={f.p:.3f}" if math.isfinite(f.p) else "") for f in j.figures)
            tail = "; ".join(x for x in (j.reason, j.note) if x)
            out.append(f"  {j.verdict.upper():11s} {j.cell_id}  {figs}" + (f"  ({tail})" if tail else ""))
        return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _num(value: Any) -> Any:
    """JSON has no nan or inf: an undefined figure is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(o: Outcome) -> dict[str, Any]:
    cells = []
    for j in o.judgements:
        figures = {f.name: {k: _num(v) for k, v in asdict(f).items() if k != "name"} for f in j.figures}
        cells.append({**{k: v for k, v in asdict(j).items() if k != "figures"}, "figures": figures})
    baseline = None if not o.baseline else {"path": o.baseline, "threshold_pct": o.threshold_pct,
                                            "rule": gate.rule(o.threshold_pct), "note": o.note}
    return {
        "format_version": FORMAT_VERSION, "run_id": o.run_id, "scenario": o.scenario, "passed": o.passed,
        "checks": [{k: _num(v) for k, v in asdict(v).items()} for v in o.verdicts],
        "baseline": baseline, "cells": cells,
    }
