"""Two runs side by side: per cell, how rps and p99 moved and whether that is beyond noise.

"significant" means Welch's t-test (unequal variances, scipy's ttest_ind_from_stats) rejects "same
mean" at the 5 % level: p < 0.05. With n = 1 on either side there is no variance to test, so a
change is never called significant; the note column says so instead of showing a misleading "no".

"regression" is compare's quick look, not the CI rule: mean rps dropped or mean p99 rose by more
than the threshold (percent), regardless of significance - the threshold is the user's statement
of what matters. A cell that has ok repeats in A and none in B is a regression too. The CI gate
(bench/judge/gate.py: `bench run --baseline`) is the stricter rule a pipeline fails on: beyond the
threshold AND significant over the repeats, on rps and p50, cells paired by their parameters. The
column keeps its name so compare.csv's format holds.

Two runs whose targets ran different interpreter builds (python_build in /info: PGO/LTO, version)
differ by the build as well as by the change under test; compare says so in its output and in
every row's note.
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TextIO

from bench.results.row import SummaryRow
from bench.results.rundir import RunDir
from bench.results.stats import CellStats, summarize

ALPHA = 0.05  # Welch's test level for "significant"


@dataclass(frozen=True)
class Change:
    cell_id: str
    n_a: int
    n_b: int
    rps_a: float
    rps_b: float
    rps_change_pct: float | None  # None: undefined (a mean of 0 or a missing side)
    rps_significant: bool
    p99_ms_a: float
    p99_ms_b: float
    p99_change_pct: float | None
    p99_significant: bool
    regression: bool
    note: str


COMPARE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Change))


def change_pct(a: float, b: float) -> float | None:
    return None if a == 0 else 100.0 * (b - a) / a


def welch_p(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> float:
    """Two-sided p-value of Welch's t-test from summary figures; nan when it is undefined (n < 2)."""
    if n_a < 2 or n_b < 2:
        return math.nan
    if sd_a == 0 and sd_b == 0:  # no spread at all: any difference is beyond noise, none is not
        return 0.0 if mean_a != mean_b else 1.0
    from scipy.stats import ttest_ind_from_stats  # imported here: only compare needs it

    return float(ttest_ind_from_stats(mean_a, sd_a, n_a, mean_b, sd_b, n_b, equal_var=False).pvalue)


def significant(a: CellStats, b: CellStats, metric: str) -> bool:
    p = welch_p(getattr(a, f"{metric}_mean"), getattr(a, f"{metric}_sd"), a.n,
                getattr(b, f"{metric}_mean"), getattr(b, f"{metric}_sd"), b.n)
    return p < ALPHA  # nan < ALPHA is False: untestable is not significant


def _change(cell_id: str, a: CellStats | None, b: CellStats | None, threshold: float | None) -> Change:
    if a is None or b is None or a.n == 0 or b.n == 0:
        na, nb = (a.n if a else 0), (b.n if b else 0)
        if a is None or b is None:
            note = "only in B" if a is None else "only in A"
        else:
            note = "no ok repeat in " + ("A and B" if na == nb == 0 else "A" if na == 0 else "B")
        lost = b is not None and na > 0 and nb == 0  # worked before, fails now
        return Change(cell_id, na, nb, a.rps_mean if a else 0.0, b.rps_mean if b else 0.0, None, False,
                      a.p99_ms_mean if a else 0.0, b.p99_ms_mean if b else 0.0, None, False,
                      regression=lost and threshold is not None, note=note)
    rps_pct = change_pct(a.rps_mean, b.rps_mean)
    p99_pct = change_pct(a.p99_ms_mean, b.p99_ms_mean)
    testable = a.n >= 2 and b.n >= 2
    notes = [] if testable else [f"n={min(a.n, b.n)}: significance not testable"]
    if a.any_saturated or b.any_saturated:
        notes.append("load generator saturated in " + ("A and B" if a.any_saturated and b.any_saturated
                                                       else "A" if a.any_saturated else "B"))
    regression = threshold is not None and (
        (rps_pct is not None and rps_pct < -threshold) or (p99_pct is not None and p99_pct > threshold)
    )
    return Change(
        cell_id, a.n, b.n,
        a.rps_mean, b.rps_mean, rps_pct, significant(a, b, "rps"),
        a.p99_ms_mean, b.p99_ms_mean, p99_pct, significant(a, b, "p99_ms"),
        regression=regression, note="; ".join(notes),
    )


