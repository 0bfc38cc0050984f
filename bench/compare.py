"""Two runs side by side: per cell, how rps and p99 moved and whether that is beyond noise.

"significant" means the two 95 % confidence intervals do not overlap - a conservative test (two
intervals can overlap a little while the difference is still significant), chosen because it is
easy to see in the plots. With n = 1 on either side there is no interval, so a change is never
called significant; the note column says so instead of showing a misleading "no".

"regression" is the gate for CI: mean rps dropped or mean p99 rose by more than the threshold
(percent), regardless of significance - the threshold is the user's statement of what matters.
A cell that has ok repeats in A and none in B is a regression too.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO

from bench.results import SCHEMA_VERSION, SummaryRow, read_rows
from bench.stats import CellStats, summarize


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


def disjoint(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[1] < b[0] or b[1] < a[0]


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
        a.rps_mean, b.rps_mean, rps_pct, testable and disjoint(a.interval("rps"), b.interval("rps")),
        a.p99_ms_mean, b.p99_ms_mean, p99_pct,
        testable and disjoint(a.interval("p99_ms"), b.interval("p99_ms")),
        regression=regression, note="; ".join(notes),
    )


def compare(rows_a: list[SummaryRow], rows_b: list[SummaryRow], threshold_pct: float | None) -> list[Change]:
    """One Change per cell_id of A, then the cells only B has."""
    if threshold_pct is not None and threshold_pct < 0:
        raise ValueError(f"threshold must be >= 0 percent, got {threshold_pct}")
    sa = {s.cell_id: s for s in summarize(rows_a)}
    sb = {s.cell_id: s for s in summarize(rows_b)}
    ids = list(sa) + [c for c in sb if c not in sa]
    return [_change(c, sa.get(c), sb.get(c), threshold_pct) for c in ids]


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
    text.append("* = 95 % confidence intervals do not overlap (needs n >= 2 on both sides)")
    return "\n".join(text)


def load_run(run_dir: Path) -> list[SummaryRow]:
    """summary.csv of a run directory, refusing runs written by another schema version."""
    summary, env_path = run_dir / "summary.csv", run_dir / "env.json"
    if not summary.is_file():
        raise ValueError(f"{run_dir}: no summary.csv (is this a run directory?)")
    if not env_path.is_file():
        raise ValueError(f"{run_dir}: no env.json, so its schema version is unknown")
    version = json.loads(env_path.read_text()).get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{run_dir}: schema_version {version!r} is not {SCHEMA_VERSION}, the only one "
                         "this version of bench reads; compare with the bench version that wrote it")
    return read_rows(summary)


def run_compare(dir_a: Path, dir_b: Path, threshold: float | None, out: Path | None = None,
                stream: TextIO | None = None) -> int:
    """Compare run B against baseline A: print the table, write compare.csv (default: in B).

    Returns the exit code: 1 when some cell regressed beyond the threshold, else 0.
    """
    changes = compare(load_run(Path(dir_a)), load_run(Path(dir_b)), threshold)
    write_compare(out or Path(dir_b) / "compare.csv", changes)
    print(format_table(changes), file=stream or sys.stdout)
    return 1 if any(c.regression for c in changes) else 0
