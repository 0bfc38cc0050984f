"""Per-cell figures over repeats: mean, sample SD and a Student-t 95 % interval.

Only rows with status "ok" count towards the figures; failed repeats are counted in n_failed so
the reader sees that the mean rests on fewer runs than were asked for.

n = 1 gives sd = 0 and ci95 = 0 (not empty): the CSV stays numeric for spreadsheets and plots,
and the one place that must not read 0 as "certain" - comparison - checks n itself.
n = 0 (every repeat failed) keeps the cell with all figures 0, so it still shows up as failed.
"""

from __future__ import annotations

import math
from dataclasses import fields, make_dataclass
from typing import Any

from bench.results.row import SummaryRow, from_text, to_text
from bench.scenario.cells import PARAM_COLUMNS, PARAM_TYPES

# The cell's parameters, copied from its rows (they are the same for every repeat of a cell):
# the backend, then every Cell parameter (one source: a new scenario key becomes a column here too).
PARAMS: tuple[str, ...] = ("backend", *PARAM_COLUMNS)
METRICS: tuple[str, ...] = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")


# after the cell's id and parameters (PARAMS): the figures over its repeats
FIGURE_FIELDS: tuple[tuple[str, str], ...] = (
    ("n", "int"),  # ok repeats: the figures below rest on these
    ("n_failed", "int"),
    ("rps_mean", "float"),
    ("rps_sd", "float"),
    ("rps_ci95", "float"),  # half-width: the interval is mean ± ci95
    ("p50_ms_mean", "float"),
    ("p50_ms_sd", "float"),
    ("p50_ms_ci95", "float"),
    ("p99_ms_mean", "float"),
    ("p99_ms_sd", "float"),
    ("p99_ms_ci95", "float"),
    ("cpu_ms_per_request_mean", "float"),
    ("cpu_ms_per_request_sd", "float"),
    ("cpu_ms_per_request_ci95", "float"),
    ("loadgen_headroom_min", "float"),  # the tightest ok repeat: under 1.1, Locust set the pace
    ("requests", "int"),  # summed over ok repeats, with failures: the failure ratio's two terms
    ("failures", "int"),
    ("any_saturated", "bool"),  # some ok repeat had its load generator saturated: rps is a floor
)


class _CellStats:
    @property
    def subject(self) -> str:
        """What the cell's requests ask for: a team's endpoint by name, or the built-in workload."""
        return self.endpoint or self.workload  # type: ignore[attr-defined, no-any-return]

    def interval(self, metric: str) -> tuple[float, float]:
        mean, half = getattr(self, f"{metric}_mean"), getattr(self, f"{metric}_ci95")
        return mean - half, mean + half


CellStats = make_dataclass(
    "CellStats", [("cell_id", "str"), ("backend", "str"), *PARAM_TYPES.items(), *FIGURE_FIELDS],
    bases=(_CellStats,), frozen=True)
CellStats.__module__ = __name__


STATS_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CellStats))


def t975(df: int) -> float:
    """The two-sided 95 % quantile of Student's t (scipy's t.ppf(0.975, df))."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    from scipy.stats import t  # imported here: a second of start-up the other commands don't need

    return float(t.ppf(0.975, df))


def mean_sd_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample SD (n - 1) and the t-based 95 % half-width; (0, 0, 0) for no values."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = math.fsum(values) / n
    if n == 1:
        return mean, 0.0, 0.0
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd, t975(n - 1) * sd / math.sqrt(n)


def _cell_stats(cell_id: str, rows: list[SummaryRow]) -> CellStats:
    ok = [r for r in rows if r.status == "ok"]
    params = {p: getattr(rows[0], p) for p in PARAMS}
    figures: dict[str, Any] = {}
    for metric in METRICS:
        mean, sd, ci = mean_sd_ci([getattr(r, metric) for r in ok])
        figures.update({f"{metric}_mean": mean, f"{metric}_sd": sd, f"{metric}_ci95": ci})
    return CellStats(
        cell_id=cell_id, **params, n=len(ok), n_failed=len(rows) - len(ok), **figures,
        loadgen_headroom_min=tightest_headroom(ok),
        requests=sum(r.requests for r in ok), failures=sum(r.failures for r in ok),
        any_saturated=any(r.loadgen_saturated for r in ok),
    )


def tightest_headroom(rows: list[SummaryRow]) -> float:
    """The lowest Locust headroom of these rows; 0.0 ("not sampled", never "no headroom") is left
    out, and is the answer only when no row has one."""
    return min((r.loadgen_headroom for r in rows if r.loadgen_headroom > 0), default=0.0)


def summarize(rows: list[SummaryRow]) -> list[CellStats]:
    """One CellStats per cell_id, in the order cells first appear in the rows."""
    by_cell: dict[str, list[SummaryRow]] = {}
    for row in rows:
        by_cell.setdefault(row.cell_id, []).append(row)
    return [_cell_stats(cell_id, group) for cell_id, group in by_cell.items()]


_TYPES = {f.name: f.type for f in fields(CellStats)}


def from_stats_record(record: dict[str, str]) -> CellStats:
    """A CellStats from a summary_stats.csv line's text (a baseline kept without its summary.csv);
    ValueError when a number does not parse."""
    return CellStats(**{k: from_text(_TYPES[k], v) for k, v in record.items()})


def stats_records(stats: list[CellStats]) -> list[list[str]]:
    """The CSV's rows as text, header first (pure, so tests need no file)."""
    return [list(STATS_COLUMNS)] + [[to_text(getattr(s, c)) for c in STATS_COLUMNS] for s in stats]


# key.csv: the figures people open first, one line per cell, in this order (summary_stats.csv has
# every parameter and the intervals; summary.csv every repeat)
KEY_COLUMNS: tuple[str, ...] = ("cell_id", "style", "subject", "load", "workers", "n", "rps", "p50_ms",
                                "p99_ms", "cpu_ms_per_request", "saturated")


def key_records(stats: list[CellStats]) -> list[list[str]]:
    """key.csv's rows as text, header first: means over the ok repeats, the load as it was offered."""
    out = [list(KEY_COLUMNS)]
    for s in stats:
        load = f"{s.rate:g} req/s" if s.load_model == "open" else f"{s.users} users"
        out.append([s.cell_id, s.style, s.subject, load, str(s.workers), str(s.n),
                    *(f"{getattr(s, f'{m}_mean'):.{d}f}" if s.n else ""
                      for m, d in (("rps", 1), ("p50_ms", 3), ("p99_ms", 3), ("cpu_ms_per_request", 3))),
                    to_text(s.any_saturated)])
    return out