def compare(rows_a: list[SummaryRow], rows_b: list[SummaryRow], threshold_pct: float | None,
            build_note: str = "") -> list[Change]:
    """One Change per cell_id of A, then the cells only B has; build_note joins every note."""
    if threshold_pct is not None and not (math.isfinite(threshold_pct) and threshold_pct >= 0):
        raise ValueError(f"threshold must be a finite number >= 0 percent, got {threshold_pct}")
    sa = {s.cell_id: s for s in summarize(rows_a)}
    sb = {s.cell_id: s for s in summarize(rows_b)}
    ids = list(sa) + [c for c in sb if c not in sa]
    changes = [_change(c, sa.get(c), sb.get(c), threshold_pct) for c in ids]
    if build_note:
        changes = [replace(c, note="; ".join(x for x in (c.note, build_note) if x)) for c in changes]
    return changes


def build_warning(build_a: str, build_b: str) -> str:
    """One line when the two runs' targets ran different interpreter builds, else ""."""
    if not build_a or not build_b or build_a == build_b:
        return ""
    return f"interpreter builds differ (A: {build_a}; B: {build_b}): the change includes the build"


def _fmt(value: float | bool | int | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def write_compare(path: Path, changes: list[Change]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COMPARE_COLUMNS)
        w.writerows([_fmt(getattr(c, col)) for col in COMPARE_COLUMNS] for c in changes)


def _pct(value: float | None, significant: bool) -> str:
    return "n/a" if value is None else f"{value:+.1f}%" + ("*" if significant else "")


def format_table(changes: list[Change]) -> str:
    """A fixed-width text table for the terminal; * marks a significant change."""
    header = ("cell", "n A/B", "rps A", "rps B", "rps Δ", "p99 A ms", "p99 B ms", "p99 Δ", "", "note")
    lines = [header] + [
        (c.cell_id, f"{c.n_a}/{c.n_b}", f"{c.rps_a:.1f}", f"{c.rps_b:.1f}",
         _pct(c.rps_change_pct, c.rps_significant), f"{c.p99_ms_a:.2f}", f"{c.p99_ms_b:.2f}",
         _pct(c.p99_change_pct, c.p99_significant), "REGRESSION" if c.regression else "", c.note)
        for c in changes
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.append(f"* = significant: Welch's t-test p < {ALPHA} (needs n >= 2 on both sides)")
    return "\n".join(text)


def run_compare(dir_a: Path, dir_b: Path, threshold: float | None, out: Path | None = None,
                stream: TextIO | None = None) -> int:
    """Compare run B against baseline A: print the table, write compare.csv (default: in B, said
    on stderr).

    Returns the exit code: 1 when some cell regressed beyond the threshold, else 0.
    """
    run_a, run_b = RunDir.open(Path(dir_a)), RunDir.open(Path(dir_b))
    for run in (run_a, run_b):
        if run.torn_warning():
            print(run.torn_warning(), file=sys.stderr)
    warning = build_warning(run_a.python_build(), run_b.python_build())
    note = "interpreter builds differ" if warning else ""
    changes = compare(run_a.latest_rows(), run_b.latest_rows(), threshold, build_note=note)
    path = out or run_b.path / "compare.csv"
    write_compare(path, changes)
    # a file written into someone's run directory is said, on stderr: stdout is the table
    print(f"wrote {path}" + ("" if out else " (into run B)"), file=sys.stderr)
    stream = stream or sys.stdout
    if warning:
        print(f"warning: {warning}", file=stream)
    print(format_table(changes), file=stream)
    return 1 if any(c.regression for c in changes) else 0
